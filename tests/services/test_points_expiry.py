"""The daily points expiry (services/points.expire_due) on moto: lots whose last day is over go
once, each with one `expire` entry and its marker; nothing else moves; a give-back racing with
it is never lost; a missed run is caught up."""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pytest

from chalicelib import clock
from chalicelib.services import points as service
from chalicelib.storage import points as store
from chalicelib.storage.points import PointsEntryRecord, PointsExpiryRecord
from tests.storage.order_fixtures import make_order

JAN_27, FEB_27, MAR_27 = date(2027, 1, 31), date(2027, 2, 28), date(2027, 3, 31)


def at(day: date, hour: int = 0, minute: int = 10) -> datetime:
    """A moment in Shanghai (the job runs at 00:10 there)."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=clock.CHINA_TZ)


def grant(user_id: str, amount: int, earned_on: date, ref: str) -> None:
    """Points earned on `earned_on` (expiring at the end of that month a year later)."""
    store.apply(service._earning(user_id, f"grant#{ref}", "grant", amount, ref, at(earned_on, 12)))


def apply_extras(extras) -> None:
    """The ExtraUpdates an order's transaction would carry, on their own."""
    store._transact([{"Update": extra.update} for extra in extras])


def entries(user_id: str, kind: str | None = None) -> list:
    return [record for record in PointsEntryRecord.query(user_id, consistent_read=True)
            if kind is None or record.kind == kind]


def check_ledger(user_id: str) -> store.Account:
    """balance attribute == sum of lots == sum of entries, and no lot below zero."""
    item = store._client().get_item(TableName=store.PointsAccountRecord.Meta.table_name,
                                    Key={"user_id": {"S": user_id}}, ConsistentRead=True).get("Item") or {}
    account = store.account_from_item(user_id, item)
    balance = int(item["balance"]["N"]) if "balance" in item else 0
    assert balance == sum(account.lots.values()) == sum(int(record.delta) for record in entries(user_id))
    assert all(points >= 0 for points in account.lots.values())
    return account


def markers() -> list[tuple[date, str]]:
    return sorted((date.fromisoformat(record.expires_on), record.user_id)
                  for record in PointsExpiryRecord.scan(consistent_read=True))


def run_job(day: date) -> dict[str, int]:
    with clock.frozen_at(at(day)):
        return service.expire_due()


def test_lots_past_their_day_expire_once_each_and_a_second_run_changes_nothing(aws):
    grant("u1", 100, date(2026, 1, 10), "a")  # -> 2027-01-31
    grant("u1", 50, date(2026, 1, 20), "b")  # the same lot
    grant("u1", 7, date(2026, 2, 3), "c")  # -> 2027-02-28
    grant("u2", 30, date(2026, 1, 5), "d")
    assert run_job(JAN_27) == {"accounts": 0, "points": 0, "more": 0}  # its last day: still spendable
    assert run_job(date(2027, 2, 1)) == {"accounts": 2, "points": 180, "more": 0}
    assert check_ledger("u1").lots == {FEB_27: 7}
    assert check_ledger("u2").lots == {}
    expired = entries("u1", "expire")
    assert [(int(e.delta), e.ref, e.detail.as_dict()["lots"]) for e in expired] == [(-150, "2027-01-31", {"2027-01-31": -150})]
    assert markers() == [(FEB_27, "u1")]
    assert run_job(date(2027, 2, 1)) == {"accounts": 0, "points": 0, "more": 0}
    assert run_job(date(2027, 2, 2)) == {"accounts": 0, "points": 0, "more": 0}
    assert len(entries("u1", "expire")) == 1 and check_ledger("u1").lots == {FEB_27: 7}


def test_an_empty_lot_goes_without_an_entry_and_a_stale_marker_is_dropped(aws):
    grant("u1", 100, date(2026, 1, 10), "a")
    with clock.frozen_at(at(date(2026, 6, 1), 12)):
        account = store.get_account("u1")
        _, extras = service.redeem("u1", "o1", account, 100, clock.now())  # the whole lot
        apply_extras(extras)
    store._client().put_item(TableName=PointsExpiryRecord.Meta.table_name,  # a lot gone, its marker not
                             Item={"expires_on": {"S": JAN_27.isoformat()}, "user_id": {"S": "ghost"}})
    assert run_job(date(2027, 2, 1)) == {"accounts": 2, "points": 0, "more": 0}
    assert entries("u1", "expire") == [] and check_ledger("u1").lots == {} and markers() == []


def test_a_give_back_between_the_jobs_read_and_its_write_is_expired_too_not_lost(aws, monkeypatch):
    grant("u1", 100, date(2026, 1, 10), "a")
    real_get_account = store.get_account
    reads = []

    def read_then_a_give_back_lands(user_id, consistent=True):
        account = real_get_account(user_id, consistent)
        reads.append(account.lots.get(JAN_27))
        if len(reads) == 1:  # after the job's read, before its write
            store.apply(store.PointsChange("u1", store.Entry("return#o1", "return", 30, "o1", at(JAN_27, 23)),
                                           {JAN_27: 30}))
        return account

    monkeypatch.setattr(store, "get_account", read_then_a_give_back_lands)
    assert run_job(date(2027, 2, 1)) == {"accounts": 1, "points": 130, "more": 0}
    assert reads == [100, 130]  # the conditional write failed on 100, the retry expired 130
    assert [int(e.delta) for e in entries("u1", "expire")] == [-130]
    assert check_ledger("u1").lots == {} and markers() == []


