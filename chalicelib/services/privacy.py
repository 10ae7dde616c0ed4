"""PIPL: the consent ledger, the data export and account deletion (docs/privacy.md).

Consent: every answer is a ledger entry (storage/consents.py); features that need consent call
`require_consent(user)`.

Export: the sections in EXPORT_SECTIONS, each a builder reading one store consistently where it
can, in bounded loops; the points ledger appends its own builder ("points").

Deletion: refused (409 open_orders) while money or goods are still moving, since the store can
neither ship to nor refund an erased person. Otherwise: a `deleting` record first (its tombstone
id survives a crash), every step idempotent and conditional on the item still being the
user's, sessions revoked, a second pass for what in-flight requests wrote meanwhile, then one
transaction deletes the user item, counts the deletion on the openid's tombstone (the next login
is a new account: `user_id_for_login`) and closes the record.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable

from chalicelib import clock, distribution_settings
from chalicelib.domain import identity
from chalicelib.domain.cursors import decode_cursor, encode_cursor
from chalicelib.domain.rate_limits import RateLimit
from chalicelib.errors import Conflict, Forbidden, NotFound, RateLimited
from chalicelib.log import get_logger
from chalicelib.schemas import privacy as out
from chalicelib.settings import get_settings
from chalicelib.storage import (addresses, after_sales, consents, coupons, favorites, history, order_lists, payments,
                                privacy_audit, rate_limits, reviews, users)
from chalicelib.storage import commissions as commission_store
from chalicelib.storage import events as event_store
from chalicelib.storage import group_buys as group_store
from chalicelib.storage import members as member_store
from chalicelib.storage import rfm as rfm_store
from chalicelib.storage import points as point_store
from chalicelib.storage.base import ConditionFailed
from chalicelib.storage.orders import Order

log = get_logger(__name__)

# API.md: a few exports a day per user; the export reads every store of the user.
EXPORT_LIMIT = RateLimit("data-export", burst=3, per_second=3 / 86400)
MAX_ITEMS = 5000  # per section and per deletion step: a bound on every loop, far above a real user
OPEN_ORDER_STATUSES = ("pending_payment", "paid", "shipped")
FINAL_ORDER_STATUSES = ("completed", "cancelled", "refunded")
FINAL_AFTER_SALES = (after_sales.REJECTED, after_sales.REFUNDED)
MAX_DETAILS = 20


class ConsentRequired(Forbidden):
    code = "consent_required"
    message = "Agree to the privacy policy first (POST /v1/me/consents)"


class OpenOrders(Conflict):
    code = "open_orders"
    message = ("The account has orders, refunds or after-sales still in progress: the store cannot ship to or "
               "refund an erased person. Delete the account once each is completed, cancelled or refunded.")


def _iso(moment: Any) -> str | None:
    return clock.to_iso(moment) if moment is not None else None


# --- consent -------------------------------------------------------------------------------------

def record_consent(user_id: str, version: str, granted: bool, *, source: str = "consents",
                   client: str | None = None) -> out.ConsentOut:
    try:
        entry = consents.record_consent(user_id, version, granted, source, client, clock.now())
    except ConditionFailed:
        raise NotFound("No such user", code="user_not_found") from None
    return _consent_out(entry)


def consent_history(user_id: str, limit: int, cursor: str | None) -> out.ConsentPage:
    scope, secret = f"consents:{user_id}", get_settings().auth_token_secret
    page, last_key = consents.list_page(user_id, limit, decode_cursor(cursor, secret, scope))
    user = users.get_user(user_id)
    return out.ConsentPage(items=[_consent_out(entry) for entry in page],
                           next_cursor=encode_cursor(last_key, secret, scope),
                           current_version=user.privacy_consent_version if user else None)


def _consent_out(entry: consents.ConsentEntry) -> out.ConsentOut:
    return out.ConsentOut(version=entry.version, granted=entry.granted, at=clock.to_iso(entry.at),
                          source=entry.source, client=entry.client)


def require_consent(user: users.User, version: str | None = None) -> None:
    """403 consent_required unless the user currently agrees to the privacy policy (to `version`,
    when a feature needs a particular one). Reads the user item's current fields, which move in
    the same transaction as the ledger."""
    if user.privacy_consent_version is None or (version is not None and user.privacy_consent_version != version):
        raise ConsentRequired(details=[{"field": "privacy_consent_version",
                                        "message": f"needs {version or 'a'} consent"}])


# --- login ---------------------------------------------------------------------------------------

def user_id_for_login(appid: str, openid: str) -> str:
    """The user id a login of (appid, openid) is for: identity.user_id_for's, unless accounts of
    this identity were deleted; the n-th account after n deletions gets a new id derived from
    `openid#n`, so a deleted account is never revived and its old id never reused."""
    base = identity.user_id_for(appid, openid)
    deletions = privacy_audit.deletions_of(base)
    return base if deletions == 0 else identity.user_id_for(appid, f"{openid}#{deletions}")


# --- export --------------------------------------------------------------------------------------

@dataclass
class ExportContext:
    user: users.User
    truncated: list[str] = field(default_factory=list)
    _orders: list[Order] | None = None

    @property
    def orders(self) -> list[Order]:
        """The user's orders, read once for the sections that need them (consistent re-read)."""
        if self._orders is None:
            ids = privacy_audit.order_ids_of(self.user.user_id, MAX_ITEMS)
            if len(ids) >= MAX_ITEMS:
                self.truncated.append("orders")
            self._orders = [order for order in order_lists.fetch(ids) if order.user_id == self.user.user_id]
        return self._orders

    def bounded(self, name: str, items: list) -> list:
        if len(items) >= MAX_ITEMS:
            self.truncated.append(name)
        return items[:MAX_ITEMS]


