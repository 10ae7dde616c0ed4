"""Table `addresses`: each user's address book, one partition per user (hash key `user_id`).

A partition holds one item per address (range key "a<token>") and one *book* item (range key
"#book", which sorts before every address) with `address_count` and `default_id`:

- The limit of 20 is the book's counter, incremented in the same TransactWrite as the address
  put, on condition `address_count < 20` (or absent). Counting, then putting, would let two
  concurrent creates both see 19; a condition on one item is checked atomically.
- The default is the book's `default_id`, one attribute: "exactly one default" holds by
  construction, since no two addresses carry a flag that concurrent writers could both set.
  Switching it is one TransactWrite: the book's pointer plus the address, on condition that
  the address still exists (so the pointer never names a deleted address).
- A delete decrements the counter in the same TransactWrite; deleting the default moves the
  pointer to the most recently updated other address (checked to still exist) or removes it.

Concurrent transactions on one book are cancelled (TransactionConflict) rather than queued, and
a condition may fail because the book moved since it was read; each operation therefore
re-reads and retries a bounded number of times with jittered backoff, and the re-read decides
between "not found", "limit reached" and "try again".

Names, phones and addresses are personal data: nothing here logs them.
"""
from __future__ import annotations

import random
import re
import secrets
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Iterator

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.storage.base import TableMeta, response_code, table_name
from chalicelib.storage.batch_get import Key, table_key

BOOK_KEY = "#book"
MAX_ADDRESSES = 20
MAX_ATTEMPTS = 12
_ADDRESS_ID = re.compile(r"a[A-Za-z0-9_-]{8,40}")
# Cancellation reasons that a fresh read and another attempt can resolve.
_RETRYABLE_REASONS = {"ConditionalCheckFailed", "TransactionConflict"}


class AddressRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("addresses")

    user_id = UnicodeAttribute(hash_key=True)
    address_id = UnicodeAttribute(range_key=True)  # "a<token>", or BOOK_KEY for the book item
    # Address items (personal data). Not null on addresses; the book item simply lacks them.
    name = UnicodeAttribute()
    phone = UnicodeAttribute()
    province = UnicodeAttribute()
    city = UnicodeAttribute()
    district = UnicodeAttribute()
    detail = UnicodeAttribute()
    postal_code = UnicodeAttribute(null=True)
    lat = NumberAttribute(null=True)  # WGS-84, from wx.chooseLocation: same-city delivery needs them
    lng = NumberAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    # The book item only.
    address_count = NumberAttribute(null=True)
    default_id = UnicodeAttribute(null=True)


@dataclass(frozen=True)
class AddressFields:
    """What the user types: the body of POST and PUT."""
    name: str
    phone: str
    province: str
    city: str
    district: str
    detail: str
    postal_code: str | None = None
    lat: float | None = None
    lng: float | None = None


@dataclass(frozen=True)
class Address:
    address_id: str
    fields: AddressFields
    is_default: bool
    created_at: datetime
    updated_at: datetime


class AddressNotFound(Exception):
    """No such address in this user's book (another user's id is simply not in the partition)."""


class AddressLimitReached(Exception):
    """The book already holds MAX_ADDRESSES addresses."""


class AddressBookBusy(Exception):
    """Every attempt lost a race with other writers to the same book; the caller may try again."""


class _Cancelled(Exception):
    """A transaction was cancelled for a reason that a re-read and retry can resolve."""


def new_address_id() -> str:
    return "a" + secrets.token_urlsafe(12)


def is_address_id(value: str) -> bool:
    """Only ids of our shape reach DynamoDB, so a path of "#book" can never touch the book item."""
    return bool(_ADDRESS_ID.fullmatch(value))


def address_key(user_id: str, address_id: str) -> Key | None:
    """The address's (table, key) for a BatchGetItem spanning tables (checkout reads it with the
    SKUs); None for an id not of our shape (it cannot exist)."""
    return table_key(AddressRecord, user_id, address_id) if is_address_id(address_id) else None


