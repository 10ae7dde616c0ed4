"""Tables `account_deletions` (the audit record of each account deletion, and its progress) and
`login_tombstones` (how many times an openid's account was deleted), and the erasure writes.

`account_deletions` (hash `user_id`, the deleted id): created `deleting` with a random
`tombstone_id` before anything is erased, so a retried DELETE after a crash resumes with the
same tombstone id; `counts` grows by what each step did; the final transaction flips it to
`deleted` and drops `tombstone_id`, so the record no longer links the erased person to the
anonymised orders. What stays is the record of the deletion itself (PIPL allows, and an auditor
asks for, proof that a deletion happened, when, and what it covered): a pseudonymous id, times,
counts, and the last consented policy version.

`login_tombstones` (hash `base_id` = identity.user_id_for(appid, openid), a hash, never the
openid): `deletions` counts the accounts of that WeChat identity that were deleted, so login
can derive a NEW user id for the next account (services/privacy.py `user_id_for_login`).

The erasure writes touch other modules' tables (users, sessions, orders, reviews, after-sales,
wallets, birthdays) through their own PynamoDB models: those modules have no "delete all of a
user" or "anonymise" function, and are not this change's to edit. Every write is conditional
on the item still being the erased user's (`user_id == :user`), so a retry is harmless.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pynamodb.attributes import MapAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.storage.addresses import AddressRecord
from chalicelib.storage.after_sales import ALL_REQUESTS, AfterSaleRecord
from chalicelib.storage.carts import CartLineRecord
from chalicelib.storage.base import ConditionFailed, TableMeta, condition_failure_as, table_name, update_if
from chalicelib.storage.coupons import CouponTermsRecord, CouponWalletRecord
from chalicelib.storage.favorites import FavoriteRecord
from chalicelib.storage.history import ViewRecord
from chalicelib.storage.orders import OrderRecord
from chalicelib.storage.reviews import ReviewRecord
from chalicelib.storage.sessions import SessionRecord
from chalicelib.storage.subscriptions import SubscriptionRecord
from chalicelib.storage.users import BirthdayRecord, UserRecord

DELETING, DELETED = "deleting", "deleted"
ERASED_NICKNAME = "已注销用户"
ERASED_TEXT = ""


class DeletionRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("account_deletions")

    user_id = UnicodeAttribute(hash_key=True)
    status = UnicodeAttribute()  # DELETING -> DELETED
    tombstone_id = UnicodeAttribute(null=True)  # while DELETING only
    requested_at = UTCDateTimeAttribute()
    completed_at = UTCDateTimeAttribute(null=True)
    attempts = NumberAttribute(default=1)
    counts = MapAttribute(default=dict)  # step -> items deleted or anonymised (N)
    consent_version = UnicodeAttribute(null=True)  # the policy the data was processed under
    earlier_deletions = NumberAttribute(null=True)  # this id was deleted before (see start_deletion)


class LoginTombstoneRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("login_tombstones")

    base_id = UnicodeAttribute(hash_key=True)
    deletions = NumberAttribute()
    last_deleted_at = UTCDateTimeAttribute()


@dataclass(frozen=True)
class Deletion:
    user_id: str
    status: str
    tombstone_id: str | None
    requested_at: datetime
    completed_at: datetime | None
    attempts: int
    counts: dict[str, int] = field(default_factory=dict)


def _to_deletion(record: DeletionRecord) -> Deletion:
    counts = record.counts.as_dict() if record.counts else {}
    return Deletion(user_id=record.user_id, status=record.status, tombstone_id=record.tombstone_id,
                    requested_at=record.requested_at, completed_at=record.completed_at,
                    attempts=int(record.attempts or 1), counts={k: int(v) for k, v in counts.items()})


def get_deletion(user_id: str) -> Deletion | None:
    try:
        return _to_deletion(DeletionRecord.get(user_id, consistent_read=True))
    except DeletionRecord.DoesNotExist:
        return None


def start_deletion(user_id: str, tombstone_id: str, consent_version: str | None, now: datetime) -> Deletion:
    """Create the record `deleting` (condition: none yet); or count one more attempt of a
    deletion under way (condition: still `deleting`) and answer it with ITS tombstone id; or,
    for an id deleted before and in use again (possible only while login does not resolve ids
    through `login_tombstones`), start over (condition: `deleted`), counting the earlier one.
    Raises ConditionFailed only when a concurrent request moved the record in between."""
    record = DeletionRecord(user_id, status=DELETING, tombstone_id=tombstone_id, requested_at=now, attempts=1,
                            counts={}, consent_version=consent_version)
    if update_if_saved(record, DeletionRecord.user_id.does_not_exist()):
        return _to_deletion(record)
    existing = DeletionRecord(user_id)
    if update_if(existing, [DeletionRecord.attempts.add(1)], DeletionRecord.status == DELETING):
        return _to_deletion(existing)
    restart = [DeletionRecord.status.set(DELETING), DeletionRecord.tombstone_id.set(tombstone_id),
               DeletionRecord.requested_at.set(now), DeletionRecord.attempts.set(1), DeletionRecord.counts.set({}),
               DeletionRecord.completed_at.remove(), DeletionRecord.earlier_deletions.add(1)]
    if consent_version is not None:
        restart.append(DeletionRecord.consent_version.set(consent_version))
    with condition_failure_as(ConditionFailed):
        existing.update(actions=restart, condition=DeletionRecord.status == DELETED)
    return _to_deletion(existing)


def update_if_saved(record: Model, condition: Any) -> bool:
    try:
        with condition_failure_as(ConditionFailed):
            record.save(condition=condition)
    except ConditionFailed:
        return False
    return True


def add_count(user_id: str, step: str, count: int) -> None:
    """Add what a step did to the record (condition: still `deleting`)."""
    if count:
        path = DeletionRecord.counts[step]
        update_if(DeletionRecord(user_id), [path.set((path | 0) + count)], DeletionRecord.status == DELETING)


def finish_deletion(user_id: str, base_id: str, now: datetime) -> None:
    """One transaction: the user item goes, the openid's tombstone counts one more deletion (the
    next login starts a new account), the record becomes `deleted` and forgets the tombstone id.
    Condition: the record is still `deleting` (a concurrent finisher loses: ConditionFailed)."""
    tombstone = LoginTombstoneRecord(base_id)
    try:
        with TransactWrite(connection=DeletionRecord._get_connection().connection) as transaction:
            transaction.delete(UserRecord(user_id), condition=UserRecord.user_id.exists())
            transaction.update(tombstone, actions=[LoginTombstoneRecord.deletions.add(1),
                                                   LoginTombstoneRecord.last_deleted_at.set(now)])
            transaction.update(DeletionRecord(user_id),
                               actions=[DeletionRecord.status.set(DELETED), DeletionRecord.completed_at.set(now),
                                        DeletionRecord.tombstone_id.remove()],
                               condition=DeletionRecord.status == DELETING)
    except TransactWriteError as error:
        if any(reason is not None and reason.code == "ConditionalCheckFailed"
               for reason in error.cancellation_reasons or []):
            raise ConditionFailed(f"deletion of {user_id} finished elsewhere") from None
        raise


def deletions_of(base_id: str) -> int:
    """How many accounts of this WeChat identity were deleted (0: none). A consistent read: a
    login a second after a deletion must not find the old id."""
    try:
        return int(LoginTombstoneRecord.get(base_id, consistent_read=True).deletions)
    except LoginTombstoneRecord.DoesNotExist:
        return 0


# --- erasure writes on other tables -------------------------------------------------------------

# The user's own partitions, deleted whole: (table, its range key). Bookkeeping items in them
# (the address book's default pointer, the favorites counter) go with them.
PERSONAL_PARTITIONS: dict[str, tuple[type[Model], str]] = {
    "addresses": (AddressRecord, "address_id"),
    "cart_lines": (CartLineRecord, "sku_id"),
    "favorites": (FavoriteRecord, "product_id"),
    "history": (ViewRecord, "product_id"),
    "subscriptions": (SubscriptionRecord, "sk"),
}


def delete_personal_partitions(user_id: str, max_items: int) -> dict[str, int]:
    return {name: delete_partition(model, range_name, user_id, max_items)
            for name, (model, range_name) in PERSONAL_PARTITIONS.items()}


def order_ids_of(user_id: str, max_orders: int) -> list[str]:
    """The ids of the user's orders, newest first, every page of the `by_user` index up to
    `max_orders`. An index read: callers re-read the orders consistently before deciding."""
    found: list[str] = []
    for key in OrderRecord.by_user.query(user_id, scan_index_forward=False, page_size=100):
        found.append(key.order_id)
        if len(found) >= max_orders:
            break
    return found


def delete_partition(model: type[Model], range_name: str, user_id: str, max_items: int) -> int:
    """Delete up to `max_items` items of the user's partition (a table keyed by user_id and a
    range key `range_name`); how many. Consistent Query of the keys, one DeleteItem each (a
    user's partitions are small: address book, cart, favorites, views)."""
    deleted = 0
    for record in model.query(user_id, consistent_read=True, attributes_to_get=[range_name], page_size=100):
        model(user_id, getattr(record, range_name)).delete()
        deleted += 1
        if deleted >= max_items:
            break
    return deleted


def delete_wallet(user_id: str) -> int:
    """Both coupon-wallet items (storage/coupons.py); how many existed."""
    deleted = 0
    for model in (CouponWalletRecord, CouponTermsRecord):
        deleted += update_if_deleted(model(user_id), model.user_id.exists())
    return deleted


def delete_birthday_entry(month_day: str, user_id: str) -> int:
    return update_if_deleted(BirthdayRecord(month_day, user_id), BirthdayRecord.user_id.exists())


def update_if_deleted(record: Model, condition: Any) -> int:
    """1 when the conditional DeleteItem removed the item, 0 when it was not there."""
    try:
        with condition_failure_as(ConditionFailed):
            record.delete(condition=condition)
    except ConditionFailed:
        return 0
    return 1


def revoke_user_sessions(user_id: str, now_epoch: int, max_sessions: int) -> int:
    """Revoke every live session of the user; how many. storage/sessions.py has no index by
    subject, so this Scans the table (filtered): acceptable for a rare action on a TTL-bounded
    table, and replaced by a Query once sessions get a `by_subject` index (see docs/privacy.md)."""
    revoked = 0
    live = ((SessionRecord.subject == user_id) & (SessionRecord.role == "user")
            & SessionRecord.revoked_at.does_not_exist())
    for record in SessionRecord.scan(filter_condition=live, attributes_to_get=["session_id"], consistent_read=True):
        revoked += update_if(SessionRecord(record.session_id), [SessionRecord.revoked_at.set(now_epoch)],
                             SessionRecord.session_id.exists() & SessionRecord.revoked_at.does_not_exist())
        if revoked >= max_sessions:
            break
    return revoked


def anonymise_order(order_id: str, user_id: str, tombstone_id: str, final_statuses: tuple[str, ...],
                    has_shipment: bool) -> bool:
    """Detach a finished order from the person: the owner becomes the tombstone id (the `by_user`
    index moves with it), the address snapshot, tracking number and prepay go. Amounts, lines,
    adjustments, dates and statuses stay (accounting). Condition: still the user's and final
    (and, when the caller read a shipment, still shipped: REMOVE of a path inside a missing map
    is a ValidationException, not a no-op)."""
    condition = (OrderRecord.user_id == user_id) & OrderRecord.status.is_in(*final_statuses)
    actions = [OrderRecord.user_id.set(tombstone_id), OrderRecord.address.remove(), OrderRecord.prepay.remove()]
    if has_shipment:
        actions.append(OrderRecord.shipment["tracking_no"].remove())
        condition &= OrderRecord.shipment.exists()
    return update_if(OrderRecord(order_id), actions, condition)


def anonymise_review(review_id: str, user_id: str, tombstone_id: str) -> bool:
    """A review stays counted (rating, specs, the merchant's reply: the product's summary needs no
    change) but no longer says who wrote what: author, nickname, text and images go."""
    return update_if(ReviewRecord(review_id), [ReviewRecord.user_id.set(tombstone_id),
                                               ReviewRecord.nickname.set(ERASED_NICKNAME),
                                               ReviewRecord.text.set(ERASED_TEXT), ReviewRecord.images.set([])],
                     ReviewRecord.user_id == user_id)


def anonymise_after_sale(request_id: str, user_id: str, tombstone_id: str, final_statuses: tuple[str, ...]) -> bool:
    """A finished request keeps its lines and amounts; its owner becomes the tombstone id and the
    buyer's free-text reason goes."""
    condition = (AfterSaleRecord.user_id == user_id) & AfterSaleRecord.status.is_in(*final_statuses)
    return update_if(AfterSaleRecord(request_id), [AfterSaleRecord.user_id.set(tombstone_id),
                                                   AfterSaleRecord.reason.set(ERASED_TEXT)], condition)


def after_sale_ids_of(user_id: str, since: datetime, max_items: int) -> list[str]:
    """Ids of the user's after-sales requests created since `since` (the user's creation): the
    merchant's `all_by_time` index, filtered on the user (after_sales has no index by user). An
    index read: callers re-read each request consistently before deciding anything."""
    found: list[str] = []
    for record in AfterSaleRecord.all_by_time.query(ALL_REQUESTS, AfterSaleRecord.created_at >= since,
                                                    filter_condition=AfterSaleRecord.user_id == user_id,
                                                    attributes_to_get=["request_id"], page_size=100):
        found.append(record.request_id)
        if len(found) >= max_items:
            break
    return found