def export_data(user_id: str) -> out.DataExport:
    if not rate_limits.take_token(EXPORT_LIMIT, user_id, clock.now()):
        raise RateLimited("At most 3 data exports a day; try again later", code="export_rate_limited",
                          retry_after_seconds=EXPORT_LIMIT.retry_after_seconds)
    user = users.get_user(user_id, consistent=True)
    if user is None:
        raise NotFound("No such user", code="user_not_found")
    context = ExportContext(user)
    sections = {name: build(context) for name, build in EXPORT_SECTIONS}
    log.info("data exported", sections=sorted(sections), truncated=context.truncated)
    return out.DataExport(exported_at=clock.to_iso(clock.now()), truncated=context.truncated, **sections)


def _profile(context: ExportContext) -> out.ProfileExport:
    from chalicelib.services.profiles import with_standing

    user = with_standing(context.user)  # the member level and points as they stand now
    return out.ProfileExport(
        user_id=user.user_id, nickname=user.nickname, avatar_url=user.avatar_url, member_level=user.member_level,
        points=user.points, phone=user.phone, birthday=user.birthday.isoformat() if user.birthday else None,
        privacy_consent_version=user.privacy_consent_version,
        referred_by=identity.referral_code_for(user.referrer_id) if user.referrer_id else None,
        created_at=clock.to_iso(user.created_at))


def _consents(context: ExportContext) -> list[out.ConsentOut]:
    entries = consents.history(context.user.user_id, MAX_ITEMS)
    return [_consent_out(entry) for entry in context.bounded("consents", entries)]


def _addresses(context: ExportContext) -> list[out.AddressExport]:
    return [out.AddressExport.of(address) for address in addresses.list_addresses(context.user.user_id)]


def _orders(context: ExportContext) -> list[out.OrderExport]:
    return [_order_export(order) for order in context.orders]


