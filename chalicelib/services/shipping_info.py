"""Telling WeChat what we shipped (小程序发货信息管理服务, `upload_shipping_info`).

WeChat holds a mini-program's payments frozen until the merchant uploads the shipping info, so
every paid order gets one upload: express orders when shipped (logistics_type 1, with WeChat's
delivery_id for the carrier), pickup orders when the merchant marks them ready (4), virtual
goods as soon as they are paid (3).

The order's `shipping_upload` map is the state: `pending` from the moment the upload is queued
(a conditional write, so a repeated ship or notify queues nothing twice), then `uploaded` or
`failed`. A worker (jobs/shipping.py) makes the call; a transient refusal raises so SQS
redelivers it (and dead-letters it after max receives); a permanent one is recorded with its
errcode and an alert `shipping_upload_failed`. Queueing never fails the ship or pay request it
follows: a pending upload left idle (queue send failed, message dead-lettered) is re-queued by
a ten-minute sweep, up to MAX_ATTEMPTS calls in all.
"""
from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from typing import Any

from chalicelib import clock, queues
from chalicelib.errors import AppError, BadRequest, UpstreamError
from chalicelib.log import get_logger
from chalicelib.schemas.shipping import ShippingUploadJob
from chalicelib.services.access_token import call_with_access_token
from chalicelib.services.wechat_clients import open_api
from chalicelib.settings import get_settings
from chalicelib.storage import alerts, idempotency, order_lists, orders, users
from chalicelib.storage.orders import Order
from chalicelib.wechat.http import WeChatApiError, WeChatUnavailable
from chalicelib.wechat.open_api import ACCESS_TOKEN_ERRCODES

log = get_logger(__name__)

PENDING, UPLOADED, FAILED = orders.SHIPPING_UPLOAD_PENDING, "uploaded", "failed"
EXPRESS, SAME_CITY, VIRTUAL_GOODS, USER_PICKUP = 1, 2, 3, 4  # WeChat's logistics_type
LOGISTICS_TYPES = {"express": EXPRESS, "same_city": SAME_CITY, "pickup": USER_PICKUP, "none": VIRTUAL_GOODS}
UNIFIED_DELIVERY, SPLIT_DELIVERY = 1, 2
MAX_PACKAGES = 15  # WeChat's shipping_list limit; more packages are uploaded as one unified item
ITEM_DESC_MAX = 120  # characters, WeChat's limit

# WeChat's delivery_id (get_delivery_list) for the carrier names merchants type.
CARRIER_CODES = {"顺丰速运": "SF", "中通快递": "ZTO", "圆通速递": "YTO", "韵达速递": "YD", "申通快递": "STO",
                 "京东物流": "JD", "邮政EMS": "EMS"}
_DELIVERY_ID = re.compile(r"^[A-Z][A-Z0-9_]{1,15}$")  # a delivery_id given as is, e.g. "DB"
CONTACT_REQUIRED = frozenset({"SF"})  # WeChat wants a (masked) phone for SF waybills

# Worth retrying: WeChat busy or erroring (-1, 10060012, 10060019), rate limits, a token that
# stayed stale after one refresh, and 10060001 "支付单不存在", which WeChat answers for about a
# minute after a payment, until the payment reaches its shipping system.
TRANSIENT_ERRCODES = frozenset({-1, 10060001, 10060012, 10060019, 45009, 45011}) | ACCESS_TOKEN_ERRCODES
MAX_ATTEMPTS = 15  # ~3 rounds of 5 SQS receives, ~an hour: then failed, for a person to look at
PAID_DELAY_SECONDS = 60  # first try for virtual goods a minute after payment (see 10060001)
LEASE = timedelta(minutes=2)
KEEP_KEYS_FOR = timedelta(days=7)
ALERT_KIND = "shipping_upload_failed"

SWEEP_IDLE_AFTER = timedelta(minutes=15)  # > 5 receives x 60 s visibility: the message is gone
# How far back (order creation) the sweep looks per status. Shipped orders complete after
# AUTO_CONFIRM_DAYS anyway; virtual goods are paid within minutes of being ordered.
SWEEP_LOOKBACK = {"paid": timedelta(days=2), "shipped": timedelta(days=30), "completed": timedelta(days=3)}


