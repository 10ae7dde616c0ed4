"""The user's address book: list, read, create, replace, delete.

At most 20 addresses, exactly one default while any exist (storage/addresses.py keeps both
under concurrency). Another user's address id is simply not found: 404, never 403.
Nothing here logs: names, phones and addresses are personal data.
"""
from __future__ import annotations

from chalicelib import clock
from chalicelib.errors import Conflict, NotFound
from chalicelib.storage import addresses
from chalicelib.storage.addresses import Address, AddressFields


def _not_found() -> NotFound:
    return NotFound("No such address", code="address_not_found")


def _busy() -> Conflict:
    return Conflict("The address book is being changed by another request; try again", code="address_book_busy")


def list_addresses(user_id: str) -> list[Address]:
    """The default first, then the newest."""
    return sorted(addresses.list_addresses(user_id),
                  key=lambda address: (not address.is_default, -address.created_at.timestamp(), address.address_id))


def get_address(user_id: str, address_id: str) -> Address:
    address = addresses.get_address(user_id, address_id)
    if address is None:
        raise _not_found()
    return address


def create_address(user_id: str, fields: AddressFields, *, make_default: bool) -> Address:
    try:
        return addresses.create_address(user_id, fields, clock.now(), make_default=make_default)
    except addresses.AddressLimitReached:
        raise Conflict(f"An address book holds at most {addresses.MAX_ADDRESSES} addresses; delete one first",
                       code="address_limit_reached") from None
    except addresses.AddressBookBusy:
        raise _busy() from None


def replace_address(user_id: str, address_id: str, fields: AddressFields, *, make_default: bool) -> Address:
    try:
        return addresses.replace_address(user_id, address_id, fields, clock.now(), make_default=make_default)
    except addresses.AddressNotFound:
        raise _not_found() from None
    except addresses.AddressBookBusy:
        raise _busy() from None


def delete_address(user_id: str, address_id: str) -> None:
    try:
        addresses.delete_address(user_id, address_id)
    except addresses.AddressNotFound:
        raise _not_found() from None
    except addresses.AddressBookBusy:
        raise _busy() from None
