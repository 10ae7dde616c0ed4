"""Checkout: price a would-be order (preview) and place it, with the same pure pricing.

Placing an order is one TransactWrite (storage/transactions.py): the order put, conditioned on
its id being new, and each SKU's reservation, conditioned on enough available stock. The order
id is derived from (user, checkout_token), so a replayed token finds the same order (200) and
never makes a second one.
"""
from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from chalicelib import clock
from chalicelib.domain import pricing
from chalicelib.errors import AppError, BadRequest, Conflict, NotFound
from chalicelib.log import get_logger
from chalicelib.schemas.orders import CheckoutBody, PlaceOrderBody
from chalicelib.services import cart, order_lifecycle, stock
from chalicelib.settings import get_settings
from chalicelib.storage import addresses, catalog_batch, orders, stores, transactions, users

log = get_logger(__name__)


@dataclass(frozen=True)
class Prepared:
    quote: pricing.Quote
    address: dict[str, Any] | None
    store_id: str | None
    skus: dict[str, catalog_batch.SellableSku]

    def with_low_stock_threshold(self) -> list[str]:
        """SKUs of this order that alert on low stock (whether this order crossed it, only a
        read after the transaction can tell: concurrent orders all read the same before)."""
        return [line.sku_id for line in self.quote.lines if self.skus[line.sku_id].low_stock_threshold > 0]


def preview_checkout(user_id: str, body: CheckoutBody) -> pricing.Quote:
    return _prepare(user_id, body).quote


def place_order(user_id: str, body: PlaceOrderBody) -> tuple[orders.Order, bool]:
    """Create the order (True) or return the one this checkout_token already made (False)."""
    order_id = order_id_for(user_id, body.checkout_token)
    fingerprint = _fingerprint(body)
    try:
        prepared = _prepare(user_id, body)
        order = _new_order(order_id, user_id, fingerprint, prepared)
        transactions.place_order_reserving_stock(order)
    except (AppError, transactions.OrderAlreadyExists) as problem:
        # A replay whose cart or stock has changed since must still find its order.
        existing = orders.get_order(order_id)
        if existing is None:
            raise _as_app_error(problem, body) from None
        if existing.request_fingerprint != fingerprint:
            raise Conflict("This checkout_token was already used for a different order",
                           code="checkout_token_reused") from None
        return existing, False
    except transactions.StockShortage as shortage:
        raise _insufficient_stock(shortage.sku_ids, body, user_id) from None
    except transactions.ProductUnavailable as unavailable:
        raise Conflict("Some products went off sale", code="product_unavailable",
                       details=[{"product_id": product_id} for product_id in unavailable.product_ids]) from None
    _after_placed(order, prepared)
    return order, True


def order_id_for(user_id: str, checkout_token: str) -> str:
    """24 chars of [0-9a-z]: valid as WeChat Pay's out_trade_no (6-32 of [0-9A-Za-z_-])."""
    digest = hashlib.sha256(f"{user_id}:{checkout_token}".encode()).digest()
    return "o" + base64.b32encode(digest).decode().rstrip("=").lower()[:23]


