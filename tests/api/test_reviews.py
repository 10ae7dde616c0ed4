"""Reviews (issue 14 item 4): once per line of a completed order, the rating summary kept
incrementally, reports, and the merchant's reply, hide and show."""
from __future__ import annotations

import uuid

import pytest

from chalicelib.services.reviews import average_tenths, mask_nickname
from chalicelib.storage import orders, reviews
from chalicelib.storage.reviews import ReviewRecord, ReviewSummaryRecord, Summary, review_id_for
from tests.api.helpers import admin_token, assert_envelope, call, log_in
from tests.storage.order_fixtures import pay

FIVE = {"sku_id": "sku-fuji-5", "rating": 5, "text": "很甜，很新鲜", "images": ["reviews/2026/a1.jpg"]}


@pytest.fixture
def shop(client, demo_store):
    token, _ = log_in(client)
    return token, admin_token(client)


def place(client, token, skus=("sku-fuji-5",)) -> dict:
    status, order, _ = call(client, "POST", "/v1/orders", {
        "items": [{"sku_id": sku, "quantity": 1} for sku in skus], "delivery_method": "pickup",
        "store_id": "store-xuhui", "checkout_token": uuid.uuid4().hex}, token=token)
    assert status == 201, order
    return order


def complete(client, token, admin, skus=("sku-fuji-5",)) -> str:
    """An order placed, paid, shipped and received through the routes: `completed`."""
    order_id = place(client, token, skus)["order_id"]
    pay(orders.get_order(order_id))
    assert call(client, "POST", f"/v1/admin/orders/{order_id}/ship",
                {"carrier": "顺丰速运", "tracking_no": "SF1234567890"}, token=admin)[0] == 200
    status, done, _ = call(client, "POST", f"/v1/orders/{order_id}/confirm-receipt", token=token)
    assert status == 200 and done["status"] == "completed", done
    return order_id


def review(client, token, order_id, *lines):
    return call(client, "POST", f"/v1/orders/{order_id}/reviews", {"lines": list(lines or [FIVE])}, token=token)


def product_page(client, product_id="p-fuji", query=""):
    status, page, _ = call(client, "GET", f"/v1/products/{product_id}/reviews{query}")
    assert status == 200, page
    return page


def summary(client, product_id="p-fuji") -> dict:
    return product_page(client, product_id)["summary"]


# ------------------------------------------------------------------------------ writing


def test_a_completed_orders_lines_are_reviewed_and_counted_in_the_summary(client, shop):
    token, admin = shop
    call(client, "PATCH", "/v1/me", {"nickname": "张三丰"}, token=token)
    order_id = complete(client, token, admin, ("sku-fuji-5", "sku-fuji-10"))
    status, body, _ = review(client, token, order_id, FIVE,
                             {"sku_id": "sku-fuji-10", "rating": 4, "text": "还不错"})
    assert status == 201, body
    assert [item["sku_id"] for item in body["items"]] == ["sku-fuji-5", "sku-fuji-10"]
    first = body["items"][0]
    assert first["status"] == "visible" and first["nickname"] == "张***丰" and first["product_id"] == "p-fuji"
    assert first["images"] == ["reviews/2026/a1.jpg"] and first["specs"] == {"重量": "5斤装"}
    assert first["reply"] is None
    assert first["review_id"] == review_id_for(order_id, "sku-fuji-5")
    page = product_page(client)
    assert page["summary"] == {"review_count": 2, "average": 4.5, "stars": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 1}}
    assert {item["text"] for item in page["items"]} == {"很甜，很新鲜", "还不错"}
    assert not {"user_id", "order_id", "status"} & set(page["items"][0])  # the public sees no one's ids


@pytest.mark.parametrize("stage", ["pending_payment", "paid", "shipped"])
def test_an_order_that_is_not_completed_is_409_and_nothing_is_written(client, shop, stage):
    token, admin = shop
    order_id = place(client, token)["order_id"]
    if stage != "pending_payment":
        pay(orders.get_order(order_id))
    if stage == "shipped":
        call(client, "POST", f"/v1/admin/orders/{order_id}/ship",
             {"carrier": "顺丰速运", "tracking_no": "SF1234567890"}, token=admin)
    assert orders.get_order(order_id).status == stage
    status, error, _ = review(client, token, order_id)
    assert status == 409
    assert_envelope(error, "order_not_completed")
    assert ReviewRecord.count() == 0 and ReviewSummaryRecord.count() == 0