def _order_export(order: Order) -> out.OrderExport:
    listed = payments.refunds_of_order(order.order_id)  # an index read: each refund re-read
    refunds = [payments.get_refund(refund.out_refund_no) or refund for refund in listed]
    paid = payments.payments_of_order(order.order_id, order.transaction_id, refunds)
    shipment = {key: value for key, value in (order.shipment or {}).items() if key in ("carrier", "tracking_no",
                                                                                    "shipped_at")} or None
    return out.OrderExport(
        order_id=order.order_id, status=order.status, created_at=clock.to_iso(order.created_at),
        paid_at=_iso(order.paid_at), shipped_at=_iso(order.shipped_at), completed_at=_iso(order.completed_at),
        cancelled_at=_iso(order.cancelled_at), delivery_method=order.delivery_method, address=order.address,
        store_id=order.store_id, shipment=shipment, lines=[vars(line) for line in order.lines],
        adjustments=list(order.adjustments), goods_fen=order.goods_fen, discount_fen=order.discount_fen,
        delivery_fee_fen=order.delivery_fee_fen, payable_fen=order.payable_fen, refunded_fen=order.refunded_fen,
        payments=[out.PaymentExport(transaction_id=p.transaction_id, amount_fen=p.amount_fen,
                                    paid_at=clock.to_iso(p.paid_at)) for p in paid],
        refunds=[out.RefundExport(out_refund_no=r.out_refund_no, amount_fen=r.amount_fen, status=r.status,
                                  reason=r.reason, created_at=clock.to_iso(r.created_at),
                                  completed_at=_iso(r.completed_at)) for r in refunds])


def _coupons(context: ExportContext) -> list[out.CouponExport]:
    wallet = coupons.get_wallet(context.user.user_id, consistent=True)
    found = []
    for coupon in wallet.coupons:
        past = wallet.history.get(coupon.coupon_id)
        found.append(out.CouponExport(
            coupon_id=coupon.coupon_id, template_id=coupon.template_id, name=coupon.name, status=coupon.status,
            valid_from=clock.to_iso(coupon.valid_from), valid_to=clock.to_iso(coupon.valid_to),
            claimed_at=_iso(past.claimed_at) if past else None, order_id=past.order_id if past else None,
            used_at=_iso(past.used_at) if past else None))
    return found


def _reviews(context: ExportContext) -> list[out.ReviewExport]:
    ids = [reviews.review_id_for(order.order_id, line.sku_id) for order in context.orders for line in order.lines]
    found = reviews.get_reviews(ids) if ids else {}
    return [out.ReviewExport(review_id=r.review_id, order_id=r.order_id, product_id=r.product_id, sku_id=r.sku_id,
                             rating=r.rating, text=r.text, images=list(r.images), status=r.status,
                             created_at=clock.to_iso(r.created_at), reply=r.reply)
            for r in found.values() if r.user_id == context.user.user_id]


