"""Table `group_buys`: groups (拼团), their members and each buyer's per-activity count.

Items (partition `pk`, sort `sk`):
- a group: (`<group_id>`, `#group`): terms copied from its activity when it opened (size, price),
  `status`, `paid_count` (places taken: only payments take them), `expires_at`, and a sparse
  timer (`timer_kind`, `timer_at`) while it waits on something (its leader, its window, the
  refunds of its failure), so the safety-net sweep Queries the few due groups (`by_timer`);
- a member: (`<group_id>`, `m#<user_id>`): the member's order and its place (`pending` until the
  order is paid, then `paid`; `closed` when the order closed unpaid; `moved` when its payment
  found the group unable to take it and led a new group; `refunding` once the failed group's
  refund is recorded), with the nickname and avatar to show and nothing more;
- a count: (`limit#<activity_id>#<user_id>`, `#limit`): the buyer's group orders in the activity,
  a conditional counter (`count < per_user_limit`).

Every change is a conditional write or part of the order's own transaction (ExtraUpdate), so the
group's counter moves exactly with the payments (storage/transactions.pay_order).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.storage.base import KeysOnlyIndex, TableMeta, table_name, update_if
from chalicelib.storage.orders import OrderRecord
from chalicelib.storage.payments import Refund, RefundRecord, refund_record
from chalicelib.storage.transactions import ExtraUpdate, failed_indexes

GROUP_SK, LIMIT_SK, MEMBER_PREFIX = "#group", "#limit", "m#"
TIMER_GROUP = "group"
PENDING, PAID, CLOSED, MOVED, REFUNDING = "pending", "paid", "closed", "moved", "refunding"


class ByTimer(KeysOnlyIndex):
    class Meta(KeysOnlyIndex.Meta):
        index_name = "by_timer"

    timer_kind = UnicodeAttribute(hash_key=True)
    timer_at = UTCDateTimeAttribute(range_key=True)


class GroupBuyRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("group_buys")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    # a group
    activity_id = UnicodeAttribute(null=True)
    sku_id = UnicodeAttribute(null=True)
    price_fen = NumberAttribute(null=True)
    size = NumberAttribute(null=True)
    status = UnicodeAttribute(null=True)  # group: opening|open|succeeded|failed; member: pending|paid|...
    paid_count = NumberAttribute(null=True)
    leader_id = UnicodeAttribute(null=True)
    leader_order_id = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute(null=True)
    expires_at = UTCDateTimeAttribute(null=True)
    succeeded_at = UTCDateTimeAttribute(null=True)
    failed_at = UTCDateTimeAttribute(null=True)
    timer_kind = UnicodeAttribute(null=True)
    timer_at = UTCDateTimeAttribute(null=True)
    # a member
    user_id = UnicodeAttribute(null=True)
    order_id = UnicodeAttribute(null=True)
    nickname = UnicodeAttribute(null=True)
    avatar_url = UnicodeAttribute(null=True)
    leader = BooleanAttribute(null=True)
    joined_at = UTCDateTimeAttribute(null=True)
    paid_at = UTCDateTimeAttribute(null=True)
    # a buyer's count in an activity
    count = NumberAttribute(null=True)

    by_timer = ByTimer()


@dataclass(frozen=True)
class Group:
    group_id: str
    activity_id: str
    sku_id: str
    price_fen: int
    size: int
    status: str
    paid_count: int
    leader_id: str
    leader_order_id: str
    created_at: datetime
    expires_at: datetime
    succeeded_at: datetime | None = None
    failed_at: datetime | None = None
    timer_at: datetime | None = None


@dataclass(frozen=True)
class Member:
    group_id: str
    user_id: str
    order_id: str
    status: str
    leader: bool
    joined_at: datetime
    nickname: str | None = None
    avatar_url: str | None = None
    paid_at: datetime | None = None


class GroupMoved(Exception):
    """The group is no longer as read (a place taken, its status changed): read it and decide again."""


class MemberMoved(Exception):
    """The member's place no longer belongs to the order paying for it."""


class AlreadyMember(Exception):
    """The buyer already has an order waiting or paid in this group."""


class LimitReached(Exception):
    """The buyer reached the activity's per-user limit."""


class GroupTaken(Exception):
    """A group with this id exists (a replayed open)."""


def _group(record: GroupBuyRecord) -> Group:
    return Group(group_id=record.pk, activity_id=record.activity_id, sku_id=record.sku_id,
                 price_fen=int(record.price_fen), size=int(record.size), status=record.status,
                 paid_count=int(record.paid_count or 0), leader_id=record.leader_id,
                 leader_order_id=record.leader_order_id, created_at=record.created_at, expires_at=record.expires_at,
                 succeeded_at=record.succeeded_at, failed_at=record.failed_at, timer_at=record.timer_at)


