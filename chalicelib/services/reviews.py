"""Reviews of completed orders' lines, their moderation, and each product's rating summary.

Rules (POST /v1/orders/{order_id}/reviews {lines: [{sku_id, rating, text, images?}]}):
- someone else's order (or none) is 404 order_not_found; an order that is not `completed` is 409
  order_not_completed; a sku_id that is not a line of the order is 400 line_not_in_order;
- once per line: the review's id is derived from (order, sku), its put is conditioned on not
  existing, in ONE TransactWrite with a ConditionCheck that the order is still `completed` and
  the user's, and the product summaries' increments. The order is read consistently first (to
  tell 404 from 409 and find the lines' products); the ConditionCheck makes the write exact
  even if the order moved since (e.g. a refund);
- a line reviewed before with other content is 409 already_reviewed and nothing is written; the
  identical review again (a retry after a lost answer) is answered with the stored one, 200
  when nothing was new, 201 when some line was written;
- reviews are visible at once; any user may report one (once per user); the merchant hides it
  or shows it again (closing its reports); the summary moves with visibility, exactly once,
  in the transaction that changes the status read (storage/reviews.py).
"""
from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass
from datetime import datetime

from chalicelib import clock
from chalicelib.domain import cursors
from chalicelib.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from chalicelib.log import get_logger
from chalicelib.services.order_reads import get_user_order
from chalicelib.settings import get_settings
from chalicelib.storage import orders, products, reviews, users
from chalicelib.storage.base import ConditionFailed
from chalicelib.storage.reviews import HIDDEN, VISIBLE, Review, Summary

log = get_logger(__name__)

CREATE_ATTEMPTS = 8  # concurrent reviews of one product contend on its summary item
MODERATION_ATTEMPTS = 4
ANONYMOUS = "匿名用户"


class ReviewNotFound(NotFound):
    code = "review_not_found"
    message = "No such review"


@dataclass(frozen=True)
class LineReview:
    sku_id: str
    rating: int
    text: str
    images: tuple[str, ...] = ()


def mask_nickname(nickname: str | None) -> str:
    """张三丰 -> 张***丰, 张三 -> 张***, none -> 匿名用户: enough to recognise oneself, not to identify."""
    name = (nickname or "").strip()
    if not name:
        return ANONYMOUS
    return name[0] + "***" + (name[-1] if len(name) > 2 else "")


def average_tenths(summary: Summary) -> int | None:
    """The mean rating in tenths, rounded half up, in integers (47 is 4.7); None without reviews."""
    if summary.review_count <= 0:
        return None
    return (summary.rating_sum * 20 + summary.review_count) // (2 * summary.review_count)


# --- the buyer ----------------------------------------------------------------------------------

def review_order(user_id: str, order_id: str, lines: list[LineReview]) -> tuple[list[Review], bool]:
    """Review lines of the user's completed order; (the reviews in the order asked, whether any
    was written now). Raises 404 order_not_found, 409 order_not_completed / already_reviewed,
    400 line_not_in_order, 503 when contention outlasts the retries."""
    order = _completed_order(user_id, order_id)
    order_lines = {line.sku_id: line for line in order.lines}
    strangers = [line.sku_id for line in lines if line.sku_id not in order_lines]
    if strangers:
        raise BadRequest("Only the order's own lines can be reviewed", code="line_not_in_order",
                         details=[{"field": "lines.sku_id", "message": f"{sku_id} is not in the order"}
                                  for sku_id in strangers])
    ids, nickname = [reviews.review_id_for(order_id, line.sku_id) for line in lines], None
    for attempt in range(CREATE_ATTEMPTS):
        existing = reviews.get_reviews(ids)
        _refuse_changed(lines, ids, existing)
        if all(review_id in existing for review_id in ids):  # an identical retry: nothing to write
            _photo_points(user_id, order_id, lines)  # heals a crash between the review and its points
            return [existing[review_id] for review_id in ids], False
        if nickname is None:  # read once, and only when something is written
            user = users.get_user(user_id)
            nickname = mask_nickname(user.nickname if user else None)
        now = clock.now()
        new = {review_id: _new_review(order_id, user_id, nickname, order_lines[line.sku_id], line, now)
               for review_id, line in zip(ids, lines) if review_id not in existing}
        try:
            reviews.create_reviews(order_id, user_id, list(new.values()))
        except reviews.OrderChanged:
            _completed_order(user_id, order_id)  # 404 or 409 now, if that is what moved
            continue  # completed and theirs after all: a moment's race, try again
        except reviews.AlreadyReviewed:
            continue  # a concurrent request wrote some line: the next read decides
        except reviews.Contended:
            _backoff(attempt)
            continue
        log.info("order lines reviewed", order_id=order_id, count=len(new))
        _photo_points(user_id, order_id, lines)
        return [new.get(review_id) or existing[review_id] for review_id in ids], True
    log.warning("review gave up after retries", order_id=order_id)
    raise ServiceUnavailable("Many reviews are being written right now; try again")