def test_someone_elses_order_and_an_unknown_one_are_404(client, shop):
    token, admin = shop
    order_id = complete(client, token, admin)
    bob, _ = log_in(client, "bob-1")
    for target in (order_id, "o-missing"):
        status, error, _ = review(client, bob, target)
        assert status == 404
        assert_envelope(error, "order_not_found")
    assert ReviewRecord.count() == 0


def test_a_line_is_reviewed_once_an_identical_retry_answers_the_review(client, shop):
    token, admin = shop
    order_id = complete(client, token, admin, ("sku-fuji-5", "sku-fuji-10"))
    assert review(client, token, order_id)[0] == 201
    status, again, _ = review(client, token, order_id)  # a retry after a lost answer
    assert status == 200 and again["items"][0]["review_id"] == review_id_for(order_id, "sku-fuji-5")
    status, error, _ = review(client, token, order_id, {**FIVE, "rating": 1, "text": "改主意了"})
    assert status == 409
    assert_envelope(error, "already_reviewed")
    assert error["Details"] == [{"field": "lines.sku_id", "message": "sku-fuji-5 is reviewed already"}]
    # a changed line refuses the whole request: the new line in it is not written either
    other = {"sku_id": "sku-fuji-10", "rating": 3, "text": "一般"}
    assert review(client, token, order_id, {**FIVE, "text": "变了"}, other)[0] == 409
    assert ReviewRecord.count() == 1
    # the identical line with a new one: the new one is written
    status, body, _ = review(client, token, order_id, FIVE, other)
    assert status == 201 and [item["rating"] for item in body["items"]] == [5, 3]
    assert summary(client)["review_count"] == 2 and ReviewRecord.count() == 2


def test_a_sku_that_is_not_a_line_of_the_order_is_400(client, shop):
    token, admin = shop
    order_id = complete(client, token, admin)
    status, error, _ = review(client, token, order_id, FIVE, {"sku_id": "sku-navel-5", "rating": 5, "text": "好"})
    assert status == 400
    assert_envelope(error, "line_not_in_order")
    assert ReviewRecord.count() == 0


@pytest.mark.parametrize("line", [
    {**FIVE, "rating": 0}, {**FIVE, "rating": 6}, {**FIVE, "rating": 4.5}, {**FIVE, "rating": "5"},
    {**FIVE, "text": ""}, {**FIVE, "text": "   "}, {**FIVE, "text": "好" * 501},
    {**FIVE, "images": [f"reviews/{n}.jpg" for n in range(10)]}, {**FIVE, "images": ["../etc/passwd"]},
    {**FIVE, "images": ["reviews/a..b.jpg"]}, {**FIVE, "images": ["/abs.jpg"]}, {**FIVE, "images": [3]},
    {**FIVE, "images": ["a" * 201]}, {"sku_id": "sku-fuji-5", "rating": 5}, {**FIVE, "extra": 1},
])
def test_bad_lines_are_400_validation_errors(client, shop, line):
    token, admin = shop
    order_id = complete(client, token, admin)
    status, error, _ = review(client, token, order_id, line)
    assert status == 400, error
    assert_envelope(error, "validation_error")


def test_the_limits_themselves_are_accepted_and_a_line_may_appear_once(client, shop):
    token, admin = shop
    order_id = complete(client, token, admin)
    status, error, _ = call(client, "POST", f"/v1/orders/{order_id}/reviews", {"lines": [FIVE, FIVE]}, token=token)
    assert status == 400 and error["Code"] == "validation_error"
    assert call(client, "POST", f"/v1/orders/{order_id}/reviews", {"lines": []}, token=token)[0] == 400
    line = {**FIVE, "rating": 1, "text": "好" * 500, "images": [f"reviews/2026/{n}.jpg" for n in range(9)]}
    status, body, _ = review(client, token, order_id, line)
    assert status == 201 and len(body["items"][0]["images"]) == 9


