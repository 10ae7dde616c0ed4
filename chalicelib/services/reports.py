"""The merchant's reports, read from the aggregates: O(days) reads, never O(events) or O(orders).

sales: one BatchGetItem of the days' totals. funnel: that, plus one Query per day of its
sources. products: one Query per day of its products, then the names in one BatchGetItem.
repurchase and rfm: the nightly job's snapshot (one BatchGetItem of the candidate days).
"""
from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from chalicelib import clock
from chalicelib.domain import analytics as rules
from chalicelib.domain.rfm import SEGMENTS, STAGES
from chalicelib.schemas import reports as out
from chalicelib.storage import analytics as store
from chalicelib.storage.favorites import product_cards

SNAPSHOT_LOOKBACK_DAYS = 8  # a nightly snapshot is looked for this far back from the range's end


def sales(first: date, last: date) -> out.SalesReport:
    days = rules.days_between(first, last)
    totals = store.totals(days)
    items = [_sales_day(day, totals.get(day, {})) for day in days]
    return out.SalesReport(items=items, totals=_sales_day("total", rules.merge_counts(totals.values())))


def _sales_day(day: str, counts: dict[str, int]) -> out.SalesDay:
    gmv, paid = counts.get("gmv_fen", 0), counts.get("paid_orders", 0)
    return out.SalesDay(date=day, orders=counts.get("orders", 0), paid_orders=paid, gmv_fen=gmv,
                        refund_fen=counts.get("refund_fen", 0), aov_fen=rules.aov_fen(gmv, paid))


def funnel(first: date, last: date) -> out.FunnelReport:
    days = rules.days_between(first, last)
    totals = store.totals(days)
    items = [_funnel_day(day, totals.get(day, {})) for day in days]
    stages = _stages(rules.merge_counts(totals.values()))
    exposure = stages.exposure
    conversion = out.FunnelStages(**{name: rules.permille(getattr(stages, name), exposure) for name in rules.STAGES})
    by_source: dict[str, dict[str, int]] = {}
    for day in days:
        for scope, counts in store.day_items(day, rules.SOURCE_PREFIX).items():
            source = scope[len(rules.SOURCE_PREFIX):]
            by_source[source] = rules.merge_counts([by_source.get(source, {}), counts])
    sources = [out.FunnelSource(source=source, pv=c.get("pv", 0), product_views=c.get("product_views", 0),
                                add_to_cart=c.get("add_to_cart", 0), exposure=c.get("uv", 0),
                                click=c.get("click_users", 0), cart=c.get("cart_users", 0))
               for source, c in by_source.items()]
    sources.sort(key=lambda row: (-row.pv, row.source))
    return out.FunnelReport(items=items, stages=stages, conversion_permille=conversion, sources=sources)


def _stages(counts: dict[str, int]) -> out.FunnelStages:
    return out.FunnelStages(**{stage: counts.get(attribute, 0) for stage, attribute in rules.STAGE_USERS.items()})


def _funnel_day(day: str, c: dict[str, int]) -> out.FunnelDay:
    return out.FunnelDay(date=day, pv=c.get("pv", 0), product_views=c.get("product_views", 0),
                         add_to_cart=c.get("add_to_cart", 0), shares=c.get("shares", 0), orders=c.get("orders", 0),
                         paid_orders=c.get("paid_orders", 0), stages=_stages(c))


PRODUCT_FIELDS = ("views", "add_to_cart", "orders", "ordered_units", "paid_orders", "paid_units", "paid_fen")


def products(first: date, last: date, sort: str, limit: int) -> out.ProductReport:
    by_product: dict[str, dict[str, int]] = {}
    for day in rules.days_between(first, last):
        for scope, counts in store.day_items(day, rules.PRODUCT_PREFIX).items():
            product_id = scope[len(rules.PRODUCT_PREFIX):]
            counts = {("views" if name == "product_views" else name): value for name, value in counts.items()}
            by_product[product_id] = rules.merge_counts([by_product.get(product_id, {}), counts])
    ranked = sorted(by_product.items(), key=lambda entry: (-entry[1].get(sort, 0), entry[0]))[:limit]
    cards = product_cards([product_id for product_id, _ in ranked])
    return out.ProductReport(items=[
        out.ProductRow(rank=rank, product_id=product_id,
                       name=cards[product_id].name if product_id in cards else None,
                       **{name: counts.get(name, 0) for name in PRODUCT_FIELDS})
        for rank, (product_id, counts) in enumerate(ranked, start=1)])


def _snapshot(scope: str, last: date, earliest: date | None = None) -> dict[str, Any] | None:
    start = last - timedelta(days=SNAPSHOT_LOOKBACK_DAYS - 1)
    if earliest is not None:
        start = max(start, earliest)
    if start > last:
        return None
    found = store.latest_document(rules.days_between(start, last), scope)
    return {**json.loads(found["doc"]), "computed_on": found["day"]} if found else None


def repurchase(first: date, last: date) -> out.RepurchaseReport:
    """Cohorts whose month lies in the range, from the latest nightly run (up to today)."""
    snapshot = _snapshot("repurchase", clock.now().astimezone(clock.CHINA_TZ).date())
    if snapshot is None:
        return out.RepurchaseReport(computed_on=None, items=[])
    months = (first.isoformat()[:7], last.isoformat()[:7])
    items = [out.CohortRow(**row, rate_permille=rules.permille(row["repurchased"], row["customers"]))
             for row in snapshot["cohorts"] if months[0] <= row["cohort"] <= months[1]]
    return out.RepurchaseReport(computed_on=snapshot["computed_on"], items=items)


def rfm(first: date, last: date) -> out.RfmReport:
    """The segments as of the latest nightly run within the range."""
    snapshot = _snapshot("rfm", last, earliest=first)
    if snapshot is None:
        return out.RfmReport(computed_on=None, customers=0,
                             items=[out.SegmentRow(segment=s, customers=0, monetary_fen=0) for s in SEGMENTS],
                             stages=[out.StageRow(stage=s, customers=0) for s in STAGES],
                             thresholds=out.RfmThresholds(recency_days=[], frequency=[], monetary_fen=[]))
    return out.RfmReport(computed_on=snapshot["computed_on"], customers=snapshot["customers"],
                         items=[out.SegmentRow(**row) for row in snapshot["segments"]],
                         stages=[out.StageRow(**row) for row in snapshot["stages"]],
                         thresholds=out.RfmThresholds(**snapshot["thresholds"]))