def test_a_give_back_landing_after_the_lot_expired_comes_back_with_its_marker_and_expires_next_run(aws):
    """A cancel decided at 23:59 on the lot's last day (its points still valid) whose write lands
    after the job at 00:10: the points reappear in the lot and the next run expires them."""
    grant("u1", 1_000, date(2026, 1, 10), "a")
    order = make_order("o1", {"s1": 1}, user_id="u1")
    with clock.frozen_at(at(date(2026, 6, 1), 12)):
        parts, extras = service.redeem("u1", "o1", store.get_account("u1"), 600, clock.now())
        apply_extras(extras)
    order = replace(order, points_parts=parts)
    give_back = service.give_back(order, at(JAN_27, 23, 59))  # decided on the last day
    assert run_job(date(2027, 2, 1))["points"] == 400
    apply_extras(give_back)  # ...lands now
    assert check_ledger("u1").lots == {JAN_27: 600} and markers() == [(JAN_27, "u1")]
    assert run_job(date(2027, 2, 1))["points"] == 600  # the same day's next run, or tomorrow's
    assert sorted(int(e.delta) for e in entries("u1", "expire")) == [-600, -400]
    assert check_ledger("u1").lots == {} and markers() == []
    assert sum(int(e.delta) for e in entries("u1")) == 0


def test_a_missed_run_is_caught_up_for_three_months_of_expiry_days(aws):
    grant("u1", 10, date(2026, 1, 10), "jan")  # -> 2027-01-31
    grant("u1", 20, date(2026, 2, 10), "feb")  # -> 2027-02-28
    grant("u1", 40, date(2026, 3, 10), "mar")  # -> 2027-03-31
    grant("u1", 80, date(2026, 4, 10), "apr")  # -> 2027-04-30
    assert run_job(date(2027, 3, 15)) == {"accounts": 2, "points": 30, "more": 0}  # no run since January
    assert check_ledger("u1").lots == {MAR_27: 40, date(2027, 4, 30): 80}
    assert run_job(date(2027, 6, 30))["points"] == 120  # months later: March and April
    assert check_ledger("u1").lots == {}


def test_a_backlog_bigger_than_a_run_is_taken_up_by_the_next_runs(aws):
    for n in range(5):
        grant(f"u{n}", 10 + n, date(2026, 1, 10), str(n))
    with clock.frozen_at(at(date(2027, 2, 1))):
        first = service.expire_due(limit=2)
        second = service.expire_due(limit=2)
        third = service.expire_due(limit=2)
    assert (first["accounts"], first["more"], second["accounts"], second["more"]) == (2, 1, 2, 1)
    assert third == {"accounts": 1, "points": third["points"], "more": 0}
    assert first["points"] + second["points"] + third["points"] == sum(10 + n for n in range(5))
    assert markers() == []
    for n in range(5):
        assert check_ledger(f"u{n}").lots == {} and len(entries(f"u{n}", "expire")) == 1


def test_points_lost_to_expiry_on_cancel_are_not_taken_again_when_a_late_payment_revives_the_order(aws):
    grant("u1", 30, date(2026, 1, 10), "a")  # -> 2027-01-31
    grant("u1", 100, date(2026, 5, 10), "b")  # -> 2027-05-31
    order = make_order("o1", {"s1": 1}, user_id="u1")
    with clock.frozen_at(at(date(2027, 1, 20), 12)):
        parts, extras = service.redeem("u1", "o1", store.get_account("u1"), 100, clock.now())
        apply_extras(extras)
    assert parts == {JAN_27: 30, date(2027, 5, 31): 70}
    order = replace(order, points_parts=parts)
    with clock.frozen_at(at(date(2027, 2, 3), 12)):  # the January lot is over: its 30 are lost
        apply_extras(service.give_back(order, clock.now()))
        assert [int(e.delta) for e in entries("u1", "return")] == [70]
        service.expire_due()
        retake = service.take_again(order, clock.now())
        apply_extras(retake)  # not conditioned on the January lot the job removed
    assert check_ledger("u1").lots == {date(2027, 5, 31): 30}
    assert [int(e.delta) for e in entries("u1", "redeem")] == [-100, -70]


def test_a_revive_whose_points_were_spent_meanwhile_is_refused(aws):
    grant("u1", 100, date(2026, 5, 10), "a")
    order = make_order("o1", {"s1": 1}, user_id="u1")
    with clock.frozen_at(at(date(2026, 6, 1), 12)):
        parts, extras = service.redeem("u1", "o1", store.get_account("u1"), 100, clock.now())
        apply_extras(extras)
        order = replace(order, points_parts=parts)
        apply_extras(service.give_back(order, clock.now()))
        _, spent = service.redeem("u1", "o2", store.get_account("u1"), 50, clock.now())
        apply_extras(spent)
        with pytest.raises(store.TransactionCanceled):
            apply_extras(service.take_again(order, clock.now()))
    assert check_ledger("u1").lots == {date(2027, 5, 31): 50}