# ---------------------------------------------------------------------------- carriers

def carrier_code(carrier: str) -> str | None:
    """WeChat's delivery_id for a carrier name, or the name itself if it is one; else None."""
    name = (carrier or "").strip()
    return CARRIER_CODES.get(name) or (name if _DELIVERY_ID.match(name) else None)


def check_carrier(order: Order, carrier: str) -> None:
    """Before an express order ships: its carrier must be one WeChat knows (400 unknown_carrier).

    Refused here rather than passed through: WeChat would refuse the upload for good, after the
    order is already marked shipped, and the merchant is at the ship screen right now.
    """
    if order.delivery_method == "express" and carrier_code(carrier) is None:
        known = ", ".join(CARRIER_CODES)
        raise BadRequest(f"Unknown carrier {carrier!r}", code="unknown_carrier", details=[{
            "field": "carrier", "message": f"use one of {known}, or WeChat's delivery_id (e.g. SF)"}])


# ---------------------------------------------------------------------------- queueing

def after_shipped(order: Order) -> Order:
    """The order was just shipped (express) or marked ready (pickup): queue its upload.
    Returns the order with its upload state, for the ship answer."""
    if order.delivery_method == "none":  # virtual goods were queued when paid
        return order
    upload = _start(order.order_id, LOGISTICS_TYPES.get(order.delivery_method, EXPRESS), "shipped", 0)
    return dataclasses.replace(order, shipping_upload=upload) if upload else order


def after_paid(order: Order) -> None:
    """The order was just paid: virtual goods count as delivered now, so queue their upload."""
    if order.delivery_method == "none":
        _start(order.order_id, VIRTUAL_GOODS, "paid", PAID_DELAY_SECONDS)


def _start(order_id: str, logistics_type: int, reason: str, delay_seconds: int) -> dict[str, Any] | None:
    """Mark the upload pending (once per order) and queue it; returns the pending state, if
    written. Never raises: the caller's state change already happened, and the sweep picks up
    what was not queued."""
    upload = _fresh(logistics_type)
    try:
        if not orders.update_shipping_upload(order_id, upload, expected_status=None):
            return None  # started before: a repeated ship or notify
    except Exception:  # noqa: BLE001 - logged; the sweep starts it
        log.exception("could not record the shipping-info upload; the sweep will", order_id=order_id)
        return None
    try:
        _send(order_id, reason, delay_seconds)
    except Exception:  # noqa: BLE001 - logged; the sweep re-queues it
        log.exception("could not queue the shipping-info upload; the sweep will", order_id=order_id)
    return upload


def _fresh(logistics_type: int) -> dict[str, Any]:
    return {"status": PENDING, "logistics_type": logistics_type, "attempts": 0, "updated_at": clock.now()}


def _send(order_id: str, reason: str, delay_seconds: int = 0) -> None:
    job = ShippingUploadJob(order_id=order_id, reason=reason)
    queues.send_message(queues.SHIPPING_UPLOADS, job.model_dump(mode="json"), delay_seconds=delay_seconds)


# ---------------------------------------------------------------------------- the worker

def upload_shipping_info(job: ShippingUploadJob) -> str:
    """Upload one order's shipping info unless already done; returns what happened.

    Idempotent by order: only a pending upload is attempted, and the idempotency lease keeps two
    deliveries (a redelivery and a sweep's re-queue) from calling WeChat at the same time.
    """
    order = orders.get_order(job.order_id)
    if order is None:
        log.warning("shipping upload for an unknown order dropped", order_id=job.order_id)
        return "missing"
    if (order.shipping_upload or {}).get("status") != PENDING:
        return "duplicate"
    try:
        outcome = idempotency.run_once(f"shipping_upload#{order.order_id}", clock.now(), LEASE, KEEP_KEYS_FOR,
                                       lambda: _attempt(order))
    except idempotency.Busy:
        raise UpstreamError("another worker is uploading this order's shipping info", code="in_progress") from None
    return "duplicate" if outcome is idempotency.DONE_BEFORE else outcome


