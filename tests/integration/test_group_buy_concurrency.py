"""Group-buys and bargains under real concurrency, on AWS's DynamoDB Local engine: ten payments
racing for the last two places of a group of three, a failed group's timer and sweep racing to
refund it, and helpers racing to cut one bargain."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from chalicelib import clock
from chalicelib.schemas.activities import CreateActivityBody
from chalicelib.schemas.bargains import StartBargainBody
from chalicelib.schemas.group_buys import StartGroupBuyBody
from chalicelib.schemas.timers import GroupTimer
from chalicelib.services import activities, bargains, group_buys, group_settlement, payments
from chalicelib.storage import bargains as bargain_store
from chalicelib.storage import group_buys as group_store
from chalicelib.storage import orders, stores
from chalicelib.storage.payments import RefundRecord
from chalicelib.wechat.pay_types import Transaction
from tests.conftest import TEST_ENV
from tests.integration.concurrency import race
from tests.storage.order_fixtures import counters, make_product

pytestmark = pytest.mark.dynamodb_local


@pytest.fixture
def shop(dynamodb_local, wechat_sim):
    make_product(skus={"s1": 30, "s2": 5}, price_fen=2990)
    stores.create_store("st1", name="店", address="上海", hours="9-21")
    activities.forget_running()
    window = {"starts_at": clock.now().isoformat(), "ends_at": (clock.now() + timedelta(days=1)).isoformat()}
    group_buy = activities.create_activity(CreateActivityBody.model_validate({
        "kind": "group_buy", "sku_id": "s1", "price_fen": 1990, "group_size": 3, "window_minutes": 60,
        "per_user_limit": 1, **window}))
    bargain = activities.create_activity(CreateActivityBody.model_validate({
        "kind": "bargain", "sku_id": "s2", "floor_price_fen": 990, "helpers_to_floor": 5, "window_minutes": 60,
        **window}))
    yield {"group_buy": group_buy.activity_id, "bargain": bargain.activity_id}
    activities.forget_running()


def _start(shop, user_id: str, group_id: str | None = None):
    body = StartGroupBuyBody.model_validate({"activity_id": shop["group_buy"], "sku_id": "s1",
                                             "delivery_method": "pickup", "store_id": "st1",
                                             **({"group_id": group_id} if group_id else {})})
    answer, created = group_buys.start_group_buy(user_id, body)
    assert created
    return answer


def _pay(order_id: str) -> str:
    order = orders.get_order(order_id)
    return payments.apply_transaction(Transaction(
        out_trade_no=order.out_trade_no, transaction_id=f"42{order_id}", trade_state="SUCCESS",
        amount_total_fen=order.payable_fen, payer_openid="o", appid=TEST_ENV["WECHAT_APPID"],
        mchid=TEST_ENV.get("WECHAT_PAY_MCH_ID") or _mch_id(), success_time=clock.now()), "v3")


def _mch_id() -> str:
    from chalicelib.settings import get_settings

    return get_settings().pay.mch_id


def test_ten_payments_for_the_last_two_places_make_one_group_of_three_and_lead_new_groups(shop):
    leader = _start(shop, "u-lead")
    group_id = leader.group.group_id
    assert _pay(leader.order.order_id) == "paid"
    joiners = [_start(shop, f"u-{n}", group_id).order.order_id for n in range(10)]  # all see 2 places left

    outcomes = race(10, lambda n: _pay(joiners[n]))

    assert outcomes == ["paid"] * 10  # every payment applied: none refused, none lost
    group = group_store.get_group(group_id)
    assert (group.status, group.paid_count) == ("succeeded", 3)
    in_group = [order_id for order_id in joiners if orders.get_order(order_id).offer["id"] == group_id]
    assert len(in_group) == 2
    paid_members = [m for m in group_store.members(group_id) if m.status == group_store.PAID]
    assert sorted(m.order_id for m in paid_members) == sorted([leader.order.order_id, *in_group])
    assert not any(orders.get_order(order_id).awaiting_group for order_id in [leader.order.order_id, *in_group])
    moved = [orders.get_order(order_id) for order_id in joiners if order_id not in in_group]
    assert all(order.status == "paid" and order.awaiting_group for order in moved)
    new_groups = [group_store.get_group(order.offer["id"]) for order in moved]
    assert len({g.group_id for g in new_groups}) == 8
    assert all((g.status, g.paid_count, g.leader_order_id) == ("open", 1, order.order_id)
               for g, order in zip(new_groups, moved))
    assert Counter(m.status for m in group_store.members(group_id)) == {"paid": 3, "moved": 8}
    assert counters("s1") == {"available": 19, "allocated": 0, "reserved": 0, "sold": 11, "stock_in": 30}


def test_a_failed_groups_timer_and_sweep_racing_refund_each_paid_member_once(shop):
    leader = _start(shop, "u-lead")
    group_id = leader.group.group_id
    _pay(leader.order.order_id)
    member = _start(shop, "u-1", group_id)
    _pay(member.order.order_id)
    unpaid = _start(shop, "u-2", group_id)
    expired_at = group_store.get_group(group_id).expires_at + timedelta(seconds=1)

    with clock.frozen_at(expired_at):
        outcomes = race(10, lambda n: group_settlement.handle_timer(GroupTimer(group_id=group_id, due_at=expired_at))
                        if n % 2 else group_settlement.sweep_due_groups())

    assert all(outcome in ("failed", "busy") or isinstance(outcome, dict) for outcome in outcomes), outcomes
    assert group_store.get_group(group_id).status == "failed"
    refunds = sorted((r.out_refund_no, int(r.amount_fen)) for r in RefundRecord.scan(consistent_read=True))
    assert refunds == sorted([(f"GF{leader.order.order_id}", 1990), (f"GF{member.order.order_id}", 1990)])
    assert Counter(m.status for m in group_store.members(group_id)) == {"refunding": 2, "closed": 1}
    assert orders.get_order(unpaid.order.order_id).status == "cancelled"
    assert all(orders.get_order(o.order.order_id).refunds_in_flight for o in (leader, member))
    assert group_store.due_group_ids(expired_at + timedelta(days=1), 10) == []  # settled: off the sweep
    assert counters("s1") == {"available": 28, "allocated": 0, "reserved": 0, "sold": 2, "stock_in": 30}
    # The buyers' counts came back (per_user_limit 1): each may open a group again.
    assert _start(shop, "u-lead").group.status == "opening"


def test_one_helper_cutting_ten_times_at_once_cuts_once(shop):
    bargain, _ = bargains.start_bargain("u-sponsor", StartBargainBody(activity_id=shop["bargain"], sku_id="s2"))
    outcomes = race(10, lambda n: bargains.cut("u-helper", bargain.bargain_id)[1])
    assert outcomes.count(True) == 1 and set(outcomes) <= {True, False, "cut_rate_limited"}
    after = bargain_store.get_bargain(bargain.bargain_id)
    cuts = bargain_store.cuts(bargain.bargain_id)
    assert (after.cuts, len(cuts)) == (1, 1)
    assert after.price_fen == 2990 - cuts[0].amount_fen


def test_helpers_racing_reach_the_floor_exactly_and_no_further(shop):
    bargain, _ = bargains.start_bargain("u-sponsor", StartBargainBody(activity_id=shop["bargain"], sku_id="s2"))
    outcomes = race(10, lambda n: bargains.cut(f"u-helper-{n}", bargain.bargain_id)[1])
    assert outcomes.count(True) == 5 and set(outcomes) - {True} <= {"bargain_at_floor", "bargain_busy"}
    after = bargain_store.get_bargain(bargain.bargain_id)
    cuts = bargain_store.cuts(bargain.bargain_id)
    assert (after.price_fen, after.cuts, len(cuts)) == (990, 5, 5)
    assert sum(cut.amount_fen for cut in cuts) == 2990 - 990