def _member(record: GroupBuyRecord) -> Member:
    return Member(group_id=record.pk, user_id=record.user_id, order_id=record.order_id, status=record.status,
                  leader=bool(record.leader), joined_at=record.joined_at, nickname=record.nickname,
                  avatar_url=record.avatar_url, paid_at=record.paid_at)


def get_group(group_id: str) -> Group | None:
    try:
        return _group(GroupBuyRecord.get(group_id, GROUP_SK, consistent_read=True))
    except GroupBuyRecord.DoesNotExist:
        return None


def members(group_id: str) -> list[Member]:
    """Every member of the group, in joining order (one consistent Query of its partition)."""
    found = [_member(record) for record in GroupBuyRecord.query(
        group_id, GroupBuyRecord.sk.startswith(MEMBER_PREFIX), consistent_read=True)]
    return sorted(found, key=lambda member: (not member.leader, member.joined_at))


def get_member(group_id: str, user_id: str) -> Member | None:
    try:
        return _member(GroupBuyRecord.get(group_id, MEMBER_PREFIX + user_id, consistent_read=True))
    except GroupBuyRecord.DoesNotExist:
        return None


def due_group_ids(now: datetime, limit: int) -> list[str]:
    """Groups whose timer is due (the sweep's index Query; the caller re-reads each group)."""
    return [record.pk for record in GroupBuyRecord.by_timer.query(TIMER_GROUP, GroupBuyRecord.timer_at <= now,
                                                                    limit=limit)]


# ----------------------------------------------------------------- updates for an order's transaction

def _update(pk: str, sk: str, actions: list, condition: Any, on_failure: Exception) -> ExtraUpdate:
    return ExtraUpdate(GroupBuyRecord(pk, sk).get_update_kwargs_from_instance(actions=actions, condition=condition),
                       on_failure)


def create_group(group: Group, status: str, timer_at: datetime) -> ExtraUpdate:
    """The group item, created (condition: the id is new)."""
    g = GroupBuyRecord
    actions = [g.activity_id.set(group.activity_id), g.sku_id.set(group.sku_id), g.price_fen.set(group.price_fen),
               g.size.set(group.size), g.status.set(status), g.paid_count.set(group.paid_count),
               g.leader_id.set(group.leader_id), g.leader_order_id.set(group.leader_order_id),
               g.created_at.set(group.created_at), g.expires_at.set(group.expires_at),
               g.timer_kind.set(TIMER_GROUP), g.timer_at.set(timer_at)]
    return _update(group.group_id, GROUP_SK, actions, g.pk.does_not_exist(), GroupTaken())


def add_member(member: Member) -> ExtraUpdate:
    """The member's place (condition: none, or one whose order closed unpaid)."""
    g = GroupBuyRecord
    actions = [g.user_id.set(member.user_id), g.order_id.set(member.order_id), g.status.set(member.status),
               g.leader.set(member.leader), g.joined_at.set(member.joined_at)]
    actions += [g.nickname.set(member.nickname)] if member.nickname else [g.nickname.remove()]
    actions += [g.avatar_url.set(member.avatar_url)] if member.avatar_url else [g.avatar_url.remove()]
    if member.paid_at:
        actions.append(g.paid_at.set(member.paid_at))
    return _update(member.group_id, MEMBER_PREFIX + member.user_id, actions,
                   g.pk.does_not_exist() | (g.status == CLOSED), AlreadyMember())


def take_limit(activity_id: str, user_id: str, per_user_limit: int) -> ExtraUpdate:
    g = GroupBuyRecord
    return _update(f"limit#{activity_id}#{user_id}", LIMIT_SK, [g.count.add(1)],
                   g.count.does_not_exist() | (g.count < per_user_limit), LimitReached())


def give_back_limit(activity_id: str, user_id: str) -> ExtraUpdate:
    """Unconditional: it rides on a transaction that runs once per order (the close, conditioned on
    the order being unpaid), and must never be the reason that transaction fails."""
    return _update(f"limit#{activity_id}#{user_id}", LIMIT_SK, [GroupBuyRecord.count.add(-1)], None, LimitReached())


def close_member(group_id: str, user_id: str, order_id: str) -> ExtraUpdate:
    """The member's order closed unpaid: its place is free (condition: the place is this order's)."""
    g = GroupBuyRecord
    return _update(group_id, MEMBER_PREFIX + user_id, [g.status.set(CLOSED)], g.order_id == order_id, MemberMoved())


def mark_member(group_id: str, user_id: str, order_id: str, status: str, now: datetime) -> ExtraUpdate:
    """The member's order was paid (PAID) or led a new group (MOVED)."""
    g = GroupBuyRecord
    return _update(group_id, MEMBER_PREFIX + user_id, [g.status.set(status), g.paid_at.set(now)],
                   g.order_id == order_id, MemberMoved())