def _attempt(order: Order) -> str:
    upload = order.shipping_upload or {}
    attempts = int(upload.get("attempts") or 0) + 1
    if order.status in ("cancelled", "refunded"):  # nothing left to ship; WeChat would refuse
        _record(order, upload, status=FAILED, attempts=attempts - 1, errcode=None,
                errmsg=f"not uploaded: the order was {order.status} first")
        return "skipped"
    body, problem = _body_or_problem(order, int(upload.get("logistics_type") or EXPRESS))
    if problem:
        return _refused(order, upload, attempts - 1, None, problem)
    try:
        call_with_access_token(lambda token: open_api().upload_shipping_info(token, body))
    except WeChatApiError as error:
        if error.errcode in TRANSIENT_ERRCODES:
            return _retry_later(order, upload, attempts, error.errcode, error.errmsg)
        return _refused(order, upload, attempts, error.errcode, error.errmsg)
    except (WeChatUnavailable, AppError) as error:  # no answer, or no access token
        return _retry_later(order, upload, attempts, None, str(error))
    _record(order, upload, status=UPLOADED, attempts=attempts, uploaded_at=clock.now(), errcode=None, errmsg=None)
    log.info("shipping info uploaded to WeChat", order_id=order.order_id, attempts=attempts)
    return "uploaded"


def _retry_later(order: Order, upload: dict, attempts: int, errcode: int | None, errmsg: str) -> str:
    """Record the attempt and raise for redelivery; after MAX_ATTEMPTS give up (failed + alert)."""
    if attempts >= MAX_ATTEMPTS:
        return _refused(order, upload, attempts, errcode, f"gave up after {attempts} attempts: {errmsg}")
    _record(order, upload, status=PENDING, attempts=attempts, errcode=errcode, errmsg=errmsg)
    log.warning("shipping upload failed for now; retrying", order_id=order.order_id, errcode=errcode,
                attempts=attempts)
    raise UpstreamError("WeChat did not accept the shipping info yet; retry later", code="shipping_upload_retry",
                        details=[{"errcode": errcode}])


def _refused(order: Order, upload: dict, attempts: int, errcode: int | None, errmsg: str) -> str:
    _record(order, upload, status=FAILED, attempts=attempts, errcode=errcode, errmsg=errmsg)
    log.warning("shipping upload refused", order_id=order.order_id, errcode=errcode)
    alerts.record_alert(ALERT_KIND, clock.now(), detail={
        "order_id": order.order_id, "out_trade_no": order.out_trade_no,
        "logistics_type": int(upload.get("logistics_type") or 0), "errcode": errcode if errcode is not None else 0,
        "errmsg": errmsg[:300], "attempts": attempts})
    return "failed"


def _record(order: Order, upload: dict, *, status: str, attempts: int, **fields: Any) -> None:
    """Write the outcome (condition: still pending, so nothing overwrites a finished upload)."""
    if "errmsg" in fields and fields["errmsg"]:
        fields["errmsg"] = fields["errmsg"][:300]
    new = {**upload, **fields, "status": status, "attempts": attempts, "updated_at": clock.now()}
    if not orders.update_shipping_upload(order.order_id, new, expected_status=PENDING):
        log.warning("shipping upload state changed meanwhile; outcome not recorded", order_id=order.order_id)


# ---------------------------------------------------------------------------- the request body

def _body_or_problem(order: Order, logistics_type: int) -> tuple[dict[str, Any], str | None]:
    """WeChat's request body for the order, or why it cannot be built (a permanent problem)."""
    user = users.get_user(order.user_id)
    if user is None:
        return {}, "the order's user is unknown (no openid)"
    packages = list(order.shipments) if logistics_type == EXPRESS and 1 < len(order.shipments) <= MAX_PACKAGES \
        else [None]  # split shipments (services/order_ops.py): one item per package, WeChat's split mode
    items: list[dict[str, Any]] = []
    for package in packages:
        item: dict[str, Any] = {"item_desc": item_desc(order, package)}
        if logistics_type == EXPRESS:
            shipment = package or order.shipment or {}
            code = carrier_code(str(shipment.get("carrier", "")))
            if code is None:
                return {}, f"unknown carrier {shipment.get('carrier')!r}"
            item.update(tracking_no=str(shipment.get("tracking_no", "")), express_company=code)
            phone = str((order.address or {}).get("phone") or "")
            if code in CONTACT_REQUIRED and phone:
                item["contact"] = {"receiver_contact": mask_phone(phone)}
        items.append(item)
    when = order.shipped_at if logistics_type != VIRTUAL_GOODS else order.paid_at
    split = len(items) > 1
    body = {
        "order_key": _order_key(order), "logistics_type": logistics_type,
        "delivery_mode": SPLIT_DELIVERY if split else UNIFIED_DELIVERY,
        **({"is_all_delivered": True} if split else {}),  # uploaded once, when the last package shipped
        "shipping_list": items,
        # The event's own time, not the send time: every retry sends the very same request, and
        # WeChat orders updates of one payment by upload_time.
        "upload_time": clock.to_iso(when or clock.now()),
        "payer": {"openid": user.openid},
    }
    return body, None


