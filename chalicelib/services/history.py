"""Browsing history: the last 100 products a user viewed (90 days), recorded by the product page.

How a view is recorded, and why so: the public product page (GET /v1/products/{product_id})
records it when the request carries a valid user token, with ONE direct PutItem (storage/
history.py: ~100 bytes, 1 WCU, no read, no index), not an SQS message. A message would cost as
much on the request path (one SendMessage call instead of one PutItem) and then a consumer
invocation and the same PutItem on top. The PutItem runs on a worker thread while the page
reads its SKUs (after the product's GetItem said it is on sale), and the page waits for it
before answering, because a Lambda is frozen once it has answered: so the view adds no round
trip to the page. It is best-effort: a failure is logged and the page answers 200 all the
same, and the table's short timeouts bound how long a failing history table can hold the page.

The token is checked without I/O (signature, expiry, role): the session is not read, so a
logged-out but unexpired token still records views, into its own user's history only. That
saves a GetItem on every product view; a wrong token records nothing and fails nothing.
"""
from __future__ import annotations

import contextvars
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta

from chalicelib import clock
from chalicelib.domain import auth_tokens
from chalicelib.domain.cursors import decode_cursor, encode_cursor
from chalicelib.errors import AppError
from chalicelib.log import get_logger
from chalicelib.schemas.favorites import HistoryPage, ViewedProduct
from chalicelib.settings import get_settings
from chalicelib.storage import favorites, history

log = get_logger(__name__)

HISTORY_SIZE = 100  # views shown: the latest ones
KEEP_VIEWS = timedelta(days=90)  # the TTL of a view
MAX_TOKEN_CHARS = 2048

_executor: ThreadPoolExecutor | None = None  # started on the first view with a token
_executor_lock = threading.Lock()


def viewer_of(token: str | None) -> str | None:
    """The user a bearer token names, if it is well signed, unexpired and a user's; else None."""
    if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        return None
    try:
        claims = auth_tokens.verify_token(token, get_settings().auth_token_secret, clock.epoch_seconds())
    except AppError:
        return None
    return claims.subject if claims.role == "user" else None


def start_recording(token: str | None, product_id: str) -> Future | None:
    """record_view on a worker thread, so that its PutItem overlaps the page's own SKU read (the
    page then costs no extra round trip); None when there is no valid user token. The caller
    waits for it (`finish_recording`) before answering: a Lambda is frozen once it has answered."""
    user_id = viewer_of(token)
    if user_id is None:
        return None
    return _writer().submit(contextvars.copy_context().run, record_view, user_id, product_id)


def finish_recording(pending: Future | None) -> None:
    """Wait for a write start_recording began (the table's timeouts bound the wait); never raises."""
    if pending is not None:
        try:
            pending.result()
        except Exception:  # noqa: BLE001 - record_view logs its own failures; this is a bug guard
            log.exception("recording a view failed")


def _writer() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="view-history")
        return _executor


def record_view(user_id: str, product_id: str) -> bool:
    """Record that the user viewed the product (one PutItem); False when the write failed
    (logged, never raised)."""
    try:
        history.record_view(user_id, product_id, clock.now(), KEEP_VIEWS)
    except Exception as error:  # noqa: BLE001 - a product page never fails because of history
        log.warning("view not recorded", user_id=user_id, product_id=product_id, error=type(error).__name__)
        return False
    return True


def list_history(user_id: str, limit: int, cursor: str | None) -> HistoryPage:
    """A page of the latest 100 views, last viewed first: one Query of the user's views and one
    BatchGetItem of the page's products (a product deleted since is left out)."""
    scope = f"history:{user_id}"
    secret = get_settings().auth_token_secret
    after = decode_cursor(cursor, secret, scope)
    views = history.recent_views(user_id, clock.now(), KEEP_VIEWS, HISTORY_SIZE)
    start = 0
    if after is not None:  # signed by this list for this user (decode_cursor): its shape is ours
        position = (-after["t"], after["p"])
        start = next((i for i, view in enumerate(views) if (-view.viewed_at_ms, view.product_id) > position),
                     len(views))
    page = views[start:start + limit]
    more = start + limit < len(views)
    cards = favorites.product_cards([view.product_id for view in page])
    items = [ViewedProduct(**vars(cards[view.product_id]),
                           viewed_at=clock.to_iso(clock.from_epoch(view.viewed_at_ms / 1000)))
             for view in page if view.product_id in cards]
    next_cursor = encode_cursor({"t": page[-1].viewed_at_ms, "p": page[-1].product_id}, secret, scope) \
        if more and page else None
    return HistoryPage(items=items, next_cursor=next_cursor)
