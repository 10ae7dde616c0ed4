"""Group-buy (拼团) use cases: open or join a group, pay into it, and fail it when its time is up.

- Opening or joining places an ordinary order through the checkout (services/checkout.py), priced
  at the group price by the pricing's offer step; its transaction also writes the member's place
  (`pending`, one per buyer and group), the buyer's count in the activity (`count <
  per_user_limit`) and, when opening, the group (`opening`). Nothing there takes a place.
- Places are taken by payments, in the payment's own transaction (storage/transactions.pay_order
  with the group's conditional counter): the leader's payment opens the group, a member's joins it,
  and the one that takes the last place makes it `succeeded` and lets every member's order ship
  (it clears their `awaiting_group` flag in the same transaction). A payment whose group can no
  longer take it leads a new group (domain/group_buy.py): the notify never refuses a payment and
  never refunds on the spot; the one extra read (the group) is all it costs, plus the members'
  Query for the filling payment.
- A group that fails (its window ended unfilled, or its leader never paid) refunds each paid
  member automatically, once, and closes its unpaid orders: services/group_settlement.py.
"""
from __future__ import annotations

import random
import time
import uuid
from datetime import datetime, timedelta

from chalicelib import clock
from chalicelib.domain import group_buy as rules
from chalicelib.domain import pricing
from chalicelib.errors import Conflict, NotFound
from chalicelib.log import get_logger
from chalicelib.schemas.group_buys import GroupBuyOrder, GroupMemberOut, GroupOut, StartGroupBuyBody
from chalicelib.schemas.orders import ItemIn, PlaceOrderBody
from chalicelib.services import activities, checkout, group_settlement
from chalicelib.settings import get_settings
from chalicelib.storage import group_buys as store
from chalicelib.storage import activities as activity_store
from chalicelib.storage import orders, transactions, users
from chalicelib.storage.base import is_transient
from chalicelib.storage.group_buys import Group, Member
from chalicelib.storage.payments import Payment

log = get_logger(__name__)
PAY_ATTEMPTS = 12  # re-reads of a group that moved (places taken by racing payments)


class GroupBusy(Exception):
    """Racing payments kept moving the group: WeChat retries the notify (the payment is not lost)."""


# ------------------------------------------------------------------------------- open or join

def start_group_buy(user_id: str, body: StartGroupBuyBody) -> tuple[GroupBuyOrder, bool]:
    """Open a group or join one: a pending order at the group price (True), or the order this
    checkout_token made before (False)."""
    token = body.checkout_token or uuid.uuid4().hex
    order_id = checkout.order_id_for(user_id, token)
    if body.checkout_token:
        existing = orders.get_order(order_id)
        if existing is not None and existing.user_id == user_id:
            return _replayed(existing, body), False
    now = clock.now()
    activity = activities.running_offer(body.activity_id, "group_buy", body.sku_id, now)
    user = users.get_user(user_id)
    group, updates = (_join_writes(body.group_id, activity, user_id, user, order_id, now) if body.group_id
                      else _open_writes(activity, user_id, user, order_id, now))
    terms = checkout.OfferTerms(
        offer=pricing.Offer(kind="group_buy", code=activity.activity_id, sku_id=activity.sku_id,
                            unit_price_fen=activity.price_fen, description=f"{activity.group_size}人团价"),
        updates=tuple(updates), record={"kind": "group_buy", "id": group.group_id, "activity_id": activity.activity_id},
        awaiting_group=True)
    order_body = PlaceOrderBody(items=[ItemIn(sku_id=activity.sku_id, quantity=1)], checkout_token=token,
                                **body.model_dump(include={"delivery_method", "address_id", "store_id"},
                                                  exclude_none=True))
    order, created = _place(user_id, order_body, terms)
    if created and not body.group_id:
        group_settlement.schedule(group.group_id, rules.opening_deadline(order.pay_deadline))
    return GroupBuyOrder(group=group_out(store.get_group(order.offer["id"]) or group), order=_order_out(order)), created


def _place(user_id: str, body: PlaceOrderBody, terms: checkout.OfferTerms):
    try:
        return checkout.place_order(user_id, body, terms)
    except store.AlreadyMember:
        raise Conflict("You already have an order in this group", code="already_in_group") from None
    except store.LimitReached:
        raise Conflict("You reached this group-buy's limit per buyer", code="group_buy_limit_reached") from None
    except (store.GroupTaken, store.MemberMoved):
        raise Conflict("The group changed while joining; try again", code="group_busy") from None