def _favorites(context: ExportContext) -> list[out.FavoriteExport]:
    found: list[favorites.Favorite] = []
    cursor: dict[str, Any] | None = None
    for _ in range(MAX_ITEMS // 100):  # bounded: 100 a page
        page, cursor = favorites.list_page(context.user.user_id, 100, cursor)
        found += page
        if cursor is None:
            break
    return [out.FavoriteExport(product_id=f.product_id, added_at=clock.to_iso(clock.from_epoch(f.added_at_ms / 1000)))
            for f in context.bounded("favorites", found)]


def _history(context: ExportContext) -> list[out.ViewExport]:
    views = history.recent_views(context.user.user_id, clock.now(), timedelta(days=3650), MAX_ITEMS)
    return [out.ViewExport(product_id=v.product_id, viewed_at=clock.to_iso(clock.from_epoch(v.viewed_at_ms / 1000)))
            for v in views]


def _after_sales(context: ExportContext) -> list[out.AfterSaleExport]:
    return [out.AfterSaleExport(request_id=r.request_id, order_id=r.order_id, kind=r.kind, reason=r.reason,
                                status=r.status, amount_fen=r.amount_fen, lines=[vars(line) for line in r.lines],
                                created_at=clock.to_iso(r.created_at), updated_at=clock.to_iso(r.updated_at))
            for r in _after_sales_of(context.user)]


def _after_sales_of(user: users.User) -> list[after_sales.AfterSale]:
    """The user's requests, each re-read consistently (the index only finds candidates)."""
    found = (after_sales.get_request(request_id)
             for request_id in privacy_audit.after_sale_ids_of(user.user_id, user.created_at, MAX_ITEMS))
    return [request for request in found if request is not None and request.user_id == user.user_id]


# (name, builder): DataExport has a field per name. The points ledger appends ("points", ...).
def _points(context: ExportContext) -> dict[str, Any]:
    from chalicelib.services.points import today_in_china

    user_id = context.user.user_id
    account = point_store.get_account(user_id)
    entries = point_store.list_entries(user_id, MAX_ITEMS)
    return {"balance": account.balance(today_in_china()),
            "lots": [{"points": held, "expires_on": day.isoformat()} for day, held in sorted(account.lots.items()) if held],
            "history": [{"kind": entry.kind, "delta": entry.delta, "ref": entry.ref, "at": clock.to_iso(entry.at)}
                        for entry in context.bounded("points", entries)]}


def _commissions(context: ExportContext) -> dict[str, Any]:
    """A distributor's commission account and its ledger (money the store owed or paid them)."""
    user_id = context.user.user_id
    entries, _ = commission_store.entries(user_id, MAX_ITEMS)
    return {**commission_store.get_account(user_id),
            "history": [{"kind": entry.kind, "amount_fen": entry.amount_fen, "ref": entry.ref,
                         "at": clock.to_iso(entry.at)} for entry in context.bounded("commissions", entries)]}


EXPORT_SECTIONS: list[tuple[str, Callable[[ExportContext], Any]]] = [
    ("profile", _profile), ("consents", _consents), ("addresses", _addresses), ("orders", _orders),
    ("coupons", _coupons), ("reviews", _reviews), ("favorites", _favorites), ("history", _history),
    ("after_sales", _after_sales), ("points", _points), ("commissions", _commissions),
]


# --- deletion ------------------------------------------------------------------------------------

def delete_account(user_id: str) -> out.DeletionReceipt:
    """Delete what can be deleted, anonymise what accounting keeps, revoke every session; audited.
    A retry after a crash resumes (the record keeps its tombstone id; each step is idempotent)."""
    user = users.get_user(user_id, consistent=True)
    if user is None:
        done = privacy_audit.get_deletion(user_id)
        if done is not None and done.status == privacy_audit.DELETED:
            return _receipt(done)
        raise NotFound("No such user", code="user_not_found")
    _refuse_while_open(user)  # before anything is written
    try:
        deletion = privacy_audit.start_deletion(user_id, "d" + secrets.token_hex(12), user.privacy_consent_version,
                                                clock.now())
    except ConditionFailed:
        raise Conflict("The account is being deleted by another request; try again", code="deletion_busy") from None
    tombstone = deletion.tombstone_id or ""
    _erase(user, tombstone)
    privacy_audit.add_count(user_id, "sessions", privacy_audit.revoke_user_sessions(user_id, clock.epoch_seconds(),
                                                                                    MAX_ITEMS))
    _refuse_while_open(user)  # an order placed while the first pass ran
    _erase(user, tombstone)  # what requests in flight at the revocation wrote
    base_id = identity.user_id_for(get_settings().wechat_appid, user.openid)
    try:
        privacy_audit.finish_deletion(user_id, base_id, clock.now())
    except ConditionFailed:
        pass  # a concurrent retry finished it: the record says so
    finished = privacy_audit.get_deletion(user_id)
    assert finished is not None
    log.info("account deleted", counts=finished.counts, attempts=finished.attempts)
    return _receipt(finished)


ANONYMISED = ("orders", "reviews", "after_sales")


def _receipt(deletion: privacy_audit.Deletion) -> out.DeletionReceipt:
    return out.DeletionReceipt(
        status=deletion.status, requested_at=clock.to_iso(deletion.requested_at),
        completed_at=clock.to_iso(deletion.completed_at or clock.now()),
        deleted={name: n for name, n in deletion.counts.items() if name not in ANONYMISED},
        anonymised={name: deletion.counts.get(name, 0) for name in ANONYMISED})


def _user_orders(user_id: str) -> list[Order]:
    """The user's orders, re-read consistently (the index only finds them)."""
    ids = privacy_audit.order_ids_of(user_id, MAX_ITEMS)
    return [order for order in order_lists.fetch(ids) if order.user_id == user_id]


def _refuse_while_open(user: users.User) -> None:
    """409 open_orders while an order, a refund or an after-sales request of the user is still
    moving. Decided from items read consistently: the orders, each order's after-sales claims
    against its refunded amount, each refund re-read; the after-sales index only adds candidates."""
    blocking: list[dict[str, str]] = []
    for order in _user_orders(user.user_id):
        if order.status in OPEN_ORDER_STATUSES or order.refunds_in_flight:
            blocking.append({"order_id": order.order_id, "reason": order.status})
            continue
        claims = after_sales.get_claims(order.order_id)
        if sum(claims.amounts.values()) + claims.delivery_fee_fen > order.refunded_fen:
            blocking.append({"order_id": order.order_id, "reason": "after_sales_open"})
            continue
        for listed in payments.refunds_of_order(order.order_id):
            refund = payments.get_refund(listed.out_refund_no)
            if refund is not None and refund.status in payments.UNFINISHED:
                blocking.append({"order_id": order.order_id, "reason": "refund_pending"})
                break
    blocking += [{"order_id": request.order_id, "reason": "after_sales_open"} for request in _after_sales_of(user)
                 if request.status not in FINAL_AFTER_SALES]
    owed = commission_store.get_account(user.user_id)  # money the store owes a distributor
    withdrawable = owed["available_fen"] >= distribution_settings.load().withdrawal_min_fen  # less can never leave
    if owed["frozen_fen"] > 0 or owed["pending_fen"] > 0 or withdrawable:
        raise Conflict("The account has commissions not yet withdrawn (frozen, available or being paid): "
                       "withdraw them, or wait for the withdrawal, before deleting the account",
                       code="commission_balance", details=[{name: owed[name] for name in
                                                            ("frozen_fen", "available_fen", "pending_fen")}])
    if blocking:
        unique = list({item["order_id"]: item for item in blocking}.values())
        raise OpenOrders(details=unique[:MAX_DETAILS])


def _erase(user: users.User, tombstone: str) -> None:
    """One pass of every step, each counted on the record. Reviews go before the orders they are
    found through (an anonymised order is no longer the user's)."""
    user_id, count = user.user_id, privacy_audit.add_count
    for name, deleted in privacy_audit.delete_personal_partitions(user_id, MAX_ITEMS).items():
        count(user_id, name, deleted)
    count(user_id, "coupon_wallets", privacy_audit.delete_wallet(user_id))
    if user.birthday is not None:
        count(user_id, "birthday", privacy_audit.delete_birthday_entry(user.birthday.isoformat()[5:], user_id))
    count(user_id, "consents", consents.delete_history(user_id, MAX_ITEMS))
    count(user_id, "points", point_store.erase(user_id, MAX_ITEMS))
    count(user_id, "member_spend", member_store.erase_spend(user_id))
    count(user_id, "events", event_store.erase(user_id, MAX_ITEMS))  # tracking events (daily aggregates hold no ids)
    rfm_store.erase(user_id)  # the user's order summary and scores
    orders = _user_orders(user_id)
    review_ids = [reviews.review_id_for(order.order_id, line.sku_id) for order in orders for line in order.lines]
    count(user_id, "reviews", sum(privacy_audit.anonymise_review(review_id, user_id, tombstone)
                                  for review_id in (reviews.get_reviews(review_ids) if review_ids else {})))
    count(user_id, "after_sales", sum(privacy_audit.anonymise_after_sale(r.request_id, user_id, tombstone,
                                                                         FINAL_AFTER_SALES)
                                      for r in _after_sales_of(user) if r.status in FINAL_AFTER_SALES))
    count(user_id, "group_members", sum(group_store.forget_member_profile(order.offer["id"], user_id)
                                        for order in orders if order.offer and order.offer.get("kind") == "group_buy"))
    count(user_id, "orders", sum(privacy_audit.anonymise_order(order.order_id, user_id, tombstone,
                                                               FINAL_ORDER_STATUSES, order.shipment is not None)
                                 for order in orders if order.status in FINAL_ORDER_STATUSES))