def address_fields_from_raw(item: dict) -> AddressFields:
    """The fields of an address item as a BatchGetItem returned it."""
    record = AddressRecord.from_raw_data(item)
    return AddressFields(name=record.name, phone=record.phone, province=record.province, city=record.city,
                         district=record.district, detail=record.detail, postal_code=record.postal_code,
                         **_location(record))


def list_addresses(user_id: str) -> list[Address]:
    """Every address of the user, in no particular order (one consistent Query)."""
    book, records = _load(user_id)
    default_id = book.default_id if book else None
    return [_to_address(record, record.address_id == default_id) for record in records]


def get_address(user_id: str, address_id: str) -> Address | None:
    if not is_address_id(address_id):
        return None
    record, book = _get_with_book(user_id, address_id)
    if record is None:
        return None
    return _to_address(record, book is not None and book.default_id == address_id)


def create_address(user_id: str, fields: AddressFields, now: datetime, *, make_default: bool) -> Address:
    """Put a new address and count it on the book; the first address becomes the default."""
    address_id = new_address_id()
    record = _new_record(user_id, address_id, fields, now)
    for _ in _attempts():
        book = _get_book(user_id)
        if book is not None and int(book.address_count or 0) >= MAX_ADDRESSES:
            raise AddressLimitReached()
        becomes_default = make_default or book is None or book.default_id is None
        condition = AddressRecord.address_count.does_not_exist() | (AddressRecord.address_count < MAX_ADDRESSES)
        actions = [AddressRecord.address_count.add(1)]
        if becomes_default:
            actions.append(AddressRecord.default_id.set(address_id))
        if not make_default:  # the default seen above must still be the state we act on
            condition &= (AddressRecord.default_id.does_not_exist() if becomes_default
                          else AddressRecord.default_id.exists())
        try:
            with _transaction() as transaction:
                transaction.save(record, condition=AddressRecord.address_id.does_not_exist())
                transaction.update(_book(user_id), actions=actions, condition=condition)
        except _Cancelled:
            continue
        return _to_address(record, becomes_default)
    raise AddressBookBusy()


def replace_address(user_id: str, address_id: str, fields: AddressFields, now: datetime, *,
                    make_default: bool) -> Address:
    """Replace the fields of an existing address; make it the default if asked (never unset)."""
    if not is_address_id(address_id):
        raise AddressNotFound()
    for _ in _attempts():
        current, book = _get_with_book(user_id, address_id)
        if current is None:
            raise AddressNotFound()
        try:
            with _transaction() as transaction:
                transaction.update(AddressRecord(user_id, address_id), actions=_field_actions(fields, now),
                                   condition=AddressRecord.address_id.exists())
                if make_default:
                    transaction.update(_book(user_id), actions=[AddressRecord.default_id.set(address_id)],
                                       condition=AddressRecord.address_count > 0)
        except _Cancelled:
            continue
        is_default = make_default or (book is not None and book.default_id == address_id)
        return Address(address_id, fields, is_default, current.created_at, now)
    raise AddressBookBusy()


def delete_address(user_id: str, address_id: str) -> None:
    """Delete an address and uncount it; a deleted default passes to the most recently updated other."""
    if not is_address_id(address_id):
        raise AddressNotFound()
    for _ in _attempts():
        book, records = _load(user_id)
        if book is None or not any(record.address_id == address_id for record in records):
            raise AddressNotFound()
        actions = [AddressRecord.address_count.add(-1)]
        successor = None
        if book.default_id == address_id:
            successor = _most_recently_updated([r for r in records if r.address_id != address_id])
            actions.append(AddressRecord.default_id.set(successor.address_id) if successor
                           else AddressRecord.default_id.remove())
            default_condition = AddressRecord.default_id == address_id
        else:  # it must not have become the default since the read, or no one would be promoted
            default_condition = AddressRecord.default_id.does_not_exist() | (AddressRecord.default_id != address_id)
        try:
            with _transaction() as transaction:
                transaction.delete(AddressRecord(user_id, address_id), condition=AddressRecord.address_id.exists())
                transaction.update(_book(user_id), actions=actions,
                                   condition=(AddressRecord.address_count > 0) & default_condition)
                if successor is not None:
                    transaction.condition_check(AddressRecord, user_id, successor.address_id,
                                                condition=AddressRecord.address_id.exists())
        except _Cancelled:
            continue
        return
    raise AddressBookBusy()


