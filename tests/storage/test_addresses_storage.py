"""The address book's conditional writes, each on the path where its condition fails (moto).

The storage reads the book, then writes with conditions; a stale read is simulated by
answering the first read with an older state, so the write meets the real one.
"""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib import clock
from chalicelib.storage import addresses
from chalicelib.storage.addresses import BOOK_KEY, AddressFields, AddressRecord

NOW = clock.now()
HOME = AddressFields(name="张三", phone="13800138000", province="广东省", city="深圳市", district="南山区",
                     detail="科技园路1号", postal_code="518000")


def _create(user_id: str = "u1", make_default: bool = False, at: int = 0) -> addresses.Address:
    return addresses.create_address(user_id, HOME, NOW + timedelta(seconds=at), make_default=make_default)


def _book(user_id: str = "u1") -> AddressRecord:
    return AddressRecord.get(user_id, BOOK_KEY, consistent_read=True)


def _defaults(user_id: str = "u1") -> list[str]:
    return [a.address_id for a in addresses.list_addresses(user_id) if a.is_default]


def _stale_first(monkeypatch, name: str, stale_value) -> None:
    """The first call of storage function `name` answers `stale_value`; later calls are real."""
    real = getattr(addresses, name)
    calls = []

    def stale_then_real(*args):
        calls.append(args)
        return stale_value if len(calls) == 1 else real(*args)

    monkeypatch.setattr(addresses, name, stale_then_real)


@pytest.fixture
def few_attempts(monkeypatch):
    monkeypatch.setattr(addresses, "MAX_ATTEMPTS", 3)
    monkeypatch.setattr(addresses.time, "sleep", lambda seconds: None)


def test_the_first_address_becomes_default_and_is_counted(aws):
    first = _create()
    second = _create(at=1)
    assert first.is_default and not second.is_default
    assert _book().address_count == 2 and _book().default_id == first.address_id


def test_a_create_that_read_no_default_while_one_appeared_does_not_become_a_second_default(aws, monkeypatch):
    first = _create()
    _stale_first(monkeypatch, "_get_book", None)  # as if read before `first` was written
    second = _create(at=1)
    assert second.is_default is False
    assert _defaults() == [first.address_id]
    assert _book().address_count == 2


def test_the_counter_refuses_a_21st_address_even_when_the_read_was_stale(aws, monkeypatch):
    for n in range(addresses.MAX_ADDRESSES):
        _create(at=n)
    _stale_first(monkeypatch, "_get_book", None)  # the pre-check passes; the condition must not
    with pytest.raises(addresses.AddressLimitReached):
        _create(at=99)
    assert _book().address_count == addresses.MAX_ADDRESSES
    assert len(addresses.list_addresses("u1")) == addresses.MAX_ADDRESSES


def test_an_address_id_is_never_put_twice(aws, monkeypatch, few_attempts):
    existing = _create()
    monkeypatch.setattr(addresses, "new_address_id", lambda: existing.address_id)
    other = AddressFields(**{**HOME.__dict__, "name": "李四"})
    with pytest.raises(addresses.AddressBookBusy):
        addresses.create_address("u1", other, NOW, make_default=True)
    assert addresses.get_address("u1", existing.address_id).fields.name == "张三"
    assert _book().address_count == 1


def test_replacing_a_missing_address_creates_nothing(aws):
    _create()
    with pytest.raises(addresses.AddressNotFound):
        addresses.replace_address("u1", "aMissing-0000000", HOME, NOW, make_default=True)
    with pytest.raises(addresses.AddressNotFound):
        addresses.replace_address("u2", "aMissing-0000000", HOME, NOW, make_default=False)
    assert [r.address_id for r in AddressRecord.scan()] == [BOOK_KEY, addresses.list_addresses("u1")[0].address_id]


def test_replacing_an_address_deleted_after_it_was_read_is_not_found_and_not_recreated(aws, monkeypatch):
    first, second = _create(), _create(at=1)
    stale = (AddressRecord.get("u1", second.address_id), _book())
    addresses.delete_address("u1", second.address_id)
    _stale_first(monkeypatch, "_get_with_book", stale)
    with pytest.raises(addresses.AddressNotFound):
        addresses.replace_address("u1", second.address_id, HOME, NOW, make_default=True)
    assert _book().default_id == first.address_id
    assert [a.address_id for a in addresses.list_addresses("u1")] == [first.address_id]


def test_another_users_address_cannot_be_replaced_or_deleted(aws):
    mine = _create("u1")
    with pytest.raises(addresses.AddressNotFound):
        addresses.replace_address("u2", mine.address_id, HOME, NOW, make_default=True)
    with pytest.raises(addresses.AddressNotFound):
        addresses.delete_address("u2", mine.address_id)
    assert addresses.get_address("u2", mine.address_id) is None
    assert addresses.get_address("u1", mine.address_id) == mine


def test_the_book_item_is_not_an_address(aws):
    _create()
    assert addresses.get_address("u1", BOOK_KEY) is None
    with pytest.raises(addresses.AddressNotFound):
        addresses.delete_address("u1", BOOK_KEY)
    with pytest.raises(addresses.AddressNotFound):
        addresses.replace_address("u1", BOOK_KEY, HOME, NOW, make_default=False)
    assert _book().address_count == 1


def test_deleting_an_address_that_became_default_after_the_read_still_promotes_another(aws, monkeypatch):
    first, second, third = _create(), _create(at=1), _create(at=2)
    stale = addresses._load("u1")  # `first` is the default here
    addresses.replace_address("u1", second.address_id, HOME, NOW + timedelta(seconds=3), make_default=True)
    _stale_first(monkeypatch, "_load", stale)
    addresses.delete_address("u1", second.address_id)
    # second was the default when deleted: the most recently updated other one takes over
    assert _defaults() == [third.address_id]
    assert _book().address_count == 2


def test_deleting_the_default_whose_successor_vanished_promotes_the_next(aws, monkeypatch):
    first, second, third = _create(), _create(at=1), _create(at=2)
    stale = addresses._load("u1")  # third looks like the successor here
    addresses.delete_address("u1", third.address_id)
    _stale_first(monkeypatch, "_load", stale)
    addresses.delete_address("u1", first.address_id)
    assert _defaults() == [second.address_id]
    assert _book().address_count == 1


def test_deleting_the_last_address_leaves_no_default_and_the_next_one_becomes_default(aws):
    only = _create()
    addresses.delete_address("u1", only.address_id)
    assert _book().address_count == 0 and _book().default_id is None
    assert _create(at=1).is_default


def test_deleting_twice_is_not_found_and_uncounts_once(aws):
    kept, gone = _create(), _create(at=1)
    addresses.delete_address("u1", gone.address_id)
    with pytest.raises(addresses.AddressNotFound):
        addresses.delete_address("u1", gone.address_id)
    assert _book().address_count == 1 and _defaults() == [kept.address_id]


def test_a_book_that_keeps_changing_under_a_writer_ends_in_busy_and_writes_nothing(aws, monkeypatch, few_attempts):
    first = _create()
    # Every read sees no default, every write meets one: the condition fails on every attempt.
    monkeypatch.setattr(addresses, "_get_book", lambda user_id: None)
    with pytest.raises(addresses.AddressBookBusy):
        _create(at=1)
    assert [a.address_id for a in addresses.list_addresses("u1")] == [first.address_id]
    assert _book().address_count == 1
