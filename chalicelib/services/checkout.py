"""Checkout: price a would-be order (preview) and place it, with the same pure pricing.

What an order costs in DynamoDB (bench/results, "Place order"): the session (GetItem), the
selected cart lines (one Query; none when the body names the items), the SKUs, their products
and the delivery address in ONE BatchGetItem across tables (storage/batch_get.py), and ONE
TransactWrite (storage/transactions.py): the order put, conditioned on its id being new; each
SKU's reservation, conditioned on enough available stock and the SKU and its product being on
sale; the ordered cart lines deleted. The order id is derived from (user, checkout_token), so a
replayed token finds the same order (200) and never makes a second one. The pay-deadline timer
and the low-stock check leave in one SQS SendMessageBatch after the order exists.
"""
from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from chalicelib import clock
from chalicelib.domain import points as point_rules
from chalicelib.domain import pricing
from chalicelib.domain.coupons import LOCKED, USED, CouponNotApplicable
from chalicelib.errors import AppError, BadRequest, Conflict, NotFound
from chalicelib.log import get_logger
from chalicelib.schemas.orders import CheckoutBody, PlaceOrderBody
from chalicelib.services import activities, cart, members, order_coupons, order_lifecycle, points
from chalicelib.settings import get_settings
from chalicelib.storage import addresses, carts, catalog_batch, coupons, orders, stores, transactions
from chalicelib.storage import members as member_store
from chalicelib.storage import points as point_store

log = get_logger(__name__)
PLACE_ATTEMPTS = 2


@dataclass(frozen=True)
class Prepared:
    quote: pricing.Quote
    address: dict[str, Any] | None
    store_id: str | None
    skus: dict[str, catalog_batch.SellableSku]
    priced_at: datetime  # the moment coupons and activities were judged valid at (their lock uses it too)
    cart_sku_ids: tuple[str, ...] = ()  # the cart lines this order takes (deleted in its transaction)
    points_account: point_rules.Account | None = None  # as read, to take the quote's points from

    def to_check_for_low_stock(self) -> list[str]:
        """SKUs of this order that may cross their low-stock threshold now: those with one, not
        alerted already. Whether this order crossed it only a read after the transaction can
        tell (concurrent orders all read the same stock before), so the check runs from the queue."""
        return [line.sku_id for line in self.quote.lines
                if self.skus[line.sku_id].low_stock_threshold > 0 and not self.skus[line.sku_id].low_stock_alerted]


@dataclass(frozen=True)
class OfferTerms:
    """An offer order's terms (a group-buy's or a bargain's, from its service): the price step,
    the writes that go into the order's own transaction (each with its condition), and what the
    order keeps of it."""
    offer: pricing.Offer
    updates: tuple[transactions.ExtraUpdate, ...] = ()
    record: dict[str, Any] | None = None  # the order's `offer`: {kind, id, activity_id}
    awaiting_group: bool = False  # a group order ships only once its group succeeds


def preview_checkout(user_id: str, body: CheckoutBody) -> pricing.Quote:
    return _prepare(user_id, body, _offer_terms(user_id, body, None)).quote


def _offer_terms(user_id: str, body: CheckoutBody, order_id: str | None) -> OfferTerms | None:
    """A bargain's price, when the body names one (services/bargains.py reads it)."""
    if not body.bargain_id:
        return None
    from chalicelib.services import bargains

    return bargains.checkout_terms(user_id, body.bargain_id, order_id)


def place_order(user_id: str, body: PlaceOrderBody, terms: OfferTerms | None = None) -> tuple[orders.Order, bool]:
    """Create the order (True) or return the one this checkout_token already made (False).
    `terms`: an offer order's (services/group_buys.py); a body's bargain_id makes its own."""
    order_id = order_id_for(user_id, body.checkout_token)
    fingerprint = _fingerprint(body, terms)
    try:
        order, prepared = _place(order_id, user_id, fingerprint, body, terms)
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
        raise _shortage_as_it_is_now(shortage.sku_ids, shortage.order) from None
    _after_placed(order, prepared)
    return order, True