def lead(group: Group, order_id: str, now: datetime) -> ExtraUpdate:
    """The leader paid: opening -> open, the first place taken, the timer at the window's end."""
    g = GroupBuyRecord
    return _update(group.group_id, GROUP_SK, [g.status.set("open"), g.paid_count.set(1),
                                              g.timer_at.set(group.expires_at)],
                   (g.status == "opening") & (g.leader_order_id == order_id) & (g.expires_at > now), GroupMoved())


def join(group: Group, now: datetime) -> ExtraUpdate:
    """A place taken, leaving at least one open (condition: open, in time, two or more places left)."""
    g = GroupBuyRecord
    return _update(group.group_id, GROUP_SK, [g.paid_count.add(1)],
                   (g.status == "open") & (g.paid_count < group.size - 1) & (g.expires_at > now), GroupMoved())


def fill(group: Group, now: datetime) -> ExtraUpdate:
    """The last place taken: -> succeeded (condition: open, in time, exactly one place left)."""
    g = GroupBuyRecord
    return _update(group.group_id, GROUP_SK,
                   [g.status.set("succeeded"), g.paid_count.set(group.size), g.succeeded_at.set(now),
                    g.timer_kind.remove(), g.timer_at.remove()],
                   (g.status == "open") & (g.paid_count == group.size - 1) & (g.expires_at > now), GroupMoved())


def release_order(order_id: str) -> ExtraUpdate:
    """A paid member's order may ship: its group succeeded."""
    update = OrderRecord(order_id).get_update_kwargs_from_instance(
        actions=[OrderRecord.awaiting_group.remove()], condition=OrderRecord.order_id.exists())
    return ExtraUpdate(update, MemberMoved())


def group_succeeded_actions() -> list:
    """The filling payment's own order may ship too (an order action of its payment)."""
    return [OrderRecord.awaiting_group.remove()]


def group_moved_actions(offer: dict[str, str]) -> list:
    """The order's payment led a new group: the order now belongs to it."""
    return [OrderRecord.offer.set(offer)]


# ------------------------------------------------------------------------------- failing a group

def fail(group: Group, now: datetime) -> bool:
    """opening|open -> failed, due for settling now (condition: status and places as read).
    False when the group moved since it was read."""
    g = GroupBuyRecord
    return update_if(GroupBuyRecord(group.group_id, GROUP_SK),
                     [g.status.set("failed"), g.failed_at.set(now), g.timer_kind.set(TIMER_GROUP), g.timer_at.set(now)],
                     (g.status == group.status) & (g.paid_count == group.paid_count))


def set_timer(group_id: str, timer_at: datetime | None, status: str) -> bool:
    """Move (or, None, remove) the group's sweep timer, while it is `status`."""
    g = GroupBuyRecord
    actions = [g.timer_kind.set(TIMER_GROUP), g.timer_at.set(timer_at)] if timer_at else \
        [g.timer_kind.remove(), g.timer_at.remove()]
    return update_if(GroupBuyRecord(group_id, GROUP_SK), actions, g.status == status)


class RefundTaken(Exception):
    """The member's refund is recorded already (the other of timer and sweep), or its order moved."""


def start_member_refund(member: Member, activity_id: str, refund: Refund) -> None:
    """A failed group's paid member: record its full refund, mark it in flight on the order, the
    place `refunding` and the buyer's count given back, all or nothing. Conditions: the refund is
    new, the order still paid with this payment, the place still paid. Raises RefundTaken."""
    g = GroupBuyRecord
    try:
        with TransactWrite(connection=GroupBuyRecord._get_connection().connection) as transaction:
            transaction.save(refund_record(refund), condition=RefundRecord.out_refund_no.does_not_exist())
            transaction.update(OrderRecord(member.order_id),
                               actions=[OrderRecord.refunds_in_flight.add({refund.out_refund_no})],
                               condition=(OrderRecord.status == "paid")
                               & (OrderRecord.transaction_id == refund.transaction_id))
            transaction.update(GroupBuyRecord(member.group_id, MEMBER_PREFIX + member.user_id),
                               actions=[g.status.set(REFUNDING)], condition=(g.status == PAID)
                               & (g.order_id == member.order_id))
            transaction.update(GroupBuyRecord(f"limit#{activity_id}#{member.user_id}", LIMIT_SK),
                               actions=[g.count.add(-1)])  # once: the place's condition above
    except TransactWriteError as error:
        if failed_indexes(error):
            raise RefundTaken(member.order_id) from None
        raise


def forget_member_profile(group_id: str, user_id: str) -> int:
    """PIPL deletion: the member's nickname and avatar copy goes (its place and money facts stay,
    keyed as they were). 1 if there was a member item, else 0."""
    record = GroupBuyRecord(group_id, MEMBER_PREFIX + user_id)
    return int(update_if(record, [GroupBuyRecord.nickname.remove(), GroupBuyRecord.avatar_url.remove()],
                         GroupBuyRecord.pk.exists()))