def test_the_transaction_checks_the_order_is_still_completed_and_the_users(client, shop):
    # The service reads the order first; the ConditionCheck in the write is what makes it exact.
    token, admin = shop
    order_id = complete(client, token, admin)
    order = orders.get_order(order_id)
    draft = reviews.Review(review_id=review_id_for(order_id, "sku-fuji-5"), order_id=order_id, sku_id="sku-fuji-5",
                           product_id="p-fuji", user_id=order.user_id, nickname="x***", specs={}, rating=5,
                           text="好", images=(), status=reviews.VISIBLE, created_at=order.created_at,
                           updated_at=order.created_at)
    with pytest.raises(reviews.OrderChanged):
        reviews.create_reviews(order_id, "someone-else", [draft])
    OrderRecord = orders.OrderRecord
    OrderRecord(order_id).update(actions=[OrderRecord.status.set("refunded")])
    with pytest.raises(reviews.OrderChanged):
        reviews.create_reviews(order_id, order.user_id, [draft])
    assert ReviewRecord.count() == 0 and ReviewSummaryRecord.count() == 0


# ------------------------------------------------------------------------------ reading


def test_the_public_list_pages_newest_first_and_knows_unknown_products(client, shop):
    token, admin = shop
    for rating in (3, 4, 5):
        review(client, token, complete(client, token, admin), {**FIVE, "rating": rating, "text": f"第{rating}"})
    first = product_page(client, query="?limit=2")
    assert [item["rating"] for item in first["items"]] == [5, 4] and first["next_cursor"]
    second = product_page(client, query=f"?limit=2&cursor={first['next_cursor']}")
    assert [item["rating"] for item in second["items"]] == [3]
    assert first["summary"] == {"review_count": 3, "average": 4.0, "stars": {"1": 0, "2": 0, "3": 1, "4": 1, "5": 1}}
    status, error, _ = call(client, "GET", f"/v1/products/p-navel/reviews?cursor={first['next_cursor']}")
    assert status == 400 and error["Code"] == "invalid_cursor"  # a cursor works only where it came from
    status, error, _ = call(client, "GET", "/v1/products/p-nothing/reviews")
    assert status == 404
    assert_envelope(error, "product_not_found")


def test_a_product_without_reviews_has_an_empty_summary(client, demo_store):
    page = product_page(client, "p-fuji")
    assert page == {"summary": {"review_count": 0, "average": None, "stars": {str(n): 0 for n in range(1, 6)}},
                    "items": [], "next_cursor": None}


@pytest.mark.parametrize("ratings, tenths", [((5, 4, 4), 43), ((5, 5, 4), 47), ((4, 5), 45), ((1,), 10),
                                             ((5, 5, 5, 4), 48), ((3, 4, 4, 4), 38)])
def test_the_average_is_rounded_half_up_to_one_decimal_in_integers(ratings, tenths):
    stars = {star: ratings.count(star) for star in range(1, 6)}
    assert average_tenths(Summary("p", len(ratings), sum(ratings), stars)) == tenths
    assert average_tenths(Summary("p")) is None


@pytest.mark.parametrize("nickname, masked", [("张三丰", "张***丰"), ("张三", "张***"), ("Z", "Z***"),
                                              ("Alice Smith", "A***h"), (None, "匿名用户"), ("  ", "匿名用户")])
def test_nicknames_are_masked(nickname, masked):
    assert mask_nickname(nickname) == masked


# ------------------------------------------------------------------------------ the merchant


def test_hide_and_show_move_the_summary_exactly_once(client, shop):
    token, admin = shop
    review(client, token, complete(client, token, admin), {**FIVE, "rating": 2, "text": "坏了两个"})
    review_id = review(client, token, complete(client, token, admin))[1]["items"][0]["review_id"]
    assert summary(client)["stars"] == {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1}
    for _ in range(2):  # hiding twice takes it out once
        status, hidden, _ = call(client, "POST", f"/v1/admin/reviews/{review_id}/hide", token=admin)
        assert status == 200 and hidden["status"] == "hidden"
        assert summary(client) == {"review_count": 1, "average": 2.0, "stars": {"1": 0, "2": 1, "3": 0, "4": 0, "5": 0}}
    assert [item["rating"] for item in product_page(client)["items"]] == [2]
    listed = call(client, "GET", "/v1/admin/reviews?status=hidden", token=admin)[1]
    assert [item["review_id"] for item in listed["items"]] == [review_id]
    for _ in range(2):  # showing twice puts it back once
        status, shown, _ = call(client, "POST", f"/v1/admin/reviews/{review_id}/show", token=admin)
        assert status == 200 and shown["status"] == "visible"
        assert summary(client) == {"review_count": 2, "average": 3.5, "stars": {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1}}
    assert len(product_page(client)["items"]) == 2
    assert call(client, "GET", "/v1/admin/reviews?status=hidden", token=admin)[1]["items"] == []
    everything = call(client, "GET", "/v1/admin/reviews?limit=1", token=admin)[1]
    assert len(everything["items"]) == 1 and everything["next_cursor"]
    assert everything["items"][0]["user_id"] and everything["items"][0]["order_id"]


