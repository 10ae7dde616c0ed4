"""The merchant's pickup stores: list (hidden ones too), create, edit, hide (storage/stores.py).
A hidden store leaves the buyers' list, same-city dispatch and new pickups; orders that name it
keep it."""
from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any

from chalicelib import audit_context
from chalicelib.errors import Conflict, NotFound
from chalicelib.storage import stores
from chalicelib.storage.base import ConditionFailed


def _view(store: stores.Store) -> dict[str, Any]:
    view = asdict(store)
    view.pop("version", None)
    return view


def list_stores() -> list[dict[str, Any]]:
    return [_view(store) for store in stores.list_stores(include_hidden=True)]


def create_store(fields: dict[str, Any]) -> dict[str, Any]:
    store_id = f"st-{uuid.uuid4().hex[:16]}"
    try:
        stores.create_store(store_id, **fields)
    except ConditionFailed:
        raise Conflict("Could not allocate an id; try again", code="id_conflict") from None
    return _view(stores.Store(store_id=store_id, **fields))


def update_store(store_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    current = stores.get_store(store_id, consistent=True)
    if current is None:
        raise NotFound("No such store", code="store_not_found")
    try:
        changed = stores.update_store(current, changes)
    except ConditionFailed:
        raise Conflict("The store changed meanwhile; read it again", code="concurrent_update") from None
    audit_context.note(f"store:{store_id}", before=_view(current), after=_view(changed))
    return _view(changed)
