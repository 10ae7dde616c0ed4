"""Bargains (砍价): a sponsor starts one on a running bargain activity, helpers cut its price (one
cut each, drawn by domain/bargain.py so about `helpers_to_floor` helpers reach the floor), and the
sponsor buys one unit at the price reached through the ordinary checkout (`bargain_id` in the
order's body: the pricing's offer step, and the bargain held by the order's own transaction, so
its price is used once and never after it expires).

One bargain per sponsor and activity (its id is derived from both: starting again answers it).
Cuts are rate-limited per helper (domain/rate_limits.py, storage/rate_limits.py) and, when the
activity says so, only users who signed up after the bargain started may cut.
"""
from __future__ import annotations

import base64
import hashlib
import random
from datetime import datetime, timedelta

from chalicelib import clock
from chalicelib.domain import pricing
from chalicelib.domain.bargain import cut_amount
from chalicelib.domain.rate_limits import RateLimit
from chalicelib.errors import Conflict, NotFound, RateLimited, ServiceUnavailable
from chalicelib.log import get_logger
from chalicelib.schemas.bargains import BargainOut, CutOut, StartBargainBody
from chalicelib.services import activities
from chalicelib.services.checkout import OfferTerms
from chalicelib.storage import bargains as store
from chalicelib.storage import catalog_batch, rate_limits, transactions, users
from chalicelib.storage.bargains import Bargain, Cut
from chalicelib.storage.base import is_transient

log = get_logger(__name__)
CUT_PER_HELPER = RateLimit("bargain-cut", burst=5, per_second=0.1)  # 5 cuts at once, then one per 10 s
CUT_ATTEMPTS = 10  # re-reads of a price another helper just cut


class BargainUnavailable(Conflict):
    code = "bargain_unavailable"
    message = "The bargain's price was just used by another order, changed, or expired"


def bargain_id_for(activity_id: str, user_id: str) -> str:
    digest = hashlib.sha256(f"bargain:{activity_id}:{user_id}".encode()).digest()
    return "b" + base64.b32encode(digest).decode().rstrip("=").lower()[:23]


def start_bargain(user_id: str, body: StartBargainBody) -> tuple[BargainOut, bool]:
    """The sponsor's bargain on the activity: new (True), or the one they started before (False)."""
    bargain_id = bargain_id_for(body.activity_id, user_id)
    existing = store.get_bargain(bargain_id)
    if existing is not None:
        return bargain_out(existing, user_id), False
    now = clock.now()
    activity = activities.running_offer(body.activity_id, "bargain", body.sku_id, now)
    sku = catalog_batch.get_sellable_skus([activity.sku_id]).get(activity.sku_id)
    if sku is None or not sku.on_sale:
        raise Conflict("The SKU is off sale", code="sku_unavailable", details=[{"sku_id": activity.sku_id}])
    user = users.get_user(user_id)
    bargain = Bargain(bargain_id=bargain_id, activity_id=activity.activity_id, sku_id=activity.sku_id, user_id=user_id,
                      start_price_fen=sku.price_fen, floor_price_fen=min(activity.floor_price_fen, sku.price_fen),
                      price_fen=sku.price_fen, helpers_to_floor=activity.helpers_to_floor, cuts=0,
                      new_users_only=activity.new_users_only, created_at=now,
                      expires_at=min(now + timedelta(minutes=activity.window_minutes), activity.ends_at),
                      nickname=user.nickname if user else None, avatar_url=user.avatar_url if user else None)
    try:
        store.create_bargain(bargain)
    except store.BargainExists:  # a concurrent start of the same sponsor
        return bargain_out(store.get_bargain(bargain_id), user_id), False
    log.info("bargain started", bargain_id=bargain_id, activity_id=activity.activity_id)
    return bargain_out(bargain, user_id), True


def get_bargain(viewer_id: str, bargain_id: str) -> BargainOut:
    return bargain_out(_bargain(bargain_id), viewer_id)


def _bargain(bargain_id: str) -> Bargain:
    bargain = store.get_bargain(bargain_id)
    if bargain is None:
        raise NotFound("No such bargain", code="bargain_not_found")
    return bargain


