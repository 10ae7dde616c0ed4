"""Tables `reviews` (one item per reviewed order line) and `review_summaries` (one per product).

A review's id is derived from its order line (`review_id_for(order_id, sku_id)`), so "once per
line" is the put's own condition (`attribute_not_exists(review_id)`), exact under any race.

Visibility (docs/decisions.md, "Members"): a review is `visible` at once; any user may report
it (`reporters`, a set: once per user, counted in `report_count`), which puts it in the
merchant's queue (`reported` = "open", a sparse index key); the merchant hides it or shows it
again (which closes the reports). The product's summary counts visible reviews only, and moves
in the same transaction as every visibility change, conditioned on the status read, so each
review is counted exactly once: never recomputed by reading the reviews.

Indexes (full copies: reviews are small and seldom change; lists answer whole items):
- `visible_by_product` (visible_product_id, created_at), sparse: only visible reviews carry
  the key, so the public list needs no filter (a page is never short of visible reviews);
- `by_status` (status, created_at), `reported` (reported, created_at, sparse) and
  `all_by_time` ("all", created_at): the merchant's lists.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pynamodb.attributes import ListAttribute, MapAttribute, NumberAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.attributes import UTCDateTimeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.storage.base import (ConditionFailed, FullCopyIndex, TableMeta, condition_failure_as, table_name,
                                    update_if)
from chalicelib.storage.orders import OrderRecord

VISIBLE = "visible"
HIDDEN = "hidden"
REPORTS_OPEN = "open"
ALL_REVIEWS = "all"
MAX_REPORTERS = 100  # reports beyond this many are answered but not recorded: the review is queued already
STARS = (1, 2, 3, 4, 5)


def review_id_for(order_id: str, sku_id: str) -> str:
    """The review of one order line: 34 characters of the path-id shape, revealing neither id."""
    return "rv" + hashlib.sha256(f"{order_id}\x00{sku_id}".encode()).hexdigest()[:32]


class VisibleByProduct(FullCopyIndex):
    class Meta(FullCopyIndex.Meta):
        index_name = "visible_by_product"

    visible_product_id = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class ByStatus(FullCopyIndex):
    class Meta(FullCopyIndex.Meta):
        index_name = "by_status"

    status = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class Reported(FullCopyIndex):
    class Meta(FullCopyIndex.Meta):
        index_name = "reported"

    reported = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class AllByTime(FullCopyIndex):
    class Meta(FullCopyIndex.Meta):
        index_name = "all_by_time"

    all_reviews = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class ReviewRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("reviews")

    review_id = UnicodeAttribute(hash_key=True)
    order_id = UnicodeAttribute()
    sku_id = UnicodeAttribute()
    product_id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    nickname = UnicodeAttribute()  # masked when written: the full nickname is never stored here
    specs = MapAttribute(default=dict)  # the line's SKU specs, e.g. {"重量": "5斤"}
    rating = NumberAttribute()
    text = UnicodeAttribute()
    images = ListAttribute(of=UnicodeAttribute, default=list)
    status = UnicodeAttribute()  # visible | hidden
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    reply = MapAttribute(null=True)  # {text, replied_at (ISO)}: the merchant's one reply
    report_count = NumberAttribute(default=0)
    reporters = UnicodeSetAttribute(null=True)
    report_reasons = UnicodeSetAttribute(null=True)
    reported = UnicodeAttribute(null=True)  # "open" while reports await the merchant
    visible_product_id = UnicodeAttribute(null=True)  # = product_id while visible
    all_reviews = UnicodeAttribute(default=ALL_REVIEWS)

    visible_by_product = VisibleByProduct()
    by_status = ByStatus()
    reported_index = Reported()
    all_by_time = AllByTime()


class ReviewSummaryRecord(Model):
    """A product's visible reviews: how many per star and the sum of ratings (ADD only)."""
    class Meta(TableMeta):
        table_name = table_name("review_summaries")

    product_id = UnicodeAttribute(hash_key=True)
    review_count = NumberAttribute(default=0)
    rating_sum = NumberAttribute(default=0)
    star_1 = NumberAttribute(default=0)
    star_2 = NumberAttribute(default=0)
    star_3 = NumberAttribute(default=0)
    star_4 = NumberAttribute(default=0)
    star_5 = NumberAttribute(default=0)


