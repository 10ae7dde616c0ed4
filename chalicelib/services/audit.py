"""The audit log of admin writes: who (username and role), when, what, on what, before/after.

Recorded by the HTTP layer (chalicelib/api/http.py) for every non-GET `auth="admin"` route,
after its handler returned a success, so a refused or failed write is never recorded as done.
A service may note what changed (chalicelib/audit_context.py: the target, the state before, the
state after, one entry per changed thing, e.g. per order of a batch); without notes the entry is
the route's target (its path id, or the id the reply names) with the reply as `after`. Request
bodies are never stored (a password change would be in one).
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from chalicelib import clock
from chalicelib.audit_context import Notes
from chalicelib.domain import cursors
from chalicelib.settings import get_settings
from chalicelib.storage import audit as store

if TYPE_CHECKING:
    from chalicelib.api.http import ApiRequest

MAX_JSON_CHARS = 32_000  # each of before/after; an item stays far below DynamoDB's 400 KB


def record_request(method: str, path: str, request: ApiRequest, reply_text: str, notes: Notes | None) -> list[str]:
    """Write the entries of one successful admin write; returns their ids."""
    principal = request.principal
    now = clock.now()
    reply = _parsed(reply_text)
    default_target = _target(path, request.params, reply)
    entries = (notes.entries if notes and notes.entries else [None])
    written = []
    for note in entries:
        entry = store.AuditEntry(
            audit_id=store.new_audit_id(now), at=now, actor=principal.subject,
            role=principal.admin_role or "owner", action=(note.action if note and note.action else f"{method} {path}"),
            target=(note.target if note and note.target else default_target),
            before=_text(note.before) if note and note.before is not None else None,
            after=_text(note.after if note and note.after is not None else reply),
            request_id=request.request_id)
        store.put_entry(entry)
        written.append(entry.audit_id)
    return written


def _parsed(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str, sort_keys=True)
    if len(text) > MAX_JSON_CHARS:
        return json.dumps({"truncated": True, "chars": len(text), "head": text[:2000]}, ensure_ascii=False)
    return text


def _target(path: str, params: dict[str, str], reply: Any) -> str:
    """`order:<id>` for /orders/{order_id}/..., `product:<id>` for a create answering product_id,
    else the route's path."""
    if params:
        name, value = list(params.items())[-1]
        return f"{name.removesuffix('_id')}:{value}"
    segment = path.rstrip("/").rsplit("/", 1)[-1]
    singular = segment[:-3] + "y" if segment.endswith("ies") else segment.removesuffix("s")
    key = singular.replace("-", "_")
    if isinstance(reply, dict):
        for name in (f"{key}_id", "username"):
            if isinstance(reply.get(name), str):
                return f"{singular if name != 'username' else 'account'}:{reply[name]}"
    return path


def list_entries(actor: str | None, target: str | None, limit: int,
                 cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    secret, scope = get_settings().auth_token_secret, f"audit:{actor}:{target}"
    page, last_key = store.list_entries(actor, target, limit, cursors.decode_cursor(cursor, secret, scope))
    items = [{"audit_id": e.audit_id, "at": clock.to_iso(e.at), "actor": e.actor, "role": e.role,
              "action": e.action, "target": e.target, "before": _parsed(e.before or ""),
              "after": _parsed(e.after or ""), "request_id": e.request_id} for e in page]
    return items, cursors.encode_cursor(last_key, secret, scope)