def _fingerprint(body: PlaceOrderBody) -> str:
    request = body.model_dump(mode="json", exclude={"checkout_token"}, exclude_none=True)
    return hashlib.sha256(json.dumps(request, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _as_app_error(problem: Exception, body: PlaceOrderBody) -> AppError:
    if isinstance(problem, AppError):
        return problem
    # OrderAlreadyExists, yet the order cannot be read: only a concurrent delete could do that.
    return Conflict("The order for this checkout_token is being created; retry", code="order_in_progress")


def _new_order(order_id: str, user_id: str, fingerprint: str, prepared: Prepared) -> orders.Order:
    quote, now = prepared.quote, clock.now()
    return orders.Order(
        order_id=order_id, user_id=user_id, out_trade_no=order_id, status="pending_payment",
        request_fingerprint=fingerprint, created_at=now,
        pay_deadline=now + timedelta(minutes=get_settings().pay_timeout_minutes),
        delivery_method=quote.delivery_method,
        lines=tuple(orders.OrderLine(**asdict(line)) for line in quote.lines),
        adjustments=tuple(asdict(adjustment) for adjustment in quote.adjustments),
        goods_fen=quote.goods_fen, discount_fen=quote.discount_fen, delivery_fee_fen=quote.delivery_fee_fen,
        payable_fen=quote.payable_fen, address=prepared.address, store_id=prepared.store_id,
    )


def _after_placed(order: orders.Order, prepared: Prepared) -> None:
    """Start the payment timer, clear the ordered lines from the cart, check low stock. None may
    fail the order now that it exists: the sweep closes it if the timer is lost, a cart line
    left behind only shows again in the cart, and alerts are advice."""
    log.info("order placed", order_id=order.order_id, payable_fen=order.payable_fen)
    try:
        order_lifecycle.schedule_pay_deadline(order.order_id, order.pay_deadline)
    except Exception:  # noqa: BLE001 - see docstring
        log.exception("could not queue the pay-deadline timer; the sweep will close the order", order_id=order.order_id)
    try:
        cart.remove_ordered(order.user_id, [line.sku_id for line in order.lines])
    except Exception:  # noqa: BLE001 - see docstring
        log.exception("could not clear ordered lines from the cart", order_id=order.order_id)
    stock.after_stock_moved(prepared.with_low_stock_threshold(), decreased=True)


def _prepare(user_id: str, body: CheckoutBody) -> Prepared:
    requested = _requested_items(user_id, body)
    skus = catalog_batch.get_sellable_skus(list(requested))
    _check_skus(requested, skus)
    items = [pricing.Item(sku_id=sku_id, product_id=skus[sku_id].product_id, name=skus[sku_id].name,
                          specs=skus[sku_id].specs, price_fen=skus[sku_id].price_fen, quantity=quantity,
                          virtual=skus[sku_id].virtual) for sku_id, quantity in requested.items()]
    _check_unsupported_discounts(user_id, body)
    method = body.delivery_method or pricing.default_delivery_method(items)
    pricing.check_delivery_method(items, method)
    address, store_id = delivery_target(user_id, body, method)
    quote = pricing.price(items, pricing.PricingContext(delivery_method=method))
    return Prepared(quote=quote, address=address, store_id=store_id, skus=skus)


def _requested_items(user_id: str, body: CheckoutBody) -> dict[str, int]:
    if body.items is not None:
        return {item.sku_id: item.quantity for item in body.items}
    selected = cart.selected_lines(user_id)
    if not selected:
        raise BadRequest("Nothing to check out: send items or select cart lines", code="cart_empty",
                         details=[{"field": "items", "message": "no items and no selected cart lines"}])
    return selected


def _check_skus(requested: dict[str, int], skus: dict[str, catalog_batch.SellableSku]) -> None:
    missing = [sku_id for sku_id in requested if sku_id not in skus]
    if missing:
        raise NotFound("Some SKUs do not exist", code="sku_not_found", details=[{"sku_id": s} for s in missing])
    off_sale = [sku_id for sku_id in requested if not skus[sku_id].on_sale]
    if off_sale:
        raise Conflict("Some SKUs are off sale", code="sku_unavailable", details=[{"sku_id": s} for s in off_sale])
    short = [sku_id for sku_id, quantity in requested.items() if skus[sku_id].available < quantity]
    if short:
        raise insufficient_stock_error([(s, requested[s], skus[s].available) for s in short])


def insufficient_stock_error(shortages: list[tuple[str, int, int]]) -> Conflict:
    return Conflict("Not enough stock for some SKUs", code="insufficient_stock",
                    details=[{"sku_id": sku_id, "requested": requested, "available": max(0, available)}
                             for sku_id, requested, available in shortages])


def _insufficient_stock(sku_ids: list[str], body: PlaceOrderBody, user_id: str) -> Conflict:
    """The transaction found SKUs short: report what is available now (a fresh read)."""
    requested = _requested_items(user_id, body)
    now_available = catalog_batch.get_sellable_skus(sku_ids)
    return insufficient_stock_error([(sku_id, requested.get(sku_id, 0),
                                      now_available[sku_id].available if sku_id in now_available else 0)
                                     for sku_id in sku_ids])


def _check_unsupported_discounts(user_id: str, body: CheckoutBody) -> None:
    """Coupons and points are priced by later steps; until then say so instead of ignoring them."""
    if body.coupon_ids:
        raise NotFound("No such coupon", code="coupon_not_found",
                       details=[{"coupon_id": coupon_id} for coupon_id in body.coupon_ids])
    if body.points:
        user = users.get_user(user_id)
        balance = user.points if user else 0
        if body.points > balance:
            raise Conflict("Not enough points to redeem", code="insufficient_points",
                           details=[{"requested": body.points, "available": balance}])
        raise Conflict("Points cannot be redeemed yet", code="points_not_redeemable")


def delivery_target(user_id: str, body: CheckoutBody, method: str) -> tuple[dict[str, Any] | None, str | None]:
    """The address snapshot (express) or pickup store the order goes to."""
    if method == "express":
        if not body.address_id:
            raise BadRequest("Express delivery needs an address_id", code="address_required",
                             details=[{"field": "address_id", "message": "required for express"}])
        address = addresses.get_address(user_id, body.address_id)
        if address is None:
            raise NotFound("No such address", code="address_not_found")
        return asdict(address.fields), None
    if method == "pickup":
        if not body.store_id:
            raise BadRequest("Store pickup needs a store_id", code="store_required",
                             details=[{"field": "store_id", "message": "required for pickup"}])
        if stores.get_store(body.store_id) is None:
            raise NotFound("No such store", code="store_not_found")
        return None, body.store_id
    return None, None