def _replayed(order: orders.Order, body: StartGroupBuyBody) -> GroupBuyOrder:
    offer = order.offer or {}
    if offer.get("kind") != "group_buy" or offer.get("activity_id") != body.activity_id:
        raise Conflict("This checkout_token was already used for a different order", code="checkout_token_reused")
    group = store.get_group(offer["id"])
    return GroupBuyOrder(group=group_out(group), order=_order_out(order))


def _open_writes(activity, user_id: str, user, order_id: str, now: datetime) -> tuple[Group, list]:
    group = Group(group_id="g" + order_id[1:], activity_id=activity.activity_id, sku_id=activity.sku_id,
                  price_fen=activity.price_fen, size=activity.group_size, status=rules.OPENING, paid_count=0,
                  leader_id=user_id, leader_order_id=order_id, created_at=now,
                  expires_at=now + timedelta(minutes=activity.window_minutes))
    pay_deadline = now + timedelta(minutes=get_settings().pay_timeout_minutes)
    return group, [store.create_group(group, rules.OPENING, rules.opening_deadline(pay_deadline)),
                   store.add_member(_member(group.group_id, user_id, user, order_id, True, now)),
                   store.take_limit(activity.activity_id, user_id, activity.per_user_limit)]


def _join_writes(group_id: str, activity, user_id: str, user, order_id: str, now: datetime) -> tuple[Group, list]:
    """A join is checked against the group as it is (its payment decides for good)."""
    group = store.get_group(group_id)
    if group is None or group.activity_id != activity.activity_id:
        raise NotFound("No such group", code="group_not_found")
    if group.status != rules.OPEN or now >= group.expires_at:
        raise Conflict(f"The group is {group.status if group.status != rules.OPEN else 'closed'}: open a new one",
                       code="group_not_open", details=[{"status": group.status}])
    if group.paid_count >= group.size:
        raise Conflict("The group is full: open a new one", code="group_full")
    return group, [store.add_member(_member(group_id, user_id, user, order_id, False, now)),
                   store.take_limit(activity.activity_id, user_id, activity.per_user_limit)]


def _member(group_id: str, user_id: str, user, order_id: str, leader: bool, now: datetime,
            status: str = store.PENDING) -> Member:
    return Member(group_id=group_id, user_id=user_id, order_id=order_id, status=status, leader=leader, joined_at=now,
                  nickname=user.nickname if user else None, avatar_url=user.avatar_url if user else None,
                  paid_at=now if status == store.PAID else None)


def _order_out(order: orders.Order):
    from chalicelib.api.orders import order_out

    return order_out(order)


def get_group(group_id: str) -> GroupOut:
    group = store.get_group(group_id)
    if group is None:
        raise NotFound("No such group", code="group_not_found")
    return group_out(group)


def group_out(group: Group) -> GroupOut:
    shown = [member for member in store.members(group.group_id) if member.status in (store.PAID, store.REFUNDING)]
    when = lambda moment: clock.to_iso(moment) if moment else None  # noqa: E731
    return GroupOut(group_id=group.group_id, activity_id=group.activity_id, sku_id=group.sku_id,
                    price_fen=group.price_fen, group_size=group.size, paid_count=group.paid_count,
                    places_left=rules.places_left(group.status, group.paid_count, group.size), status=group.status,
                    expires_at=clock.to_iso(group.expires_at), succeeded_at=when(group.succeeded_at),
                    failed_at=when(group.failed_at),
                    members=[GroupMemberOut(nickname=member.nickname, avatar_url=member.avatar_url,
                                            leader=member.leader, joined_at=clock.to_iso(member.joined_at))
                             for member in shown])


# ------------------------------------------------------------------------------------ paying

