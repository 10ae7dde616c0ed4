"""Reviews racing on AWS's DynamoDB Local engine: one review per order line, and the product's
rating summary counting every review exactly once, under real concurrent transactions."""
from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from chalicelib.services import reviews as review_service
from chalicelib.services.reviews import LineReview
from chalicelib.storage import reviews
from chalicelib.storage.orders import to_record
from chalicelib.storage.reviews import ReviewRecord
from tests.integration.concurrency import race
from tests.storage.order_fixtures import make_order

pytestmark = pytest.mark.dynamodb_local


def completed_order(order_id: str, user_id: str = "u1") -> None:
    order = make_order(order_id, {"s1": 1}, user_id=user_id, product_id="p1")
    to_record(dataclasses.replace(order, status="completed")).save()


def summary() -> reviews.Summary:
    record = reviews.ReviewSummaryRecord.get("p1", consistent_read=True)
    return reviews._to_summary(record)


def test_ten_concurrent_reviews_of_one_line_write_exactly_one(dynamodb_local):
    completed_order("o-1")

    def review(n: int) -> str:
        written, created = review_service.review_order("u1", "o-1", [LineReview("s1", n % 5 + 1, f"第{n}次")])
        return "created" if created else "replayed"

    outcomes = Counter(race(10, review))

    assert outcomes["created"] == 1 and outcomes["already_reviewed"] == 9, outcomes
    assert ReviewRecord.count(consistent_read=True) == 1
    stored = reviews.get_review(reviews.review_id_for("o-1", "s1"), consistent=True)
    assert summary().review_count == 1 and summary().rating_sum == stored.rating
    assert summary().stars[stored.rating] == 1


def test_identical_retries_racing_answer_the_one_review(dynamodb_local):
    completed_order("o-1")

    outcomes = race(10, lambda n: review_service.review_order("u1", "o-1", [LineReview("s1", 5, "好")])[1])

    assert Counter(outcomes) == {True: 1, False: 9}, outcomes
    assert summary().review_count == 1 and summary().stars[5] == 1


def test_ten_orders_reviewing_one_product_at_once_are_all_counted(dynamodb_local):
    for n in range(10):
        completed_order(f"o-{n}", user_id=f"u{n}")

    outcomes = race(10, lambda n: review_service.review_order(f"u{n}", f"o-{n}",
                                                              [LineReview("s1", n % 5 + 1, "好")])[1])

    assert outcomes == [True] * 10, outcomes
    counted = summary()
    assert counted.review_count == 10 and counted.rating_sum == 2 * (1 + 2 + 3 + 4 + 5)
    assert counted.stars == {star: 2 for star in range(1, 6)}


def test_racing_hides_and_shows_keep_the_summary_equal_to_the_visible_reviews(dynamodb_local):
    completed_order("o-1")
    review_service.review_order("u1", "o-1", [LineReview("s1", 4, "好")])
    review_id = reviews.review_id_for("o-1", "s1")

    race(10, lambda n: review_service.hide_review(review_id).status)
    assert summary().review_count == 0 and summary().stars[4] == 0

    race(10, lambda n: (review_service.show_review if n % 2 else review_service.hide_review)(review_id).status)
    visible = reviews.get_review(review_id, consistent=True).status == reviews.VISIBLE
    assert summary().review_count == int(visible) and summary().rating_sum == 4 * int(visible)
