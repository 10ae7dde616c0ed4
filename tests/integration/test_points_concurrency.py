"""Points under real concurrency, on AWS's DynamoDB Local engine (real threads): orders racing
for the same points, sign-ins racing on one day, and cancellations racing the expiry job."""
from __future__ import annotations

from datetime import date, datetime

import pytest

from chalicelib import clock
from chalicelib.schemas.orders import PlaceOrderBody
from chalicelib.services import checkout
from chalicelib.services import points as service
from chalicelib.storage import orders, stores, transactions
from chalicelib.storage import points as store
from chalicelib.storage.orders import OrderRecord
from chalicelib.storage.points import PointsEntryRecord, PointsExpiryRecord
from tests.integration.concurrency import race
from tests.storage.order_fixtures import counters, make_product

pytestmark = pytest.mark.dynamodb_local

LAST_DAY, LATER = date(2026, 6, 30), date(2026, 9, 30)


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=clock.CHINA_TZ)


@pytest.fixture
def shop(dynamodb_local):
    make_product("p1", skus={"s1": 1_000}, price_fen=2_000)  # 20 yuan: up to 1,000 points an order
    stores.create_store("st1", name="店", address="上海", hours="9-21")


def grant(user_id: str, amount: int, earned: datetime, ref: str) -> None:
    store.apply(service._earning(user_id, f"grant#{ref}", "grant", amount, ref, earned))


def body(token: str, points: int) -> PlaceOrderBody:
    return PlaceOrderBody.model_validate({"items": [{"sku_id": "s1", "quantity": 1}], "delivery_method": "pickup",
                                          "store_id": "st1", "checkout_token": token, "points": points})


def ledger(user_id: str) -> list:
    return list(PointsEntryRecord.query(user_id, consistent_read=True))


def check_ledger(user_id: str) -> store.Account:
    item = store._client().get_item(TableName=store.PointsAccountRecord.Meta.table_name,
                                    Key={"user_id": {"S": user_id}}, ConsistentRead=True).get("Item") or {}
    account = store.account_from_item(user_id, item)
    assert int(item.get("balance", {"N": "0"})["N"]) == sum(account.lots.values()) == sum(
        int(entry.delta) for entry in ledger(user_id))
    assert all(points >= 0 for points in account.lots.values())
    return account


@pytest.mark.parametrize("buyers", [2, 10])
def test_orders_racing_for_the_same_points_place_one_and_the_rest_are_409(shop, buyers):
    grant("u1", 1_000, clock.now(), "start")
    results = race(buyers, lambda n: checkout.place_order("u1", body(f"points-{buyers}-{n}", 600))[0].order_id)
    placed = [result for result in results if result.startswith("o")]
    assert len(placed) == 1, results
    assert sorted(set(results) - set(placed)) == ["insufficient_points"]
    assert OrderRecord.count() == 1 and orders.get_order(placed[0]).points_used == 600
    account = check_ledger("u1")
    assert account.balance(service.today_in_china()) == 400
    assert sorted(int(entry.delta) for entry in ledger("u1")) == [-600, 1_000]
    assert counters("s1")["reserved"] == 1


def test_ten_sign_ins_of_one_user_on_one_day_give_one_entry_of_five_points(shop):
    with clock.frozen_at(at(date(2026, 3, 2), 9)):
        results = race(10, lambda n: service.sign_in("u1"))
    assert all(not isinstance(result, str) for result in results), results  # none gave up (sign_in_busy)
    assert {(result.date, result.points, result.streak) for result in results} == {(date(2026, 3, 2), 5, 1)}
    assert sum(result.signed_in_now for result in results) == 1
    assert [entry.entry_key for entry in ledger("u1")] == ["sign_in#2026-03-02"]
    assert check_ledger("u1").lots == {date(2027, 3, 31): 5}


def test_cancellations_racing_the_expiry_job_at_the_lots_last_day_never_lose_or_double_points(shop):
    """Each buyer holds 1,000 points on their last day and 500 more for later; an order took 600
    of the first. Its cancel, decided at 23:59:30 on the last day, races with expiry runs at
    00:10: whichever lands first, the 1,000 expire exactly once (in one entry or two), the 600
    come back once, and the 500 stay."""
    buyers = 6
    placed = {}
    for n in range(buyers):
        user = f"buyer-{n}"
        grant(user, 1_000, at(date(2025, 6, 10), 12), "june")
        grant(user, 500, at(date(2025, 9, 10), 12), "september")
        with clock.frozen_at(at(LAST_DAY, 20)):
            order, _ = checkout.place_order(user, body(f"last-day-{n}", 600))
        assert order.points_parts == {LAST_DAY: 600}
        placed[user] = order
    decided = at(LAST_DAY, 23, 59, 30)

    def cancel_or_expire(n: int):
        user = f"buyer-{n // 3}"
        if n % 3 == 1:  # the job's work on this account alone (lands sooner than a whole run)
            return service._expire_lot(user, LAST_DAY)
        if n % 3 == 2:
            return service.expire_due()
        transactions.cancel_order_releasing_stock(placed[user], "user", decided,
                                                  extra_updates=service.give_back(placed[user], decided))
        return "cancelled"

    with clock.frozen_at(at(date(2026, 7, 1), 0, 10)):
        outcomes = race(3 * buyers, cancel_or_expire)
        assert outcomes.count("cancelled") == buyers
        service.expire_due()  # the next run: a give-back that landed after its lot expired goes now
        assert service.expire_due() == {"accounts": 0, "points": 0, "more": 0}
    for user, order in placed.items():
        account = check_ledger(user)
        assert account.lots == {LATER: 500}
        entries = ledger(user)
        assert sum(int(entry.delta) for entry in entries if entry.kind == "expire") == -1_000
        assert [int(entry.delta) for entry in entries if entry.kind == "return"] == [600]
        assert [int(entry.delta) for entry in entries if entry.kind == "redeem"] == [-600]
        assert orders.get_order(order.order_id).status == "cancelled"
    marked = [(record.expires_on, record.user_id) for record in PointsExpiryRecord.scan(consistent_read=True)]
    assert sorted(marked) == sorted((LATER.isoformat(), user) for user in placed)