def _order_key(order: Order) -> dict[str, Any]:
    """By WeChat Pay's transaction_id once known (it names the payment WeChat recorded, even
    for a late payment that revived the order), else by our mchid + out_trade_no."""
    if order.transaction_id:
        return {"order_number_type": 2, "transaction_id": order.transaction_id}
    return {"order_number_type": 1, "mchid": get_settings().pay.mch_id, "out_trade_no": order.out_trade_no}


def item_desc(order: Order, package: dict[str, Any] | None = None) -> str:
    """"红富士苹果*2;榴莲*1" (the order's lines, or one package's), cut to WeChat's 120 characters."""
    names = {line.sku_id: line.name for line in order.lines}
    units = ([(names.get(line["sku_id"], line["sku_id"]), line["quantity"]) for line in package["lines"]]
             if package else [(line.name, line.quantity) for line in order.lines])
    text = ";".join(f"{name}*{quantity}" for name, quantity in units)
    return text if len(text) <= ITEM_DESC_MAX else text[:ITEM_DESC_MAX - 3] + "..."


def mask_phone(phone: str) -> str:
    """WeChat's masked contact: the last 4 digits in clear, e.g. 138****8000."""
    digits = phone.strip()
    return f"{digits[:3]}****{digits[-4:]}" if len(digits) >= 11 else f"****{digits[-4:]}"


# ---------------------------------------------------------------------------- sweep and view

def sweep_stalled_uploads(limit: int = 100) -> dict[str, int]:
    """Re-queue uploads idle for SWEEP_IDLE_AFTER: pending ones whose message was lost or
    dead-lettered, and shipped (or paid virtual) orders whose upload was never started."""
    now = clock.now()
    outcomes: dict[str, int] = {}
    for status, lookback in SWEEP_LOOKBACK.items():
        for order in order_lists.shipping_upload_stragglers(status, now - lookback, now - SWEEP_IDLE_AFTER, limit):
            try:
                outcome = _requeue(order)
            except Exception:  # noqa: BLE001 - one order must not stop the sweep
                log.exception("could not re-queue a shipping upload", order_id=order.order_id)
                outcome = "error"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def _requeue(order: Order) -> str:
    upload = order.shipping_upload
    if upload is None:
        claimed = orders.update_shipping_upload(
            order.order_id, _fresh(LOGISTICS_TYPES.get(order.delivery_method, EXPRESS)), expected_status=None)
    else:  # compare-and-set on updated_at: two sweeps (or a worker) racing re-queue it once
        claimed = orders.update_shipping_upload(order.order_id, {**upload, "updated_at": clock.now()},
                                                expected_status=PENDING, expected_updated_at=upload["updated_at"])
    if not claimed:
        return "raced"
    _send(order.order_id, "sweep")
    return "requeued"


def upload_view(order: Order) -> dict[str, Any] | None:
    """The order's upload state for the admin order view (times as ISO 8601)."""
    upload = order.shipping_upload
    if not upload:
        return None
    when = lambda moment: clock.to_iso(moment) if moment else None  # noqa: E731
    return {"status": upload["status"], "logistics_type": int(upload["logistics_type"]),
            "attempts": int(upload.get("attempts") or 0), "updated_at": when(upload.get("updated_at")),
            "uploaded_at": when(upload.get("uploaded_at")),
            "errcode": None if upload.get("errcode") is None else int(upload["errcode"]),
            "errmsg": upload.get("errmsg")}