def test_a_stale_status_is_not_applied_twice(client, shop):
    # Two merchants hide from the same read: the second write's condition (status as read) fails.
    token, admin = shop
    review_id = review(client, token, complete(client, token, admin))[1]["items"][0]["review_id"]
    read = reviews.get_review(review_id, consistent=True)
    reviews.set_status(read, reviews.HIDDEN, read.created_at)
    with pytest.raises(reviews.ConditionFailed):
        reviews.set_status(read, reviews.HIDDEN, read.created_at)
    assert summary(client)["review_count"] == 0


def test_the_merchant_replies_once_and_may_replace_the_reply(client, shop):
    token, admin = shop
    review_id = review(client, token, complete(client, token, admin))[1]["items"][0]["review_id"]
    for text in ("谢谢惠顾", "感谢支持，欢迎再来"):
        status, replied, _ = call(client, "POST", f"/v1/admin/reviews/{review_id}/reply", {"text": text}, token=admin)
        assert status == 200 and replied["reply"]["text"] == text
    item = product_page(client)["items"][0]
    assert item["reply"]["text"] == "感谢支持，欢迎再来" and item["reply"]["replied_at"].endswith("+08:00")
    assert call(client, "POST", f"/v1/admin/reviews/{review_id}/reply", {"text": ""}, token=admin)[0] == 400
    for path in ("reply", "hide", "show"):
        status, error, _ = call(client, "POST", f"/v1/admin/reviews/rv-missing/{path}", {"text": "x"}, token=admin)
        assert status == 404
        assert_envelope(error, "review_not_found")
    assert ReviewRecord.count() == 1


def test_reports_queue_a_review_once_per_user_until_the_merchant_decides(client, shop):
    token, admin = shop
    review_id = review(client, token, complete(client, token, admin))[1]["items"][0]["review_id"]
    bob, carol = log_in(client, "bob-1")[0], log_in(client, "carol-1")[0]
    for reporter, reason in ((bob, "spam"), (bob, "offensive"), (carol, "offensive")):
        status, body, _ = call(client, "POST", f"/v1/reviews/{review_id}/reports", {"reason": reason}, token=reporter)
        assert status == 200 and body == {"review_id": review_id, "reported": True}
    queued = call(client, "GET", "/v1/admin/reviews?status=reported", token=admin)[1]["items"]
    assert [(item["review_id"], item["report_count"], item["reported"]) for item in queued] == [(review_id, 2, True)]
    assert queued[0]["report_reasons"] == ["offensive", "spam"]
    assert summary(client)["review_count"] == 1  # a reported review stays visible until the merchant decides
    shown = call(client, "POST", f"/v1/admin/reviews/{review_id}/show", token=admin)[1]  # reports dismissed
    assert shown["reported"] is False and shown["status"] == "visible" and summary(client)["review_count"] == 1
    assert call(client, "GET", "/v1/admin/reviews?status=reported", token=admin)[1]["items"] == []
    call(client, "POST", f"/v1/reviews/{review_id}/reports", {"reason": "spam"}, token=carol)  # counted before
    assert call(client, "GET", "/v1/admin/reviews?status=reported", token=admin)[1]["items"] == []
    call(client, "POST", f"/v1/admin/reviews/{review_id}/hide", token=admin)
    for target in (review_id, "rv-missing"):  # a hidden review cannot be reported: it is not public
        status, error, _ = call(client, "POST", f"/v1/reviews/{target}/reports", {"reason": "spam"}, token=bob)
        assert status == 404
        assert_envelope(error, "review_not_found")
    status, error, _ = call(client, "POST", f"/v1/reviews/{review_id}/reports", {"reason": "bad"}, token=bob)
    assert status == 400 and error["Code"] == "validation_error"


def test_merchant_review_routes_need_the_admin_token(client, shop):
    token, _ = shop
    for method, path in (("GET", "/v1/admin/reviews"), ("POST", "/v1/admin/reviews/rv1/hide")):
        status, error, _ = call(client, method, path, token=token)
        assert status == 403
        assert_envelope(error, "forbidden")
    status, error, _ = call(client, "GET", "/v1/admin/reviews?status=pending", token=admin_token(client))
    assert status == 400 and error["Code"] == "validation_error"