@dataclass(frozen=True)
class Review:
    review_id: str
    order_id: str
    sku_id: str
    product_id: str
    user_id: str
    nickname: str
    specs: dict[str, str]
    rating: int
    text: str
    images: tuple[str, ...]
    status: str
    created_at: datetime
    updated_at: datetime
    reply: dict[str, Any] | None = None  # {text, replied_at}
    report_count: int = 0
    report_reasons: frozenset[str] = frozenset()
    reported: bool = False

    def same_content(self, rating: int, text: str, images: tuple[str, ...]) -> bool:
        return (self.rating, self.text, self.images) == (rating, text, images)


@dataclass(frozen=True)
class Summary:
    product_id: str
    review_count: int = 0
    rating_sum: int = 0
    stars: dict[int, int] = field(default_factory=lambda: {star: 0 for star in STARS})


def _to_review(record: ReviewRecord) -> Review:
    return Review(
        review_id=record.review_id, order_id=record.order_id, sku_id=record.sku_id, product_id=record.product_id,
        user_id=record.user_id, nickname=record.nickname,
        specs={str(k): str(v) for k, v in (record.specs.as_dict() if record.specs else {}).items()},
        rating=int(record.rating), text=record.text, images=tuple(record.images or ()), status=record.status,
        created_at=record.created_at, updated_at=record.updated_at,
        reply=_reply(record.reply), report_count=int(record.report_count or 0),
        report_reasons=frozenset(record.report_reasons or ()), reported=record.reported == REPORTS_OPEN)


def _reply(value: MapAttribute | None) -> dict[str, Any] | None:
    """{text, replied_at (datetime)}: the time is kept in the map as ISO text."""
    if not value:
        return None
    reply = value.as_dict()
    return {"text": str(reply["text"]), "replied_at": datetime.fromisoformat(str(reply["replied_at"]))}


def _to_record(review: Review) -> ReviewRecord:
    return ReviewRecord(
        review.review_id, order_id=review.order_id, sku_id=review.sku_id, product_id=review.product_id,
        user_id=review.user_id, nickname=review.nickname, specs=dict(review.specs), rating=review.rating,
        text=review.text, images=list(review.images), status=review.status, created_at=review.created_at,
        updated_at=review.updated_at, report_count=0,
        visible_product_id=review.product_id if review.status == VISIBLE else None)


def _to_summary(record: ReviewSummaryRecord) -> Summary:
    return Summary(product_id=record.product_id, review_count=int(record.review_count or 0),
                   rating_sum=int(record.rating_sum or 0),
                   stars={star: int(getattr(record, f"star_{star}") or 0) for star in STARS})


def _summary_actions(ratings: list[int], sign: int) -> list:
    """ADD the ratings to (sign 1) or take them from (sign -1) a summary: one action per attribute."""
    record = ReviewSummaryRecord
    actions = [record.review_count.add(sign * len(ratings)), record.rating_sum.add(sign * sum(ratings))]
    for star in sorted(set(ratings)):
        actions.append(getattr(record, f"star_{star}").add(sign * ratings.count(star)))
    return actions


def _transaction() -> TransactWrite:
    return TransactWrite(connection=ReviewRecord._get_connection().connection)


def _codes(error: TransactWriteError) -> list[str | None]:
    return [reason.code if reason else None for reason in error.cancellation_reasons or []]


class OrderChanged(Exception):
    """The order is no longer completed (or no longer this user's): nothing was written."""


class AlreadyReviewed(Exception):
    """Some of the lines have a review already (the put's condition): nothing was written."""


class Contended(Exception):
    """The transaction met another on the same item (TransactionConflict): try again."""


def create_reviews(order_id: str, user_id: str, reviews: list[Review]) -> None:
    """ONE TransactWrite: a ConditionCheck that the order is `completed` and the user's, each
    review put on condition it does not exist, and each product's summary incremented by its
    visible reviews (one Update per product: a transaction may touch an item once).

    Raises OrderChanged, AlreadyReviewed or Contended; nothing is written then."""
    by_product: dict[str, list[int]] = {}
    for review in reviews:
        if review.status == VISIBLE:
            by_product.setdefault(review.product_id, []).append(review.rating)
    try:
        with _transaction() as transaction:
            transaction.condition_check(OrderRecord, order_id, condition=(OrderRecord.status == "completed")
                                        & (OrderRecord.user_id == user_id))
            for review in reviews:
                transaction.save(_to_record(review), condition=ReviewRecord.review_id.does_not_exist())
            for product_id, ratings in by_product.items():
                transaction.update(ReviewSummaryRecord(product_id), actions=_summary_actions(ratings, 1))
    except TransactWriteError as error:
        codes = _codes(error)  # in send order: the check, the puts, the updates
        if codes[:1] == ["ConditionalCheckFailed"]:
            raise OrderChanged() from None
        if "ConditionalCheckFailed" in codes[1:1 + len(reviews)]:
            raise AlreadyReviewed() from None
        if "TransactionConflict" in codes:
            raise Contended() from None
        raise


