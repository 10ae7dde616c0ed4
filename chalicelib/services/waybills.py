"""E-waybills through WeChat's logistics service (物流助手): create, cancel, the carrier table.

Creating is idempotent without a lock (docs/logistics.md):
1. a pending marker (status `creating`, with the attempt's `wx_order_id` and a fingerprint of
   what was asked) is written with a conditional put before WeChat is called;
2. WeChat's addOrder is called with `order_id = wx_order_id`: WeChat answers the same waybill for
   the same order_id, so a retry (or two creates racing) makes one waybill;
3. the waybill number is stored (condition: still `creating` at that seq);
4. the order ships through order_lifecycle.ship_order (carrier + waybill number), which is
   idempotent too; the waybill records that it shipped.
A crash anywhere leaves a state the same request completes. WeChat refusing the create marks it
`failed` (a new create may start over, with a new wx_order_id); no answer keeps it pending.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib import clock, logistics_settings
from chalicelib.errors import AppError, BadRequest, Conflict, NotFound, UpstreamError
from chalicelib.log import get_logger
from chalicelib.services import order_lifecycle, shipping_info
from chalicelib.services.access_token import call_with_access_token
from chalicelib.services.order_reads import get_order
from chalicelib.settings import get_settings
from chalicelib.storage import users, waybills
from chalicelib.storage.base import ConditionFailed
from chalicelib.storage.waybills import Waybill
from chalicelib.wechat.http import WeChatApiError, WeChatUnavailable
from chalicelib.wechat.logistics import ALREADY_CANCELLED, CANNOT_CANCEL_HAS_PATH, Carrier, WeChatLogistics

if TYPE_CHECKING:
    from chalicelib.schemas.logistics import WaybillBody
    from chalicelib.storage.orders import Order

log = get_logger(__name__)

TRANSIENT_ERRCODES = frozenset({-1, 45009, 45011})
CARRIERS_TTL_SECONDS = 3600
START_ATTEMPTS = 3
ORDER_PAGE = "pages/order/detail?id={order_id}"
DEFAULT_SPACE_CM = (30.0, 20.0, 10.0)
MAX_CARGO_LINES = 30
_NAMES_BY_CODE = {code: name for name, code in shipping_info.CARRIER_CODES.items()}


def client() -> WeChatLogistics:
    settings = get_settings()
    return WeChatLogistics(settings.wechat_api_base, timeout=settings.wechat_http_timeout_seconds)


# ---------------------------------------------------------------------------- carriers (cached)

@dataclass
class _CarrierCache:
    key: str = ""
    carriers: tuple[Carrier, ...] = ()
    fetched_monotonic: float = 0.0
    fetched_at: int = 0  # epoch seconds, by our clock


_cache = _CarrierCache()
_cache_lock = threading.Lock()


def list_carriers(refresh: bool = False) -> tuple[list[Carrier], int]:
    """WeChat's carriers (getAllDelivery) and when they were fetched (epoch seconds), kept in
    this process for CARRIERS_TTL_SECONDS (per WeChat base URL and appid)."""
    settings = get_settings()
    key = f"{settings.wechat_api_base}|{settings.wechat_appid}"
    with _cache_lock:
        if not refresh and _cache.key == key and time.monotonic() - _cache.fetched_monotonic < CARRIERS_TTL_SECONDS:
            return list(_cache.carriers), _cache.fetched_at
    carriers = _call("the carrier list", lambda token: client().get_all_delivery(token))
    with _cache_lock:
        _cache.key, _cache.carriers = key, tuple(carriers)
        _cache.fetched_monotonic, _cache.fetched_at = time.monotonic(), clock.epoch_seconds()
        return list(carriers), _cache.fetched_at


def forget_carriers() -> None:
    with _cache_lock:
        _cache.key = ""


def _carrier(delivery_id: str, service_type: int | None) -> tuple[Carrier, int, str]:
    """The carrier and the service asked for (default its first); 400 when WeChat knows neither."""
    carrier = next((c for c in list_carriers()[0] if c.delivery_id == delivery_id), None)
    if carrier is None:
        raise BadRequest(f"WeChat's logistics service has no carrier {delivery_id!r}", code="unknown_carrier",
                         details=[{"field": "delivery_id", "message": "see GET /v1/admin/carriers"}])
    services = dict(carrier.services) or {0: "标准快递"}
    chosen = service_type if service_type is not None else next(iter(services))
    if chosen not in services:
        raise BadRequest(f"{carrier.delivery_name} has no service type {chosen}", code="unknown_service_type",
                         details=[{"field": "service_type", "message": f"one of {sorted(services)}"}])
    return carrier, chosen, services[chosen]


# ---------------------------------------------------------------------------- create

def create_waybill(order_id: str, body: WaybillBody) -> tuple[Waybill, Order, bool]:
    """Make (or finish making) the order's e-waybill and ship the order with it. Returns the
    waybill, the order and whether this call made the waybill (False: it existed already)."""
    order = get_order(order_id)
    fingerprint = _fingerprint(body)
    for _ in range(START_ATTEMPTS):
        current = waybills.get_waybill(order_id)
        if current is not None and current.status in (waybills.CREATED, waybills.DELIVERED):
            _same_request(current, fingerprint, "waybill_exists", "The order has a waybill already; cancel it first")
            return (*_ship(current, order), False)
        if current is not None and current.status == waybills.CREATING:
            _same_request(current, fingerprint, "waybill_in_progress",
                          "A waybill is being made with other parameters; repeat that request to finish it")
            return (*_ship(_ask_wechat(current, order, body), order), True)
        _check_order(order)
        fields = _attempt_fields(order, body, fingerprint)
        try:
            pending = waybills.start(order_id, previous=current, now=clock.now(), **fields)
        except ConditionFailed:  # another create got there first: read what it wrote
            continue
        return (*_ship(_ask_wechat(pending, order, body), order), True)
    raise UpstreamError("The waybill kept changing while being made; try again", code="waybill_busy")


def _fingerprint(body: WaybillBody) -> str:
    return hashlib.sha256(json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:32]


def _same_request(current: Waybill, fingerprint: str, code: str, message: str) -> None:
    if current.fingerprint != fingerprint:
        raise Conflict(message, code=code, details=[{"waybill_id": current.waybill_id, "status": current.status,
                                                     "delivery_id": current.delivery_id, "biz_id": current.biz_id}])


def _check_order(order: Order) -> None:
    """A new waybill is for a paid express order with an address, no refund in flight."""
    if order.delivery_method != "express":
        raise Conflict("Only express orders ship with a waybill", code="not_express")
    if order.status != "paid":
        raise Conflict(f"The order is {order.status}; a waybill is for a paid order", code="invalid_order_state")
    if order.refunds_in_flight:
        raise Conflict("A refund of these goods is under way: ship after it ends", code="refund_in_progress",
                       details=[{"out_refund_no": number} for number in sorted(order.refunds_in_flight)])
    if not order.address:
        raise Conflict("The order has no address to ship to", code="address_required")


def _attempt_fields(order: Order, body: WaybillBody, fingerprint: str) -> dict[str, Any]:
    carrier, service_type, service_name = _carrier(body.delivery_id, body.service_type)
    user = users.get_user(order.user_id)
    if user is None:
        raise Conflict("The buyer's account is gone: WeChat needs their openid", code="buyer_unknown")
    # Refuse (409 logistics_not_configured) before writing anything when a setting is missing or bad.
    _sender(), logistics_settings.no_pickup_after(), logistics_settings.poll_after()
    logistics_settings.default_weight_kg()
    return {"delivery_id": carrier.delivery_id, "delivery_name": carrier.delivery_name, "biz_id": body.biz_id,
            "service_type": service_type, "service_name": service_name or "标准快递", "fingerprint": fingerprint,
            "openid": user.openid}


def _sender() -> logistics_settings.Sender:
    try:
        return logistics_settings.sender()
    except logistics_settings.LogisticsSettingsError as error:  # a 409 naming the setting
        log.error("logistics is not configured", problem=str(error))
        raise


def wechat_body(waybill: Waybill, order: Order, body: WaybillBody) -> dict[str, Any]:
    """addOrder's request: sender from LOGISTICS_SENDER, receiver from the order's address
    snapshot, cargo and goods from its lines."""
    address = order.address or {}
    receiver = {"name": address.get("name", ""), "mobile": address.get("phone", ""),
                "province": address.get("province", ""), "city": address.get("city", ""),
                "area": address.get("district", ""), "address": address.get("detail", "")}
    if address.get("postal_code"):
        receiver["post_code"] = address["postal_code"]
    units, lines = sum(line.quantity for line in order.lines), order.lines[:MAX_CARGO_LINES]
    x, y, z = DEFAULT_SPACE_CM
    cargo = {"count": units, "weight": body.weight_kg or logistics_settings.default_weight_kg(),
             "space_x": body.space_x or x, "space_y": body.space_y or y, "space_z": body.space_z or z,
             "detail_list": [{"name": line.name[:64], "count": line.quantity} for line in lines]}
    shop = {"wxa_path": ORDER_PAGE.format(order_id=order.order_id), "goods_name": shipping_info.item_desc(order),
            "goods_count": units, "detail_list": [{"goods_name": line.name[:64]} for line in lines]}
    image = logistics_settings.shop_img_url()
    if image:
        shop["img_url"] = image
    request = {"add_source": 0, "order_id": waybill.wx_order_id, "openid": waybill.openid,
               "delivery_id": waybill.delivery_id, "biz_id": waybill.biz_id, "sender": _sender().as_wechat(),
               "receiver": receiver, "cargo": cargo, "shop": shop,
               "insured": {"use_insured": 1 if body.insured_value_fen else 0,
                           "insured_value": body.insured_value_fen or 0},
               "service": {"service_type": waybill.service_type, "service_name": waybill.service_name},
               "expect_time": int(body.expect_time.timestamp()) if body.expect_time else 0}
    if body.custom_remark:
        request["custom_remark"] = body.custom_remark
    return request


def _ask_wechat(pending: Waybill, order: Order, body: WaybillBody) -> Waybill:
    """addOrder for the pending attempt, then store the waybill (or the refusal)."""
    request = wechat_body(pending, order, body)
    try:
        answer = call_with_access_token(lambda token: client().add_order(token, request))
    except WeChatApiError as error:
        if error.errcode in TRANSIENT_ERRCODES:
            raise UpstreamError("WeChat is busy; repeat the request to finish the waybill",
                                details=[{"errcode": error.errcode}]) from None
        try:
            waybills.mark_failed(pending, error.errcode, error.errmsg, clock.now())
        except ConditionFailed:
            pass  # a racing create stored an answer meanwhile; the next request reads it
        log.warning("WeChat refused the waybill", order_id=order.order_id, errcode=error.errcode)
        raise UpstreamError(f"WeChat refused the waybill (errcode {error.errcode})", code="waybill_refused",
                            details=[{"errcode": error.errcode, "errmsg": error.errmsg[:200]}]) from None
    except WeChatUnavailable:
        raise UpstreamError("WeChat did not answer; repeat the request to finish the waybill") from None
    now = clock.now()
    try:
        created = waybills.mark_created(pending, answer.waybill_id, dict(answer.waybill_data), now,
                                        watch_at=now + logistics_settings.no_pickup_after(),
                                        poll_at=now + logistics_settings.poll_after())
    except ConditionFailed:  # a racing create stored it first: WeChat gave it the same waybill
        created = waybills.get_waybill(order.order_id)
        if created is None or created.seq != pending.seq or created.waybill_id != answer.waybill_id:
            raise Conflict("The waybill changed while being made; read it again", code="waybill_busy") from None
    log.info("waybill created", order_id=order.order_id, waybill_id=answer.waybill_id, delivery_id=pending.delivery_id)
    return created


def carrier_name(waybill: Waybill) -> str:
    """What the order's shipment names: the carrier's name the shop knows (顺丰速运), else its id."""
    return _NAMES_BY_CODE.get(waybill.delivery_id, waybill.delivery_id)


def _ship(waybill: Waybill, order: Order) -> tuple[Waybill, Order]:
    """Ship the order with the waybill (once; order_lifecycle answers a repeat unchanged)."""
    if waybill.shipped or waybill.waybill_id is None:
        return waybill, get_order(order.order_id)
    shipped = order_lifecycle.ship_order(order.order_id, carrier_name(waybill), waybill.waybill_id)
    if shipped.status != "shipped" or (shipped.shipment or {}).get("tracking_no") != waybill.waybill_id:
        return waybill, shipped  # shipped otherwise meanwhile (by hand): the waybill says it did not ship it
    try:
        return waybills.mark_shipped(waybill, clock.now()), shipped
    except ConditionFailed:
        return waybills.get_waybill(order.order_id) or waybill, shipped


# ---------------------------------------------------------------------------- read and cancel

def get_waybill(order_id: str) -> tuple[Waybill, Order]:
    order = get_order(order_id)
    waybill = waybills.get_waybill(order_id)
    if waybill is None:
        raise NotFound("The order has no waybill", code="waybill_not_found")
    return waybill, order


def cancel_waybill(order_id: str) -> tuple[Waybill, Order]:
    """Cancel the waybill before the parcel is picked up (WeChat refuses after: 409). Cancelling
    again answers it unchanged. The order stays as it is (docs/logistics.md)."""
    waybill, order = get_waybill(order_id)
    if waybill.status == waybills.CANCELLED:
        return waybill, order
    if waybill.status == waybills.CREATING:
        raise Conflict("The waybill is still being made; finish it first", code="waybill_in_progress")
    if waybill.status == waybills.FAILED:
        raise Conflict("WeChat made no waybill for this order", code="waybill_not_created")
    if waybill.status == waybills.DELIVERED or waybill.picked_up_at is not None:
        raise _picked_up()
    try:
        call_with_access_token(lambda token: client().cancel_order(
            token, waybill.wx_order_id, waybill.openid, waybill.delivery_id, waybill.waybill_id))
    except WeChatApiError as error:
        if error.errcode == CANNOT_CANCEL_HAS_PATH:
            raise _picked_up() from None
        if error.errcode != ALREADY_CANCELLED:
            raise UpstreamError(f"WeChat refused to cancel the waybill (errcode {error.errcode})",
                                details=[{"errcode": error.errcode, "errmsg": error.errmsg[:200]}]) from None
    except WeChatUnavailable:
        raise UpstreamError("WeChat did not answer; try again") from None
    try:
        cancelled = waybills.mark_cancelled(waybill, clock.now())
    except ConditionFailed:
        cancelled = waybills.get_waybill(order_id) or waybill
        if cancelled.status != waybills.CANCELLED:
            raise _picked_up() from None
    log.info("waybill cancelled", order_id=order_id, waybill_id=waybill.waybill_id)
    return cancelled, order


def _picked_up() -> Conflict:
    return Conflict("The parcel has been picked up: the waybill can no longer be cancelled", code="waybill_picked_up")


def _call(what: str, call):
    """A logistics call with the access token; WeChat failures become 502 (never a 500)."""
    try:
        return call_with_access_token(call)
    except WeChatApiError as error:
        raise UpstreamError(f"WeChat refused {what} (errcode {error.errcode})",
                            details=[{"errcode": error.errcode}]) from None
    except WeChatUnavailable:
        raise UpstreamError(f"WeChat did not answer for {what}; try again") from None
    except AppError:
        raise
