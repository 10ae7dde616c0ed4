"""Stock changes outside orders (merchant adjustments, POS/warehouse syncs) and low-stock alerts.

An absolute count sets `available` and moves `stock_in` by the same difference (API.md); both
kinds are computed from a consistent read and applied conditioned on `available` not having
moved since, retried a few times if an order got in between.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Iterable

from chalicelib import clock
from chalicelib.domain import cursors
from chalicelib.errors import Conflict, NotFound
from chalicelib.log import get_logger
from chalicelib.settings import get_settings
from chalicelib.storage import alerts, stock

log = get_logger(__name__)

MAX_ATTEMPTS = 5
LOW_STOCK = "low_stock"


@dataclass(frozen=True)
class StockChange:
    sku_id: str
    delta: int | None = None
    absolute: int | None = None
    store_id: str | None = None  # a store's shelf count (storage/stores.py), not the online stock


@dataclass(frozen=True)
class SyncResult:
    sku_id: str
    status: str  # applied, already_applied, sku_not_found, store_not_found, would_go_negative, busy
    available: int | None
    store_id: str | None = None


def _apply(change: StockChange, movement_key: str, reason: str, source: str, *, key_is_new: bool = False) -> int:
    """Apply one change; returns available afterwards. Raises stock.* errors.

    `key_is_new`: the movement key was made for this call alone, so finding it applied means our
    own write committed and only its answer was lost (botocore then retried it): the change is
    done, and its result is answered as such.
    """
    for _ in range(MAX_ATTEMPTS):
        before = stock.current_available(change.sku_id)
        delta = change.delta if change.delta is not None else change.absolute - before
        try:
            stock.apply_movement(stock.Movement(change.sku_id, movement_key, delta, reason, source, before,
                                                clock.now()))
        except stock.AvailableChanged:
            continue  # an order reserved or released units meanwhile: recompute
        except stock.AlreadyApplied:
            if not key_is_new:
                raise
        after_stock_moved([change.sku_id], decreased=delta < 0)
        return before + delta
    raise Conflict("The stock kept changing; try again", code="stock_busy")


def adjust_stock(sku_id: str, change: StockChange, reason: str, admin: str) -> int:
    """A merchant's adjustment, recorded with its reason; returns available afterwards."""
    key = f"adj#{clock.now().isoformat()}#{secrets.token_hex(4)}"
    try:
        return _apply(change, key, reason, admin, key_is_new=True)
    except stock.SkuNotFound:
        raise NotFound("No such SKU", code="sku_not_found") from None
    except stock.WouldGoNegative:
        raise Conflict("available cannot go below zero (reserved and sold units stay)", code="insufficient_stock",
                       details=[{"sku_id": sku_id, "requested": -(change.delta or 0),
                                 "available": stock.current_available(sku_id)}]) from None


def sync_stock(sync_id: str, source: str, changes: list[StockChange]) -> list[SyncResult]:
    """Apply a POS/warehouse sync item by item; a repeated sync_id applies nothing twice."""
    results = []
    for change in changes:
        if change.store_id is not None:
            results.append(_sync_shelf(sync_id, source, change))
            continue
        try:
            available = _apply(change, f"sync#{sync_id}", f"sync:{source}", source)
            results.append(SyncResult(change.sku_id, "applied", available))
        except stock.AlreadyApplied:
            results.append(SyncResult(change.sku_id, "already_applied", None))
        except stock.SkuNotFound:
            results.append(SyncResult(change.sku_id, "sku_not_found", None))
        except stock.WouldGoNegative:
            results.append(SyncResult(change.sku_id, "would_go_negative", None))
        except Conflict:
            results.append(SyncResult(change.sku_id, "busy", None))
    log.info("stock sync applied", sync_id=sync_id, items=len(changes),
             applied=sum(result.status == "applied" for result in results))
    return results


def _sync_shelf(sync_id: str, source: str, change: StockChange) -> SyncResult:
    """A store's POS count for one SKU (its shelf: storage/stores.py), once per sync id."""
    from chalicelib.storage import catalog_batch, stores
    from chalicelib.storage.base import ConditionFailed

    def result(status: str, units: int | None = None) -> SyncResult:
        return SyncResult(change.sku_id, status, units, change.store_id)

    if stores.get_store(change.store_id) is None:
        return result("store_not_found")
    if change.sku_id not in catalog_batch.get_sellable_skus([change.sku_id]):
        return result("sku_not_found")
    try:
        return result("applied", stores.sync_shelf(change.store_id, change.sku_id, sync_id, source, delta=change.delta,
                                                   absolute=change.absolute, now=clock.now()))
    except stores.StoreSyncAlreadyApplied:
        return result("already_applied")
    except stores.StoreStockWouldGoNegative:
        return result("would_go_negative")
    except ConditionFailed:
        return result("busy")


def after_stock_moved(sku_ids: Iterable[str], *, decreased: bool) -> None:
    """Record a low-stock alert for SKUs that just crossed down, or re-arm ones back above.

    Alerts are advice, not money: a failure here is logged and never fails the caller.
    """
    try:
        candidates = alerts.at_or_below_threshold(list(sku_ids)) if decreased else list(sku_ids)
    except Exception:  # noqa: BLE001 - see docstring
        log.exception("low-stock check failed")
        return
    for sku_id in candidates:
        try:
            if decreased:
                crossed = alerts.flag_low_stock_crossing(sku_id)
                if crossed:
                    product_id, available, threshold = crossed
                    alerts.record_alert(LOW_STOCK, clock.now(), sku_id=sku_id, product_id=product_id,
                                        available=available, threshold=threshold)
                    log.info("low stock", sku_id=sku_id, available=available, threshold=threshold)
            else:
                alerts.rearm_low_stock(sku_id)
        except Exception:  # noqa: BLE001 - see docstring
            log.exception("low-stock check failed", sku_id=sku_id)


def list_alerts(kind: str, limit: int, cursor: str | None) -> tuple[list[alerts.Alert], str | None]:
    secret, scope = get_settings().auth_token_secret, f"alerts:{kind}"
    page, last_key = alerts.list_alerts(kind, limit, cursors.decode_cursor(cursor, secret, scope))
    return page, cursors.encode_cursor(last_key, secret, scope)