def pay_into_group(order: orders.Order, payment: Payment, now: datetime) -> str:
    """Apply the payment of a group order with its place in the group, in one transaction: what
    it does is decided from the group as read (domain/group_buy.plan_payment) and conditioned on
    exactly that, so a payment that raced another is decided again. Raises DuplicatePayment or
    StatusChanged as transactions.pay_order does, GroupBusy when the group kept moving."""
    for attempt in range(PAY_ATTEMPTS):
        if attempt:
            time.sleep(random.uniform(0, 0.01 * attempt))  # spread the payments racing on one group
        group = store.get_group(order.offer["id"])
        plan = rules.plan_payment(_facts(group), order.order_id, now)
        writes, order_actions, new_group = _payment_writes(order, group, plan, now)
        try:
            transactions.pay_order(order, payment, now, extra_updates=writes,
                                   order_actions=order_actions)
        except (store.GroupMoved, store.MemberMoved, store.GroupTaken, store.AlreadyMember):
            continue
        except transactions.TransactWriteError as error:
            if is_transient(error):
                continue
            raise
        _after_payment(order, plan, new_group or group)
        return plan.value
    raise GroupBusy(order.order_id)


def _facts(group: Group | None) -> rules.GroupFacts | None:
    if group is None:
        return None
    return rules.GroupFacts(status=group.status, paid_count=group.paid_count, size=group.size,
                            expires_at=group.expires_at, leader_order_id=group.leader_order_id)


def _payment_writes(order: orders.Order, group: Group | None, plan: rules.PaymentPlan, now: datetime):
    """(the group writes, the order's own changes, the new group when one is opened)."""
    user_id, order_id = order.user_id, order.order_id
    if plan is rules.PaymentPlan.REOPEN:
        return _reopen_writes(order, group, now)
    paid = store.mark_member(group.group_id, user_id, order_id, store.PAID, now)
    if plan is rules.PaymentPlan.LEAD:
        return [store.lead(group, order_id, now), paid], [], None
    if plan is rules.PaymentPlan.JOIN:
        return [store.join(group, now), paid], [], None
    others = [member.order_id for member in store.members(group.group_id)
              if member.status == store.PAID and member.order_id != order_id]
    return ([store.fill(group, now), paid, *(store.release_order(other) for other in others)],
            store.group_succeeded_actions(), None)


def _reopen_writes(order: orders.Order, group: Group | None, now: datetime):
    """The order leads a new group of its activity, at the price it was placed at; the window is
    cut at the activity's end (ended or paused: due at once, so refunded by the expiry)."""
    offer = order.offer
    activity = activity_store.get_activity(offer["activity_id"], consistent=True)
    running = activity is not None and activity.status == "active"
    ends = rules.reopened_window_end(now, timedelta(minutes=activity.window_minutes if activity else 0),
                                     activity.ends_at if running else None)
    old_member = store.get_member(group.group_id, order.user_id) if group else None
    new_group = Group(group_id="r" + order.order_id[1:], activity_id=offer["activity_id"], sku_id=order.lines[0].sku_id,
                      price_fen=order.lines[0].payable_fen, size=_size(group, activity),
                      status=rules.OPEN, paid_count=1, leader_id=order.user_id, leader_order_id=order.order_id,
                      created_at=now, expires_at=ends)
    leader = Member(group_id=new_group.group_id, user_id=order.user_id, order_id=order.order_id, status=store.PAID,
                    leader=True, joined_at=now, nickname=old_member.nickname if old_member else None,
                    avatar_url=old_member.avatar_url if old_member else None, paid_at=now)
    writes = [store.create_group(new_group, rules.OPEN, ends), store.add_member(leader)]
    if old_member is not None and old_member.order_id == order.order_id:
        writes.append(store.mark_member(group.group_id, order.user_id, order.order_id, store.MOVED, now))
    return writes, store.group_moved_actions({**offer, "id": new_group.group_id}), new_group


def _size(group: Group | None, activity) -> int:
    """The new group's size: its old group's (the terms the buyer joined on), else the activity's."""
    if group is not None:
        return group.size
    return activity.group_size if activity is not None and activity.group_size else rules.MIN_GROUP_SIZE


def _after_payment(order: orders.Order, plan: rules.PaymentPlan, group: Group) -> None:
    if plan is rules.PaymentPlan.FILL:
        log.info("group succeeded", group_id=group.group_id, order_id=order.order_id)
    elif plan in (rules.PaymentPlan.LEAD, rules.PaymentPlan.REOPEN):
        log.info("group opened", group_id=group.group_id, order_id=order.order_id, plan=plan.value)
        group_settlement.schedule(group.group_id, group.expires_at)