def cut(helper_id: str, bargain_id: str) -> tuple[BargainOut, bool]:
    """The helper's cut (True), or the one they made before (False: one cut per helper)."""
    bargain = _bargain(bargain_id)
    if helper_id == bargain.user_id:
        raise Conflict("Share the bargain: friends cut it, not its sponsor", code="cannot_cut_own_bargain")
    if store.get_cut(bargain_id, helper_id) is not None:
        return bargain_out(bargain, helper_id), False
    helper = users.get_user(helper_id)
    if bargain.new_users_only and (helper is None or helper.created_at < bargain.created_at):
        raise Conflict("Only new users may cut this bargain", code="not_a_new_user")
    now = clock.now()
    _check_cuttable(bargain, now)
    if not rate_limits.take_token(CUT_PER_HELPER, helper_id, now):
        raise RateLimited("Too many cuts; try again shortly", code="cut_rate_limited",
                          retry_after_seconds=CUT_PER_HELPER.retry_after_seconds)
    for _ in range(CUT_ATTEMPTS):
        amount = cut_amount(bargain.price_fen - bargain.floor_price_fen, bargain.cuts, bargain.helpers_to_floor,
                            random.random())
        made = Cut(helper_id=helper_id, amount_fen=amount, price_after_fen=bargain.price_fen - amount, created_at=now,
                   nickname=helper.nickname if helper else None, avatar_url=helper.avatar_url if helper else None)
        try:
            store.record_cut(bargain, made, now)
        except store.AlreadyCut:
            return bargain_out(_bargain(bargain_id), helper_id), False
        except (store.BargainMoved, transactions.TransactWriteError) as error:
            if isinstance(error, transactions.TransactWriteError) and not is_transient(error):
                raise
            bargain, now = _bargain(bargain_id), clock.now()
            _check_cuttable(bargain, now)
            continue
        log.info("bargain cut", bargain_id=bargain_id, amount_fen=amount, price_fen=made.price_after_fen)
        return bargain_out(_bargain(bargain_id), helper_id), True
    raise ServiceUnavailable("Many friends are cutting at once; try again", code="bargain_busy")


def _check_cuttable(bargain: Bargain, now: datetime) -> None:
    if now >= bargain.expires_at:
        raise Conflict("The bargain has expired", code="bargain_expired")
    if bargain.order_id:
        raise Conflict("The sponsor has ordered at this price", code="bargain_ordered")
    if bargain.price_fen <= bargain.floor_price_fen:
        raise Conflict("The bargain has reached its lowest price", code="bargain_at_floor")


def checkout_terms(user_id: str, bargain_id: str, order_id: str | None) -> OfferTerms:
    """The checkout's offer for the sponsor's bargain (`order_id` None: a preview, nothing held)."""
    bargain = store.get_bargain(bargain_id)
    if bargain is None or bargain.user_id != user_id:
        raise NotFound("No such bargain", code="bargain_not_found")
    now = clock.now()
    if bargain.order_id and bargain.order_id != order_id:
        raise Conflict("The bargain's price was used by another order", code="bargain_used",
                       details=[{"bargain_id": bargain_id}])
    if now >= bargain.expires_at:
        raise Conflict("The bargain has expired", code="bargain_expired")
    offer = pricing.Offer(kind="bargain", code=bargain_id, sku_id=bargain.sku_id, unit_price_fen=bargain.price_fen,
                          description="砍价")
    updates = (store.hold_for_order(bargain, order_id, now, BargainUnavailable()),) if order_id else ()
    return OfferTerms(offer=offer, updates=updates,
                      record={"kind": "bargain", "id": bargain_id, "activity_id": bargain.activity_id})


def bargain_out(bargain: Bargain, viewer_id: str) -> BargainOut:
    cuts = store.cuts(bargain.bargain_id)
    mine = next((made.amount_fen for made in cuts if made.helper_id == viewer_id), None)
    return BargainOut(
        bargain_id=bargain.bargain_id, activity_id=bargain.activity_id, sku_id=bargain.sku_id,
        start_price_fen=bargain.start_price_fen, floor_price_fen=bargain.floor_price_fen, price_fen=bargain.price_fen,
        cuts_count=bargain.cuts, helpers_to_floor=bargain.helpers_to_floor,
        at_floor=bargain.price_fen <= bargain.floor_price_fen, expires_at=clock.to_iso(bargain.expires_at),
        expired=clock.now() >= bargain.expires_at, ordered=bargain.order_id is not None,
        sponsor={"nickname": bargain.nickname, "avatar_url": bargain.avatar_url},
        cuts=[CutOut(nickname=made.nickname, avatar_url=made.avatar_url, amount_fen=made.amount_fen,
                     created_at=clock.to_iso(made.created_at)) for made in cuts],
        your_cut_fen=mine)
