"""Table `bargains`: bargains (砍价) and their helpers' cuts.

Items (partition `pk` = bargain_id, sort `sk`):
- the bargain (`#bargain`): its sponsor, SKU, start, floor and current price, the cuts so far,
  when it expires, and `order_id` while an order holds its price (set in that order's own
  transaction, only when none holds it and before it expires: the price is used once);
- a cut (`c#<helper_id>`): what one helper took off; created on condition it is new, in the same
  transaction as the price change, conditioned on the price as read (so one cut per helper, and
  two helpers cutting at once each cut from the price the other left).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.storage.base import TableMeta, condition_failure_as, ConditionFailed, table_name
from chalicelib.storage.transactions import ExtraUpdate, failed_indexes

BARGAIN_SK, CUT_PREFIX = "#bargain", "c#"


class BargainRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("bargains")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    # the bargain
    activity_id = UnicodeAttribute(null=True)
    sku_id = UnicodeAttribute(null=True)
    user_id = UnicodeAttribute(null=True)
    start_price_fen = NumberAttribute(null=True)
    floor_price_fen = NumberAttribute(null=True)
    price_fen = NumberAttribute(null=True)
    helpers_to_floor = NumberAttribute(null=True)
    cuts = NumberAttribute(null=True)
    new_users_only = BooleanAttribute(null=True)
    expires_at = UTCDateTimeAttribute(null=True)
    order_id = UnicodeAttribute(null=True)
    # a cut
    helper_id = UnicodeAttribute(null=True)
    amount_fen = NumberAttribute(null=True)
    price_after_fen = NumberAttribute(null=True)
    # both
    nickname = UnicodeAttribute(null=True)
    avatar_url = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute(null=True)


@dataclass(frozen=True)
class Bargain:
    bargain_id: str
    activity_id: str
    sku_id: str
    user_id: str
    start_price_fen: int
    floor_price_fen: int
    price_fen: int
    helpers_to_floor: int
    cuts: int
    new_users_only: bool
    created_at: datetime
    expires_at: datetime
    order_id: str | None = None
    nickname: str | None = None
    avatar_url: str | None = None


@dataclass(frozen=True)
class Cut:
    helper_id: str
    amount_fen: int
    price_after_fen: int
    created_at: datetime
    nickname: str | None = None
    avatar_url: str | None = None


class BargainExists(Exception):
    """The sponsor has this bargain already."""


class AlreadyCut(Exception):
    """This helper cut this bargain before."""


class BargainMoved(Exception):
    """The bargain's price changed since it was read, or it was ordered or expired: read it again."""


def _bargain(record: BargainRecord) -> Bargain:
    return Bargain(bargain_id=record.pk, activity_id=record.activity_id, sku_id=record.sku_id, user_id=record.user_id,
                   start_price_fen=int(record.start_price_fen), floor_price_fen=int(record.floor_price_fen),
                   price_fen=int(record.price_fen), helpers_to_floor=int(record.helpers_to_floor),
                   cuts=int(record.cuts or 0), new_users_only=bool(record.new_users_only),
                   created_at=record.created_at, expires_at=record.expires_at, order_id=record.order_id,
                   nickname=record.nickname, avatar_url=record.avatar_url)


def _cut(record: BargainRecord) -> Cut:
    return Cut(helper_id=record.helper_id, amount_fen=int(record.amount_fen),
               price_after_fen=int(record.price_after_fen), created_at=record.created_at,
               nickname=record.nickname, avatar_url=record.avatar_url)


def create_bargain(bargain: Bargain) -> None:
    """Raises BargainExists when the sponsor started it before."""
    record = BargainRecord(
        bargain.bargain_id, BARGAIN_SK, activity_id=bargain.activity_id, sku_id=bargain.sku_id,
        user_id=bargain.user_id, start_price_fen=bargain.start_price_fen, floor_price_fen=bargain.floor_price_fen,
        price_fen=bargain.price_fen, helpers_to_floor=bargain.helpers_to_floor, cuts=bargain.cuts,
        new_users_only=bargain.new_users_only, created_at=bargain.created_at, expires_at=bargain.expires_at,
        nickname=bargain.nickname, avatar_url=bargain.avatar_url)
    with condition_failure_as(BargainExists):
        record.save(condition=BargainRecord.pk.does_not_exist())


def get_bargain(bargain_id: str) -> Bargain | None:
    try:
        return _bargain(BargainRecord.get(bargain_id, BARGAIN_SK, consistent_read=True))
    except BargainRecord.DoesNotExist:
        return None


def cuts(bargain_id: str, limit: int = 100) -> list[Cut]:
    """The bargain's cuts, oldest first (one consistent Query of its partition)."""
    found = [_cut(record) for record in BargainRecord.query(bargain_id, BargainRecord.sk.startswith(CUT_PREFIX),
                                                             consistent_read=True, limit=limit)]
    return sorted(found, key=lambda cut: cut.created_at)


def get_cut(bargain_id: str, helper_id: str) -> Cut | None:
    try:
        return _cut(BargainRecord.get(bargain_id, CUT_PREFIX + helper_id, consistent_read=True))
    except BargainRecord.DoesNotExist:
        return None


def record_cut(bargain: Bargain, cut: Cut, now: datetime) -> None:
    """The helper's cut and the price it leaves, together. Conditions: the helper never cut this
    bargain (else AlreadyCut); the price and cut count are as read, no order holds it and it has
    not expired (else BargainMoved)."""
    b = BargainRecord
    try:
        with TransactWrite(connection=BargainRecord._get_connection().connection) as transaction:
            transaction.save(BargainRecord(bargain.bargain_id, CUT_PREFIX + cut.helper_id, helper_id=cut.helper_id,
                                           amount_fen=cut.amount_fen, price_after_fen=cut.price_after_fen,
                                           nickname=cut.nickname, avatar_url=cut.avatar_url,
                                           created_at=cut.created_at),
                             condition=b.pk.does_not_exist())
            transaction.update(BargainRecord(bargain.bargain_id, BARGAIN_SK),
                               actions=[b.price_fen.set(cut.price_after_fen), b.cuts.set(bargain.cuts + 1)],
                               condition=(b.price_fen == bargain.price_fen) & (b.cuts == bargain.cuts)
                               & b.order_id.does_not_exist() & (b.expires_at > now))
    except TransactWriteError as error:
        failed = failed_indexes(error)
        if 0 in failed:
            raise AlreadyCut() from None
        if 1 in failed:
            raise BargainMoved() from None
        raise


def hold_for_order(bargain: Bargain, order_id: str, now: datetime, on_failure: Exception) -> ExtraUpdate:
    """For the order's transaction: the bargain's price is this order's. Conditions: no order holds
    it, it has not expired, and its price is the one the order was priced at."""
    b = BargainRecord
    update = BargainRecord(bargain.bargain_id, BARGAIN_SK).get_update_kwargs_from_instance(
        actions=[b.order_id.set(order_id)],
        condition=b.order_id.does_not_exist() & (b.expires_at > now) & (b.price_fen == bargain.price_fen))
    return ExtraUpdate(update, on_failure)


def release_hold(bargain_id: str) -> ExtraUpdate:
    """For the transaction closing the unpaid order that holds it: the price may be used again.
    Unconditional: that transaction runs once per order (conditioned on the order being unpaid),
    and only this order can hold the bargain while it is unpaid."""
    update = BargainRecord(bargain_id, BARGAIN_SK).get_update_kwargs_from_instance(
        actions=[BargainRecord.order_id.remove()], condition=BargainRecord.pk.exists())
    return ExtraUpdate(update, ConditionFailed())
