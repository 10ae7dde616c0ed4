"""The points tables in storage (storage/points.py): every conditional write on the path where
its condition holds and where it fails, on moto and on AWS's DynamoDB Local engine (reserved
words, ADD on missing attributes and transaction conditions are where the engines could differ)."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from chalicelib.storage import points as store
from chalicelib.storage.batch_get import batch_get_raw
from chalicelib.storage.points import (Entry, PointsAccountRecord, PointsChange, PointsEntryRecord,
                                       PointsExpiryRecord)
from tests.storage.conftest import on_engine

NOW = datetime(2026, 3, 1, 4, 0, tzinfo=timezone.utc)
JAN, MAR, JUN = date(2027, 1, 31), date(2027, 3, 31), date(2027, 6, 30)


@pytest.fixture
def db(engine, request):
    on_engine(engine, request, (PointsAccountRecord, PointsEntryRecord, PointsExpiryRecord))


def change(key: str, deltas: dict[date, int], user_id: str = "u1", **kwargs) -> PointsChange:
    kind = key.split("#")[0]
    return PointsChange(user_id, Entry(key, kind, sum(deltas.values()), key, NOW), deltas, **kwargs)


def raw_account(user_id: str = "u1") -> dict | None:
    return store._client().get_item(TableName=PointsAccountRecord.Meta.table_name,
                                    Key={"user_id": {"S": user_id}}, ConsistentRead=True).get("Item")


def balance_attribute(user_id: str = "u1") -> int | None:
    item = raw_account(user_id)
    return int(item["balance"]["N"]) if item and "balance" in item else None


def entry_keys(user_id: str = "u1") -> list[str]:
    return sorted(record.entry_key for record in PointsEntryRecord.query(user_id, consistent_read=True))


def ledger_sum(user_id: str = "u1") -> int:
    return sum(int(record.delta) for record in PointsEntryRecord.query(user_id, consistent_read=True))


def markers(user_id: str = "u1") -> list[date]:
    return sorted(date.fromisoformat(record.expires_on) for record in PointsExpiryRecord.scan(consistent_read=True)
                  if record.user_id == user_id)


def test_an_earning_creates_the_account_its_lot_its_entry_and_the_lots_expiry_marker(db):
    assert raw_account() is None
    store.apply(change("grant#1", {JAN: 100}))
    account = store.get_account("u1")
    assert account.lots == {JAN: 100} and balance_attribute() == 100
    assert markers() == [JAN]
    assert list(store.users_with_lots_expiring(JAN)) == ["u1"]
    entry = store.get_entry("u1", "grant#1")
    assert (entry.kind, entry.delta, entry.ref, entry.at) == ("grant", 100, "grant#1", NOW)
    assert entry.detail == {"lots": {"2027-01-31": 100}}
    store.apply(change("grant#2", {JAN: 50, MAR: 20}))
    assert store.get_account("u1").lots == {JAN: 150, MAR: 20}
    assert balance_attribute() == 170 == ledger_sum()
    assert markers() == [JAN, MAR]


def test_a_take_of_more_than_a_lot_holds_fails_and_writes_neither_the_account_nor_the_entry(db):
    store.apply(change("grant#1", {JAN: 100, MAR: 100}))
    before = raw_account()
    with pytest.raises(store.TransactionCanceled) as refused:
        store.apply(change("redeem#o1", {JAN: -60, MAR: -101}))  # the March lot holds only 100
    assert refused.value.codes[0] == "ConditionalCheckFailed"
    assert raw_account() == before
    assert entry_keys() == ["grant#1"]
    store.apply(change("redeem#o1", {JAN: -100, MAR: -100}))  # exactly what the lots hold: allowed
    assert store.get_account("u1").lots == {JAN: 0, MAR: 0} and balance_attribute() == 0 == ledger_sum()


def test_a_take_from_a_lot_the_account_never_had_fails(db):
    store.apply(change("grant#1", {JAN: 100}))
    with pytest.raises(store.TransactionCanceled):
        store.apply(change("redeem#o1", {MAR: -1}))
    with pytest.raises(store.TransactionCanceled):
        store.apply(change("redeem#o1", {JAN: -1}, user_id="nobody"))  # no account at all
    assert raw_account("nobody") is None and entry_keys("nobody") == []
    assert store.get_account("u1").lots == {JAN: 100}


def test_a_repeated_event_fails_and_changes_nothing_even_with_other_amounts(db):
    store.apply(change("sign_in#2026-03-01", {JAN: 5}))
    before = raw_account()
    for again in (change("sign_in#2026-03-01", {JAN: 5}), change("sign_in#2026-03-01", {MAR: 500})):
        with pytest.raises(store.TransactionCanceled) as refused:
            store.apply(again)
        assert refused.value.codes[1] == "ConditionalCheckFailed"  # the entry's condition
    assert raw_account() == before and markers() == [JAN]
    assert entry_keys() == ["sign_in#2026-03-01"] and store.get_entry("u1", "sign_in#2026-03-01").delta == 5


def test_a_sign_in_is_conditioned_on_the_last_sign_in_as_read(db):
    first = change("sign_in#2026-03-01", {JAN: 5}, sign_in=(date(2026, 3, 1), 1, None))
    store.apply(first)
    assert store.get_account("u1").last_sign_in == date(2026, 3, 1) and store.get_account("u1").streak == 1
    stale = change("sign_in#2026-03-02", {JAN: 5}, sign_in=(date(2026, 3, 2), 1, None))  # read before the first
    with pytest.raises(store.TransactionCanceled):
        store.apply(stale)
    store.apply(change("sign_in#2026-03-02", {JAN: 5}, sign_in=(date(2026, 3, 2), 2, date(2026, 3, 1))))
    account = store.get_account("u1")
    assert (account.last_sign_in, account.streak, account.lots) == (date(2026, 3, 2), 2, {JAN: 10})
    assert balance_attribute() == 10 == ledger_sum()


def test_expiring_a_lot_removes_it_with_its_entry_and_marker(db):
    store.apply(change("grant#1", {JAN: 100, MAR: 40}))
    store.expire_lot("u1", JAN, 100, change("expire#2027-01-31", {JAN: -100}))
    assert store.get_account("u1").lots == {MAR: 40}
    assert "lot_2027-01-31" not in raw_account()
    assert balance_attribute() == 40 == ledger_sum()
    assert markers() == [MAR]
    with pytest.raises(store.TransactionCanceled):  # a second run with the same read: the lot is gone
        store.expire_lot("u1", JAN, 100, change("expire#2027-01-31#again", {JAN: -100}))
    assert balance_attribute() == 40 == ledger_sum()


def test_expiring_refuses_when_the_lot_changed_since_it_was_read(db):
    store.apply(change("grant#1", {JAN: 100}))
    seen = store.get_account("u1").lots[JAN]
    store.apply(change("return#o1", {JAN: 30}))  # a cancelled order's points come back meanwhile
    with pytest.raises(store.TransactionCanceled):
        store.expire_lot("u1", JAN, seen, change("expire#2027-01-31", {JAN: -seen}))
    assert store.get_account("u1").lots == {JAN: 130} and balance_attribute() == 130 == ledger_sum()
    assert entry_keys() == ["grant#1", "return#o1"] and markers() == [JAN]


def test_a_marker_is_forgotten_only_while_its_lot_is_absent(db):
    store.apply(change("grant#1", {JAN: 100}))
    with pytest.raises(store.TransactionCanceled):
        store.forget_marker("u1", JAN)  # the lot is there: its marker stays
    assert markers() == [JAN]
    store.expire_lot("u1", JAN, 100, change("expire#2027-01-31", {JAN: -100}))
    store.apply(change("grant#2", {MAR: 5}))
    store._client().put_item(TableName=PointsExpiryRecord.Meta.table_name,  # a stale marker (a crash, a replay)
                             Item={"expires_on": {"S": JAN.isoformat()}, "user_id": {"S": "u1"}})
    store.forget_marker("u1", JAN)
    store.forget_marker("nobody", JAN)  # no account: nothing to keep
    assert markers() == [MAR]


def test_erasing_removes_the_account_every_entry_and_every_marker(db):
    store.apply(change("grant#1", {JAN: 100, MAR: 5}))
    store.apply(change("redeem#o1", {JAN: -30}))
    store.apply(change("grant#1", {JUN: 1}, user_id="u2"))
    assert store.erase("u1", max_entries=1) == 1  # a retried deletion takes the rest
    assert raw_account() is not None and len(entry_keys()) == 1
    assert store.erase("u1", max_entries=100) == 2  # the last entry and the account
    assert raw_account() is None and entry_keys() == [] and markers() == []
    assert store.list_entries("u1", 10) == []
    assert store.get_account("u2").lots == {JUN: 1} and markers("u2") == [JUN]  # someone else's untouched


def test_the_account_reads_back_from_a_raw_item_and_from_a_cross_table_batch(db):
    store.apply(change("grant#1", {JAN: 100, MAR: 7}, sign_in=(date(2026, 3, 1), 3, None)))
    account = store.account_from_item("u1", raw_account())
    assert account.lots == {JAN: 100, MAR: 7}
    assert (account.last_sign_in, account.streak) == (date(2026, 3, 1), 3)
    assert account.balance(date(2027, 2, 1)) == 7  # the January lot is over by then
    table, key = store.account_key("u1")
    found = batch_get_raw([(table, key), store.account_key("nobody")],
                          PointsAccountRecord._get_connection().connection, consistent=True)
    assert store.account_from_item("u1", found[table][0]) == account
    assert store.account_from_item("nobody", None) == store.get_account("nobody") == store.Account("nobody")


def test_the_history_lists_entries_newest_first_a_page_at_a_time(db):
    for n in range(5):
        at = datetime(2026, 3, 1, 4, n, tzinfo=timezone.utc)
        store.apply(PointsChange("u1", Entry(f"grant#{n}", "grant", n + 1, str(n), at), {JAN: n + 1}))
    first = store.list_entries("u1", 3)
    assert [entry.entry_key for entry in first] == ["grant#4", "grant#3", "grant#2"]
    rest = store.list_entries("u1", 3, before_ms=int(first[-1].at.timestamp() * 1000))
    assert [entry.entry_key for entry in rest] == ["grant#1", "grant#0"]