def _place(order_id: str, user_id: str, fingerprint: str, body: PlaceOrderBody,
           terms: OfferTerms | None) -> tuple[orders.Order, Prepared]:
    """Price and write the order. Its points come from the lots as read; should another order
    (or the expiry job) take from them first, the transaction fails and this reads and prices
    once more, then answers 409 insufficient_points (the race's loser)."""
    terms = terms or _offer_terms(user_id, body, order_id)
    for attempt in range(PLACE_ATTEMPTS):
        prepared = _prepare(user_id, body, terms)
        order = _new_order(order_id, user_id, fingerprint, prepared, terms)
        coupon_locks = order_coupons.lock(user_id, order_id, prepared.quote.applied_coupon_ids, prepared.priced_at)
        parts, points_taken = points.redeem(user_id, order_id, prepared.points_account, prepared.quote.points_used,
                                            prepared.priced_at)
        order = replace(order, points_parts=parts or None)
        try:
            transactions.place_order_reserving_stock(order, cart_sku_ids=prepared.cart_sku_ids,
                                                     extra_updates=[*coupon_locks, *points_taken,
                                                                    *(terms.updates if terms else ())])
        except transactions.StockShortage as shortage:
            shortage.order = order  # what was asked, for the 409's figures
            raise
        except points.PointsChanged:
            if attempt + 1 < PLACE_ATTEMPTS:
                continue
            raise pricing.InsufficientPoints("Those points were just used by another order",
                                             details=[{"field": "points", "requested": prepared.quote.points_used}]) from None
        return order, prepared
    raise AssertionError("unreachable")  # the loop returns or raises


def order_id_for(user_id: str, checkout_token: str) -> str:
    """24 chars of [0-9a-z]: valid as WeChat Pay's out_trade_no (6-32 of [0-9A-Za-z_-])."""
    digest = hashlib.sha256(f"{user_id}:{checkout_token}".encode()).digest()
    return "o" + base64.b32encode(digest).decode().rstrip("=").lower()[:23]