def _most_recently_updated(records: list[AddressRecord]) -> AddressRecord | None:
    return max(records, key=lambda record: (record.updated_at, record.address_id), default=None)


def _attempts() -> Iterator[int]:
    """MAX_ATTEMPTS tries, with full-jitter exponential backoff (10 ms doubling, capped at 200 ms)
    between them, so writers racing on one book spread out instead of colliding again."""
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            time.sleep(random.uniform(0, min(0.2, 0.01 * 2 ** attempt)))
        yield attempt


@contextmanager
def _transaction() -> Iterator[TransactWrite]:
    """A TransactWrite on the model's own connection (same client, endpoint and timeouts, and reset
    with the model's). The client request token makes botocore's own retries of it idempotent."""
    connection = AddressRecord._get_connection().connection
    try:
        with TransactWrite(connection=connection, client_request_token=str(uuid.uuid4())) as transaction:
            yield transaction
    except TransactWriteError as error:
        reasons = {reason.code for reason in error.cancellation_reasons if reason is not None}
        if response_code(error) == "TransactionCanceledException" and reasons <= _RETRYABLE_REASONS:
            raise _Cancelled() from error
        raise


def _book(user_id: str) -> AddressRecord:
    return AddressRecord(user_id, BOOK_KEY)


def _get_book(user_id: str) -> AddressRecord | None:
    try:
        return AddressRecord.get(user_id, BOOK_KEY, consistent_read=True)
    except AddressRecord.DoesNotExist:
        return None


def _get_with_book(user_id: str, address_id: str) -> tuple[AddressRecord | None, AddressRecord | None]:
    """The address and the book in one consistent BatchGetItem."""
    found = {record.address_id: record
             for record in AddressRecord.batch_get([(user_id, address_id), (user_id, BOOK_KEY)],
                                                   consistent_read=True)}
    return found.get(address_id), found.get(BOOK_KEY)


def _load(user_id: str) -> tuple[AddressRecord | None, list[AddressRecord]]:
    """The book and every address of the user: one consistent Query over at most 21 small items."""
    book, records = None, []
    for record in AddressRecord.query(user_id, consistent_read=True):
        if record.address_id == BOOK_KEY:
            book = record
        else:
            records.append(record)
    return book, records


def _new_record(user_id: str, address_id: str, fields: AddressFields, now: datetime) -> AddressRecord:
    return AddressRecord(user_id, address_id, name=fields.name, phone=fields.phone, province=fields.province,
                         city=fields.city, district=fields.district, detail=fields.detail,
                         postal_code=fields.postal_code, lat=fields.lat, lng=fields.lng, created_at=now, updated_at=now)


def _field_actions(fields: AddressFields, now: datetime) -> list:
    """A PUT replaces every field, so an omitted postal code is removed, not kept."""
    return [
        AddressRecord.name.set(fields.name), AddressRecord.phone.set(fields.phone),
        AddressRecord.province.set(fields.province), AddressRecord.city.set(fields.city),
        AddressRecord.district.set(fields.district), AddressRecord.detail.set(fields.detail),
        AddressRecord.postal_code.set(fields.postal_code) if fields.postal_code is not None
        else AddressRecord.postal_code.remove(),
        *([AddressRecord.lat.set(fields.lat), AddressRecord.lng.set(fields.lng)] if fields.lat is not None
          else [AddressRecord.lat.remove(), AddressRecord.lng.remove()]),
        AddressRecord.updated_at.set(now),
    ]


def _location(record: AddressRecord) -> dict:
    if record.lat is None or record.lng is None:
        return {}
    return {"lat": float(record.lat), "lng": float(record.lng)}


def _to_address(record: AddressRecord, is_default: bool) -> Address:
    fields = AddressFields(name=record.name, phone=record.phone, province=record.province, city=record.city,
                           district=record.district, detail=record.detail, postal_code=record.postal_code,
                         **_location(record))
    return Address(record.address_id, fields, is_default, record.created_at, record.updated_at)