def _photo_points(user_id: str, order_id: str, lines: list[LineReview]) -> None:
    """Points for each reviewed line with photos, once per line (the ledger entry's key makes a
    repeat give nothing). Never fails the review: a lost award is logged, and the buyer's retry
    of the same review gives it."""
    from chalicelib.services import points

    for line in lines:
        if line.images:
            try:
                points.earn_for_review_photos(user_id, order_id, line.sku_id)
            except Exception:  # noqa: BLE001 - see docstring
                log.exception("review photo points not given", order_id=order_id, sku_id=line.sku_id)


def _completed_order(user_id: str, order_id: str) -> orders.Order:
    order = get_user_order(user_id, order_id)  # someone else's order is 404, never 403
    if order.status != "completed":
        raise Conflict("Only a completed order can be reviewed (confirm receipt first)", code="order_not_completed")
    return order


def _refuse_changed(lines: list[LineReview], ids: list[str], existing: dict[str, Review]) -> None:
    changed = [line.sku_id for review_id, line in zip(ids, lines)
               if review_id in existing and not existing[review_id].same_content(line.rating, line.text, line.images)]
    if changed:
        raise Conflict("Each line of an order is reviewed once", code="already_reviewed",
                       details=[{"field": "lines.sku_id", "message": f"{sku_id} is reviewed already"}
                                for sku_id in changed])


def _new_review(order_id: str, user_id: str, nickname: str, order_line: orders.OrderLine, line: LineReview,
                now: datetime) -> Review:
    return Review(review_id=reviews.review_id_for(order_id, line.sku_id), order_id=order_id, sku_id=line.sku_id,
                  product_id=order_line.product_id, user_id=user_id, nickname=nickname,
                  specs=dict(order_line.specs), rating=line.rating, text=line.text, images=tuple(line.images),
                  status=VISIBLE, created_at=now, updated_at=now)


def report_review(user_id: str, review_id: str, reason: str) -> None:
    """Report a visible review to the merchant (once per user; again changes nothing). A review
    that is hidden or does not exist is 404 review_not_found."""
    if reviews.report(review_id, user_id, reason, clock.now()):
        log.info("review reported", review_id=review_id, reason=reason)
        return
    review = reviews.get_review(review_id, consistent=True)
    if review is None or review.status != VISIBLE:
        raise ReviewNotFound()


# --- the public ---------------------------------------------------------------------------------

def product_reviews(product_id: str, limit: int,
                    cursor: str | None) -> tuple[Summary, list[Review], str | None]:
    """A product's rating summary and a page of its visible reviews, newest first."""
    summary = reviews.get_summary(product_id)
    if summary is None:  # never reviewed: a product that does not exist is 404
        try:
            products.get_product(product_id)
        except products.ProductMissing:
            raise NotFound("No such product", code="product_not_found") from None
        summary = Summary(product_id=product_id)
    secret, scope = get_settings().auth_token_secret, f"reviews:{product_id}"
    page, last_key = reviews.list_visible(product_id, limit, cursors.decode_cursor(cursor, secret, scope))
    return summary, page, cursors.encode_cursor(last_key, secret, scope)


# --- the merchant -------------------------------------------------------------------------------

def list_reviews(status: str | None, limit: int, cursor: str | None) -> tuple[list[Review], str | None]:
    secret, scope = get_settings().auth_token_secret, f"admin-reviews:{status or 'all'}"
    page, last_key = reviews.list_for_merchant(status, limit, cursors.decode_cursor(cursor, secret, scope))
    return page, cursors.encode_cursor(last_key, secret, scope)


def reply_to_review(review_id: str, text: str) -> Review:
    """Set the merchant's one reply (a new one replaces it)."""
    try:
        return reviews.set_reply(review_id, text, clock.now())
    except ConditionFailed:
        raise ReviewNotFound() from None


def hide_review(review_id: str) -> Review:
    """-> hidden (its reports closed); the summary loses it if it was visible. Hidden: unchanged."""
    return _moderate(review_id, HIDDEN)


def show_review(review_id: str) -> Review:
    """-> visible, closing its reports; the summary gains it if it was hidden. Visible with no
    open reports: unchanged."""
    return _moderate(review_id, VISIBLE)


def _moderate(review_id: str, target: str) -> Review:
    for attempt in range(MODERATION_ATTEMPTS):
        review = reviews.get_review(review_id, consistent=True)
        if review is None:
            raise ReviewNotFound()
        if review.status == target and not review.reported:
            return review
        now = clock.now()
        try:
            reviews.set_status(review, target, now)
        except ConditionFailed:
            continue  # moved meanwhile: read it again
        except reviews.Contended:
            _backoff(attempt)
            continue
        log.info("review moderated", review_id=review_id, status=target, was=review.status)
        return dataclasses.replace(review, status=target, reported=False, updated_at=now)
    raise ServiceUnavailable("The review is being changed right now; try again")


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.5, 0.02 * 2 ** attempt)))
