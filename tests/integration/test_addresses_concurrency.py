"""The address book under real concurrency, on AWS's DynamoDB Local engine: the limit of 20
and the single default hold when many requests of one user race."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.errors import AppError
from chalicelib.services import addresses
from chalicelib.storage.addresses import BOOK_KEY, MAX_ADDRESSES, AddressFields, AddressRecord

pytestmark = pytest.mark.dynamodb_local

HOME = AddressFields(name="张三", phone="13800138000", province="广东省", city="深圳市", district="南山区",
                     detail="科技园路1号")


def _race(count: int, action) -> list[str]:
    """Run action(n) for n in range(count) on `count` threads released together; returns
    "ok" or the error code of each."""
    barrier = threading.Barrier(count)

    def run(n: int) -> str:
        barrier.wait()
        try:
            action(n)
            return "ok"
        except AppError as error:
            return error.code

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def _book(user_id: str) -> AddressRecord:
    return AddressRecord.get(user_id, BOOK_KEY, consistent_read=True)


def _stored(user_id: str) -> list[AddressRecord]:
    return [r for r in AddressRecord.query(user_id, consistent_read=True) if r.address_id != BOOK_KEY]


def test_thirty_concurrent_creates_store_exactly_twenty_with_one_default(dynamodb_local):
    outcomes = _race(30, lambda n: addresses.create_address("u1", HOME, make_default=n % 3 == 0))
    assert outcomes.count("ok") == MAX_ADDRESSES
    assert sorted(set(outcomes)) == ["address_limit_reached", "ok"]
    assert len(_stored("u1")) == MAX_ADDRESSES
    assert _book("u1").address_count == MAX_ADDRESSES
    defaults = [a.address_id for a in addresses.list_addresses("u1") if a.is_default]
    assert len(defaults) == 1 and defaults[0] in {r.address_id for r in _stored("u1")}


def test_ten_concurrent_default_switches_leave_exactly_one_default(dynamodb_local):
    ids = [addresses.create_address("u1", HOME, make_default=False).address_id for _ in range(10)]
    outcomes = _race(10, lambda n: addresses.replace_address("u1", ids[n], HOME, make_default=True))
    assert outcomes == ["ok"] * 10
    defaults = [a.address_id for a in addresses.list_addresses("u1") if a.is_default]
    assert len(defaults) == 1 and defaults[0] in ids
    assert _book("u1").default_id == defaults[0]


def test_concurrent_deletes_and_default_switches_keep_the_book_consistent(dynamodb_local):
    ids = [addresses.create_address("u1", HOME, make_default=False).address_id for _ in range(12)]

    def act(n: int) -> None:  # the even ones are deleted (the default among them), the odd made default
        if n % 2 == 0:
            addresses.delete_address("u1", ids[n])
        else:
            addresses.replace_address("u1", ids[n], HOME, make_default=True)

    assert _race(12, act) == ["ok"] * 12
    remaining = {r.address_id for r in _stored("u1")}
    assert remaining == set(ids[1::2])
    assert _book("u1").address_count == 6
    defaults = [a.address_id for a in addresses.list_addresses("u1") if a.is_default]
    assert len(defaults) == 1 and defaults[0] in remaining


def test_concurrently_deleting_every_address_leaves_an_empty_book_without_default(dynamodb_local):
    ids = [addresses.create_address("u1", HOME, make_default=False).address_id for _ in range(8)]
    assert _race(8, lambda n: addresses.delete_address("u1", ids[n])) == ["ok"] * 8
    assert _stored("u1") == []
    book = _book("u1")
    assert book.address_count == 0 and book.default_id is None
