"""Analytics rules, pure: which business events a stream record stands for, and what each adds.

Two sources feed the aggregates (docs/analytics.md):

- the mini-program's tracking events (`POST /v1/events`), stored one item each in the `events`
  table; each INSERT there is one event;
- the orders table's changes, read from its stream as (old image, new image) pairs: an order
  placed (INSERT), a payment asked for (`prepay` appears), paid (status -> paid), cancelled
  (pending_payment -> cancelled), refunded money (`refunded_fen` grows), fully refunded
  (status -> refunded).

Each business event becomes a `Unit`: counter increments that must be applied exactly once,
named by a key of the event itself (`o:<order>:paid`, `e:<user>:<event id>`, ...). Storage
applies a unit's increments in one transaction with a marker item named by its key, written
only if absent, so a redelivered record adds nothing. Unique visitors per day and funnel stage
are units too (`u:<day>:<stage>:<scope>:<user>`): the first of a user's events that day adds 1.

Days are Asia/Shanghai calendar days, as ISO dates.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Iterable

from chalicelib.clock import CHINA_TZ
from chalicelib.domain.rate_limits import RateLimit

MAX_EVENTS_PER_BATCH = 100
EVENT_RETENTION_DAYS = 90
EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "share")
# A client clock may be wrong: an event is counted at its client time when that lies within
# this window around the moment we received it, else at the moment we received it.
CLIENT_TIME_PAST = timedelta(days=7)
CLIENT_TIME_FUTURE = timedelta(minutes=5)
# One user: a burst of 10 batches, then one a second (the mini-program sends every few seconds).
EVENTS_PER_USER = RateLimit("events-user", burst=10, per_second=1)

TOTAL = "total"
SOURCE_PREFIX = "source#"
PRODUCT_PREFIX = "product#"
DIRECT = "direct"

# Funnel stages, in order, and the attribute counting each stage's unique users per day.
STAGES = ("exposure", "click", "cart", "order", "paid")
STAGE_USERS = {"exposure": "uv", "click": "click_users", "cart": "cart_users", "order": "order_users",
               "paid": "paid_users"}
# What each tracking event counts, on the day's total and on its source.
EVENT_COUNTS = {"page_view": "pv", "product_view": "product_views", "add_to_cart": "add_to_cart",
                "share": "shares"}
EVENT_STAGE = {"product_view": "click", "add_to_cart": "cart"}  # every event is also an exposure

PENDING, PAID, CANCELLED, REFUNDED = "pending_payment", "paid", "cancelled", "refunded"


def day_of(moment: datetime) -> str:
    return moment.astimezone(CHINA_TZ).date().isoformat()


def month_of(day: str) -> str:
    return day[:7]


def counted_at(client_at: datetime, received_at: datetime) -> datetime:
    """When an event counts: its client time if plausible, else when we received it."""
    if received_at - CLIENT_TIME_PAST <= client_at <= received_at + CLIENT_TIME_FUTURE:
        return client_at
    return received_at


def source_key(source: str | None, scene: int | None) -> str:
    """Where a visit came from: the mini-program's own `source` tag, else WeChat's scene value
    (`scene_1007`: a shared card, ...), else `direct`."""
    if source:
        return source
    if scene is not None:
        return f"scene_{scene}"
    return DIRECT


@dataclass
class Unit:
    """Counter increments applied exactly once, under the marker `key`.

    `counts`: (day, scope) -> {attribute: increment} on the daily aggregates; `customer`: the
    user's order summary (user_id, {attribute: increment}, months paid in to add to a set)."""
    key: str
    counts: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    customer: tuple[str, dict[str, int], tuple[str, ...]] | None = None

    def add(self, day: str, scope: str, **increments: int) -> "Unit":
        bucket = self.counts.setdefault((day, scope), {})
        for name, value in increments.items():
            if value:
                bucket[name] = bucket.get(name, 0) + value
        return self


@dataclass(frozen=True)
class PaidDay:
    """An idempotent fact about a customer (first and last paid day: min and max commute)."""
    user_id: str
    day: str


@dataclass
class Derived:
    units: list[Unit] = field(default_factory=list)
    paid_days: list[PaidDay] = field(default_factory=list)

    def extend(self, other: "Derived") -> None:
        self.units += other.units
        self.paid_days += other.paid_days


def visitor_unit(day: str, stage: str, scope: str, user_id: str) -> Unit:
    return Unit(f"u:{day}:{stage}:{scope}:{user_id}").add(day, scope, **{STAGE_USERS[stage]: 1})


# --- tracking events ----------------------------------------------------------------------------

