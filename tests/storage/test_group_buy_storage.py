"""The conditional writes of group-buys and bargains, each on the path where its condition fails
(moto): nothing is written and the named failure is raised."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from chalicelib import clock
from chalicelib.storage import bargains, group_buys, orders, transactions
from chalicelib.storage.base import ConditionFailed
from chalicelib.storage.group_buys import Group, Member
from tests.storage.order_fixtures import make_order, make_product, pay

NOW = clock.now()


def run(extra: transactions.ExtraUpdate) -> None:
    """One extra update in a transaction of its own, failing as it would in an order's."""
    try:
        transactions._transact_raw(updates=[extra.update])
    except transactions.TransactWriteError as error:
        transactions.raise_extra_failure(transactions.failed_indexes(error), 0, [extra])
        raise


def group(status="open", paid=1, size=3, expires=NOW + timedelta(hours=1)) -> Group:
    made = Group(group_id="g1", activity_id="a1", sku_id="s1", price_fen=1990, size=size, status=status,
                 paid_count=paid, leader_id="u1", leader_order_id="o1", created_at=NOW, expires_at=expires)
    run(group_buys.create_group(made, status, expires))
    return made


def test_a_group_id_is_created_once(aws):
    made = group()
    with pytest.raises(group_buys.GroupTaken):
        run(group_buys.create_group(made, "open", NOW))


def test_a_place_is_one_per_buyer_and_group_until_its_order_closes(aws):
    member = Member(group_id="g1", user_id="u2", order_id="o2", status="pending", leader=False, joined_at=NOW)
    run(group_buys.add_member(member))
    with pytest.raises(group_buys.AlreadyMember):
        run(group_buys.add_member(replace(member, order_id="o3")))
    with pytest.raises(group_buys.MemberMoved):
        run(group_buys.close_member("g1", "u2", "o-other"))
    run(group_buys.close_member("g1", "u2", "o2"))
    run(group_buys.add_member(replace(member, order_id="o3")))
    assert group_buys.get_member("g1", "u2").order_id == "o3"


def test_the_per_user_count_stops_at_the_limit(aws):
    run(group_buys.take_limit("a1", "u1", 2))
    run(group_buys.take_limit("a1", "u1", 2))
    with pytest.raises(group_buys.LimitReached):
        run(group_buys.take_limit("a1", "u1", 2))
    run(group_buys.give_back_limit("a1", "u1"))
    run(group_buys.take_limit("a1", "u1", 2))


@pytest.mark.parametrize("made, write", [
    (dict(status="open", paid=1), lambda g: group_buys.lead(g, "o1", NOW)),  # not opening any more
    (dict(status="opening", paid=0), lambda g: group_buys.lead(g, "o-not-the-leader", NOW)),
    (dict(status="opening", paid=0, expires=NOW), lambda g: group_buys.lead(g, "o1", NOW)),  # its window ended
    (dict(paid=2), lambda g: group_buys.join(g, NOW)),  # the last place is the filler's
    (dict(status="succeeded", paid=1), lambda g: group_buys.join(g, NOW)),
    (dict(paid=1), lambda g: group_buys.fill(g, NOW)),  # two places left
    (dict(paid=2, expires=NOW), lambda g: group_buys.fill(g, NOW)),
])
def test_a_place_is_taken_only_from_the_group_as_read(aws, made, write):
    g = group(**made)
    with pytest.raises(group_buys.GroupMoved):
        run(write(g))
    assert group_buys.get_group("g1") == replace(g, timer_at=g.expires_at)


def test_failing_a_group_that_moved_writes_nothing(aws):
    g = group(paid=1)
    assert not group_buys.fail(replace(g, paid_count=0), NOW)
    assert group_buys.get_group("g1").status == "open"
    assert group_buys.fail(g, NOW) and not group_buys.fail(g, NOW)
    assert not group_buys.set_timer("g1", None, "open")


def test_an_order_awaiting_its_group_cannot_ship(aws):
    make_product(skus={"s1": 5})
    order = replace(make_order("o1", {"s1": 1}), awaiting_group=True)
    transactions.place_order_reserving_stock(order)
    pay(order)
    timer = (orders.TIMER_AUTO_CONFIRM, NOW + timedelta(days=10))
    with pytest.raises(ConditionFailed):
        orders.ship("o1", NOW, {"carrier": "SF", "tracking_no": "1", "shipped_at": NOW.isoformat()}, timer)
    transactions._transact_raw(updates=[group_buys.release_order("o1").update])
    assert orders.ship("o1", NOW, {"carrier": "SF", "tracking_no": "1", "shipped_at": NOW.isoformat()},
                       timer).status == "shipped"


def test_a_bargain_price_is_held_once_and_only_as_quoted_and_in_time(aws):
    made = bargains.Bargain(bargain_id="b1", activity_id="a1", sku_id="s1", user_id="u1", start_price_fen=2990,
                            floor_price_fen=990, price_fen=2500, helpers_to_floor=5, cuts=1, new_users_only=False,
                            created_at=NOW, expires_at=NOW + timedelta(hours=1))
    bargains.create_bargain(made)
    with pytest.raises(bargains.BargainExists):
        bargains.create_bargain(made)
    for stale, at in ((replace(made, price_fen=2400), NOW), (made, NOW + timedelta(hours=2))):
        with pytest.raises(KeyError):
            run(bargains.hold_for_order(stale, "o1", at, KeyError("refused")))
    run(bargains.hold_for_order(made, "o1", NOW, KeyError("refused")))
    with pytest.raises(KeyError):
        run(bargains.hold_for_order(made, "o2", NOW, KeyError("refused")))  # held: used once
    cut = bargains.Cut(helper_id="h1", amount_fen=100, price_after_fen=2400, created_at=NOW)
    with pytest.raises(bargains.BargainMoved):
        bargains.record_cut(made, cut, NOW)  # no cut once an order holds the price
    run(bargains.release_hold("b1"))
    bargains.record_cut(made, cut, NOW)
    with pytest.raises(bargains.AlreadyCut):
        bargains.record_cut(replace(made, price_fen=2400, cuts=2), replace(cut, price_after_fen=2300), NOW)
    assert (bargains.get_bargain("b1").price_fen, len(bargains.cuts("b1"))) == (2400, 1)