def set_status(review: Review, new_status: str, now: datetime) -> None:
    """Move a review from the status it was read in to `new_status` and close its reports (the
    same status: only close them), with its product's summary moved when it crosses
    visible/hidden, in one transaction. Raises ConditionFailed when its status changed since it
    was read, Contended when the transaction met another."""
    record = ReviewRecord
    actions = [record.status.set(new_status), record.updated_at.set(now), record.reported.remove()]
    if new_status == VISIBLE:
        actions.append(record.visible_product_id.set(review.product_id))
    else:
        actions.append(record.visible_product_id.remove())
    sign = 0 if new_status == review.status else (1 if new_status == VISIBLE else -1)
    try:
        with _transaction() as transaction:
            transaction.update(ReviewRecord(review.review_id), actions=actions,
                               condition=record.status == review.status)
            if sign:
                transaction.update(ReviewSummaryRecord(review.product_id),
                                   actions=_summary_actions([review.rating], sign))
    except TransactWriteError as error:
        codes = _codes(error)
        if codes[:1] == ["ConditionalCheckFailed"]:
            raise ConditionFailed() from None
        if "TransactionConflict" in codes:
            raise Contended() from None
        raise


def set_reply(review_id: str, text: str, now: datetime) -> Review:
    """Set (or replace) the merchant's reply. Raises ConditionFailed when there is no such review."""
    record = ReviewRecord(review_id)
    with condition_failure_as(ConditionFailed):
        record.update(actions=[ReviewRecord.reply.set({"text": text, "replied_at": now.isoformat()}),
                               ReviewRecord.updated_at.set(now)],
                      condition=ReviewRecord.review_id.exists())
    return _to_review(record)


def report(review_id: str, user_id: str, reason: str, now: datetime) -> bool:
    """Record one user's report of a visible review and queue it for the merchant. False when
    nothing was recorded: not visible (or missing), reported by this user before, or full."""
    record = ReviewRecord
    condition = ((record.status == VISIBLE) & ~record.reporters.contains(user_id)
                 & (record.report_count < MAX_REPORTERS))
    return update_if(ReviewRecord(review_id), [record.reporters.add({user_id}), record.report_reasons.add({reason}),
                                               record.report_count.add(1), record.reported.set(REPORTS_OPEN)],
                     condition)


def get_review(review_id: str, consistent: bool = False) -> Review | None:
    try:
        return _to_review(ReviewRecord.get(review_id, consistent_read=consistent))
    except ReviewRecord.DoesNotExist:
        return None


def get_reviews(review_ids: list[str]) -> dict[str, Review]:
    """The reviews that exist among `review_ids`, read consistently (one BatchGetItem)."""
    if not review_ids:
        return {}
    return {record.review_id: _to_review(record)
            for record in ReviewRecord.batch_get(list(dict.fromkeys(review_ids)), consistent_read=True)}


def get_summary(product_id: str) -> Summary | None:
    try:
        return _to_summary(ReviewSummaryRecord.get(product_id))
    except ReviewSummaryRecord.DoesNotExist:
        return None


def list_visible(product_id: str, limit: int,
                 cursor: dict[str, Any] | None) -> tuple[list[Review], dict[str, Any] | None]:
    """A product's visible reviews, newest first."""
    results = ReviewRecord.visible_by_product.query(product_id, scan_index_forward=False, limit=limit,
                                                    last_evaluated_key=cursor)
    return [_to_review(record) for record in results], results.last_evaluated_key


def list_for_merchant(status: str | None, limit: int,
                      cursor: dict[str, Any] | None) -> tuple[list[Review], dict[str, Any] | None]:
    """Reviews newest first: `visible`, `hidden`, `reported` (open reports), or all (None)."""
    if status == "reported":
        index, partition = ReviewRecord.reported_index, REPORTS_OPEN
    elif status:
        index, partition = ReviewRecord.by_status, status
    else:
        index, partition = ReviewRecord.all_by_time, ALL_REVIEWS
    results = index.query(partition, scan_index_forward=False, limit=limit, last_evaluated_key=cursor)
    return [_to_review(record) for record in results], results.last_evaluated_key