def event_units(event: dict[str, Any]) -> Derived:
    """The units of one stored tracking event (the `events` table's item, as plain values)."""
    kind, user_id = event["kind"], event["user_id"]
    if kind not in EVENT_COUNTS:
        return Derived()
    day = day_of(datetime.fromtimestamp(int(event["at_ms"]) / 1000, CHINA_TZ))
    source = SOURCE_PREFIX + str(event.get("source") or DIRECT)
    counted = {EVENT_COUNTS[kind]: 1}
    if kind == "add_to_cart":
        counted["cart_units"] = int(event.get("quantity") or 1)
    unit = Unit(f"e:{user_id}:{event['event_id']}").add(day, TOTAL, **counted).add(day, source, **counted)
    product_id = event.get("product_id")
    if product_id and kind != "page_view":
        unit.add(day, PRODUCT_PREFIX + str(product_id), **{EVENT_COUNTS[kind]: 1})
    derived = Derived([unit])
    for stage in ("exposure", *([EVENT_STAGE[kind]] if kind in EVENT_STAGE else [])):
        derived.units += [visitor_unit(day, stage, TOTAL, user_id), visitor_unit(day, stage, source, user_id)]
    return derived


# --- orders -------------------------------------------------------------------------------------

def order_units(old: dict[str, Any] | None, new: dict[str, Any] | None, at: datetime) -> Derived:
    """The business events one change of an order stands for (old/new images as plain values;
    `at`: when the change was made, for events whose moment the order does not record)."""
    derived = Derived()
    if new is None:  # a deletion (tests, PIPL tooling): no business event
        return derived
    order_id, user_id = new["order_id"], new["user_id"]
    before = old.get("status") if old else None
    after = new.get("status")
    if old is None:
        derived.extend(_placed(new))
    if not _has(old, "prepay") and _has(new, "prepay"):
        derived.units.append(Unit(f"o:{order_id}:pay_requested").add(day_of(at), TOTAL, pay_requests=1))
    if after == PAID and before != PAID:
        derived.extend(_paid(new, at))
    if after == CANCELLED and before in (None, PENDING):
        day = day_of(_moment(new.get("cancelled_at")) or at)
        timeout = 1 if new.get("cancel_reason") == "timeout" else 0
        derived.units.append(Unit(f"o:{order_id}:cancelled").add(day, TOTAL, cancelled=1, cancelled_timeout=timeout))
    refunded_before = int((old or {}).get("refunded_fen") or 0)
    refunded_after = int(new.get("refunded_fen") or 0)
    if refunded_after > refunded_before:
        fen, day = refunded_after - refunded_before, day_of(at)
        unit = Unit(f"o:{order_id}:refund:{refunded_after}").add(day, TOTAL, refunds=1, refund_fen=fen)
        unit.customer = (user_id, {"monetary_fen": -fen, "refund_fen": fen}, ())
        derived.units.append(unit)
    if after == REFUNDED and before != REFUNDED:
        unit = Unit(f"o:{order_id}:refunded").add(day_of(at), TOTAL, refunded_orders=1)
        unit.customer = (user_id, {"orders_refunded": 1}, ())
        derived.units.append(unit)
    return derived


def _placed(order: dict[str, Any]) -> Derived:
    day = day_of(_moment(order["created_at"]))
    unit = Unit(f"o:{order['order_id']}:placed").add(day, TOTAL, orders=1, order_fen=int(order["payable_fen"]))
    for product_id, units, _ in _by_product(order):
        unit.add(day, PRODUCT_PREFIX + product_id, orders=1, ordered_units=units)
    return Derived([unit, visitor_unit(day, "order", TOTAL, order["user_id"])])


def _paid(order: dict[str, Any], at: datetime) -> Derived:
    day = day_of(_moment(order.get("paid_at")) or at)
    payable, user_id = int(order["payable_fen"]), order["user_id"]
    unit = Unit(f"o:{order['order_id']}:paid").add(day, TOTAL, paid_orders=1, gmv_fen=payable)
    for product_id, units, fen in _by_product(order):
        unit.add(day, PRODUCT_PREFIX + product_id, paid_orders=1, paid_units=units, paid_fen=fen)
    unit.customer = (user_id, {"orders_paid": 1, "monetary_fen": payable}, (month_of(day),))
    return Derived([unit, visitor_unit(day, "paid", TOTAL, user_id)], [PaidDay(user_id, day)])


def _by_product(order: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(product_id, units, payable fen) per product of the order's lines."""
    totals: dict[str, list[int]] = {}
    for line in order.get("lines") or ():
        entry = totals.setdefault(str(line["product_id"]), [0, 0])
        entry[0] += int(line["quantity"])
        entry[1] += int(line["payable_fen"])
    return [(product_id, units, fen) for product_id, (units, fen) in sorted(totals.items())]


def _has(image: dict[str, Any] | None, name: str) -> bool:
    return bool(image) and image.get(name) not in (None, {}, "")


def _moment(value: Any) -> datetime | None:
    """PynamoDB's UTCDateTimeAttribute text (`2024-05-01T02:03:04.000000+0000`), or None."""
    if not value:
        return None
    return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S.%f%z")


# --- reading the aggregates -----------------------------------------------------------------------

def days_between(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=offset)).isoformat() for offset in range((last - first).days + 1)]


def aov_fen(gmv_fen: int, paid_orders: int) -> int:
    """Average order value: paid amount per paid order, rounded down (0 without orders)."""
    return gmv_fen // paid_orders if paid_orders else 0


def permille(part: int, whole: int) -> int:
    return part * 1000 // whole if whole else 0


def merge_counts(rows: Iterable[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for row in rows:
        for name, value in row.items():
            total[name] = total.get(name, 0) + value
    return total