def _fingerprint(body: PlaceOrderBody, terms: OfferTerms | None = None) -> str:
    request = body.model_dump(mode="json", exclude={"checkout_token"}, exclude_none=True)
    if terms is not None and terms.record:
        request["offer"] = terms.record
    return hashlib.sha256(json.dumps(request, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _as_app_error(problem: Exception, body: PlaceOrderBody) -> AppError:
    if isinstance(problem, AppError):
        return problem
    # OrderAlreadyExists, yet the order cannot be read: only a concurrent delete could do that.
    return Conflict("The order for this checkout_token is being created; retry", code="order_in_progress")


def _new_order(order_id: str, user_id: str, fingerprint: str, prepared: Prepared,
               terms: OfferTerms | None = None) -> orders.Order:
    quote, now = prepared.quote, prepared.priced_at
    return orders.Order(
        order_id=order_id, user_id=user_id, out_trade_no=order_id, status="pending_payment",
        request_fingerprint=fingerprint, created_at=now,
        pay_deadline=now + timedelta(minutes=get_settings().pay_timeout_minutes),
        delivery_method=quote.delivery_method,
        lines=tuple(orders.OrderLine(**asdict(line)) for line in quote.lines),
        adjustments=tuple(asdict(adjustment) for adjustment in quote.adjustments),
        goods_fen=quote.goods_fen, discount_fen=quote.discount_fen, delivery_fee_fen=quote.delivery_fee_fen,
        payable_fen=quote.payable_fen, address=prepared.address, store_id=prepared.store_id,
        offer=terms.record if terms else None, awaiting_group=bool(terms and terms.awaiting_group),
    )


def _after_placed(order: orders.Order, prepared: Prepared) -> None:
    """Queue the payment timer and the low-stock check, in one SQS call. Neither may fail the
    order now that it exists: the sweep closes it if the timer is lost, and alerts are advice."""
    log.info("order placed", order_id=order.order_id, payable_fen=order.payable_fen)
    try:
        order_lifecycle.schedule_after_placed(order.order_id, order.pay_deadline, prepared.to_check_for_low_stock())
    except Exception:  # noqa: BLE001 - see docstring
        log.exception("could not queue the pay-deadline timer; the sweep will close the order", order_id=order.order_id)


def _prepare(user_id: str, body: CheckoutBody, terms: OfferTerms | None = None) -> Prepared:
    """Read what the quote needs (the SKUs, their products, the address and the coupon wallet in
    one BatchGetItem; running activities from a per-container cache) and price it."""
    now = clock.now()
    requested, cart_lines = _requested_items(user_id, body)
    address_key = addresses.address_key(user_id, body.address_id) if body.address_id else None
    skus, extras = catalog_batch.get_sellable_skus_and(
        list(requested), {line.sku_id: line.product_id for line in cart_lines},
        extra=[*coupons.wallet_keys(user_id), *([address_key] if address_key else []),
               point_store.account_key(user_id), member_store.spend_key(user_id), member_store.rules_key()])
    _check_skus(requested, skus)
    items = [pricing.Item(sku_id=sku_id, product_id=skus[sku_id].product_id, name=skus[sku_id].name,
                          specs=skus[sku_id].specs, price_fen=skus[sku_id].price_fen, quantity=quantity,
                          virtual=skus[sku_id].virtual, category_path=skus[sku_id].category_path)
             for sku_id, quantity in requested.items()]
    method = body.delivery_method or pricing.default_delivery_method(items)
    pricing.check_delivery_method(items, method)
    address_items = extras.get(address_key[0], []) if address_key else []
    address, store_id = delivery_target(body, method,
                                        addresses.address_fields_from_raw(address_items[0]) if address_items else None)
    wallet = coupons.wallet_from_items(user_id, extras).coupons
    account = point_store.account_from_item(user_id, _first(extras, point_store.account_key(user_id)))
    level_rules, _ = member_store.rules_from_item(_first(extras, member_store.rules_key()))
    membership = members.membership_of(member_store.spend_from_item(_first(extras, member_store.spend_key(user_id))),
                                       level_rules)
    same_city = same_city_dispatch(addresses.AddressFields(**address)) if method == "same_city" else None
    if same_city:
        store_id = same_city[0]  # the store whose rider delivers
    context = pricing.PricingContext(
        delivery_method=method, now=now, same_city_fee_fen=same_city[1] if same_city else 0,
        same_city_eta_minutes=same_city[2] if same_city else None, activities=activities.running_full_reductions(now), wallet=wallet,
        coupon_ids=tuple(body.coupon_ids) if body.coupon_ids is not None else None,
        member_level=membership.level, member_discount_permille=membership.discount_permille,
        points_balance=account.balance(points.today_in_china(now)), points_requested=body.points,
        points_max_redeem_permille=points.policy().max_redeem_permille, offer=terms.offer if terms else None)
    return Prepared(quote=_price(items, context), address=address, store_id=store_id, skus=skus,
                    priced_at=now, cart_sku_ids=tuple(line.sku_id for line in cart_lines), points_account=account)


def _first(items: dict[str, list[dict[str, Any]]], key: tuple[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The item of a one-item table (by its key) in a cross-table batch read, or None."""
    table, _ = key
    found = items.get(table) or []
    return found[0] if found else None


def _price(items: list[pricing.Item], context: pricing.PricingContext) -> pricing.Quote:
    """The quote; a chosen coupon another order holds (locked) or has used answers as a lost
    race for it does: 409 coupon_unavailable."""
    try:
        return pricing.price(items, context)
    except CouponNotApplicable as refused:
        if refused.reason in (LOCKED, USED):
            raise order_coupons.CouponUnavailable(details=refused.details) from None
        raise


def _requested_items(user_id: str, body: CheckoutBody) -> tuple[dict[str, int], list[carts.CartLine]]:
    """What to price: the body's items, or else the selected cart lines (returned too: the
    order takes them out of the cart, and they know their products)."""
    if body.items is not None:
        return {item.sku_id: item.quantity for item in body.items}, []
    selected = cart.selected_lines(user_id)
    if not selected:
        raise BadRequest("Nothing to check out: send items or select cart lines", code="cart_empty",
                         details=[{"field": "items", "message": "no items and no selected cart lines"}])
    return {line.sku_id: line.quantity for line in selected}, selected


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


def _shortage_as_it_is_now(sku_ids: list[str], order: orders.Order) -> Conflict:
    """The transaction refused these SKUs: say why from a fresh read (gone off sale, or short)."""
    now = catalog_batch.get_sellable_skus(sku_ids)
    off_sale = [sku_id for sku_id in sku_ids if sku_id in now and not now[sku_id].on_sale]
    if off_sale:
        return Conflict("Some SKUs are off sale", code="sku_unavailable", details=[{"sku_id": s} for s in off_sale])
    requested = {line.sku_id: line.quantity for line in order.lines}
    return insufficient_stock_error([(sku_id, requested.get(sku_id, 0), now[sku_id].available if sku_id in now else 0)
                                     for sku_id in sku_ids])


def delivery_target(body: CheckoutBody, method: str,
                    address: addresses.AddressFields | None) -> tuple[dict[str, Any] | None, str | None]:
    """The address snapshot (express, same_city) or pickup store the order goes to; `address` is
    the body's address as the caller read it (None: it does not exist, or none was asked for)."""
    if method == "express":
        if not body.address_id:
            raise BadRequest("Express delivery needs an address_id", code="address_required",
                             details=[{"field": "address_id", "message": "required for express"}])
        if address is None:
            raise NotFound("No such address", code="address_not_found")
        return asdict(address), None
    if method == "pickup":
        if not body.store_id:
            raise BadRequest("Store pickup needs a store_id", code="store_required",
                             details=[{"field": "store_id", "message": "required for pickup"}])
        pickup_store = stores.get_store(body.store_id)
        if pickup_store is None or pickup_store.hidden:  # a hidden store takes no new pickups
            raise NotFound("No such store", code="store_not_found")
        return None, body.store_id
    if method == "same_city":
        if not body.address_id:
            raise BadRequest("Same-city delivery needs an address_id", code="address_required",
                             details=[{"field": "address_id", "message": "required for same_city"}])
        if address is None:
            raise NotFound("No such address", code="address_not_found")
        return asdict(address), None  # the dispatching store: same_city_dispatch, priced with it
    return None, None


class OutOfDeliveryRange(Conflict):
    code = "out_of_delivery_range"


def same_city_dispatch(address: addresses.AddressFields) -> tuple[str, int, int]:
    """(the nearest store with coordinates, fee_fen, eta_minutes) for a same-city delivery to the
    address's location (domain/geo.py's bands); 400 when the address has no location, 409 when
    no store is within the last band."""
    from chalicelib.domain.geo import distance_m, same_city_band

    if address.lat is None or address.lng is None:
        raise BadRequest("Same-city delivery needs the address's location (lat, lng from wx.chooseLocation)",
                         code="address_location_required",
                         details=[{"field": "address_id", "message": "the address has no lat/lng"}])
    located = [(distance_m(address.lat, address.lng, store.lat, store.lng), store.store_id)
               for store in stores.list_stores() if store.lat is not None and store.lng is not None]
    if located:
        distance, store_id = min(located)
        band = same_city_band(distance)
        if band is not None:
            return store_id, band[0], band[1]
    raise OutOfDeliveryRange("No store delivers that far: choose express or pickup",
                             details=[{"field": "delivery_method", "nearest_m": min(located)[0] if located else None}])
