"""Reviews: the buyer reviews a completed order's lines, anyone reads a product's visible reviews
with its rating summary, users report, the merchant replies, hides and shows."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib import clock
from chalicelib.api.http import ApiBlueprint, ApiRequest, Reply
from chalicelib.lazy import lazy_module, lazy_names
(AdminReviewList, AdminReviewOut, AdminReviewQuery, OwnReviewList, OwnReviewOut,
 ProductReviewPage, PublicReviewOut, RatingSummaryOut, ReplyBody, ReportBody, ReportOut,
 ReviewBody, ReviewListQuery) = lazy_names(
    "chalicelib.schemas.reviews",
    "AdminReviewList", "AdminReviewOut", "AdminReviewQuery", "OwnReviewList", "OwnReviewOut",
    "ProductReviewPage", "PublicReviewOut", "RatingSummaryOut", "ReplyBody", "ReportBody", "ReportOut",
    "ReviewBody", "ReviewListQuery")

if TYPE_CHECKING:
    from chalicelib.storage.reviews import Review, Summary

reviews = lazy_module("chalicelib.services.reviews")

api = ApiBlueprint(__name__, tag="reviews")


def public_out(review: Review) -> PublicReviewOut:
    return PublicReviewOut(review_id=review.review_id, nickname=review.nickname, specs=review.specs,
                           rating=review.rating, text=review.text, images=list(review.images),
                           created_at=clock.to_iso(review.created_at), reply=_reply(review))


def own_out(review: Review) -> OwnReviewOut:
    return OwnReviewOut(**public_out(review).model_dump(), sku_id=review.sku_id, product_id=review.product_id,
                        status=review.status)


def admin_out(review: Review) -> AdminReviewOut:
    return AdminReviewOut(**own_out(review).model_dump(), order_id=review.order_id, user_id=review.user_id,
                          report_count=review.report_count, reported=review.reported,
                          report_reasons=sorted(review.report_reasons), updated_at=clock.to_iso(review.updated_at))


def _reply(review: Review) -> dict | None:
    if not review.reply:
        return None
    return {"text": review.reply["text"], "replied_at": clock.to_iso(review.reply["replied_at"])}


def summary_out(summary: Summary) -> RatingSummaryOut:
    tenths = reviews.average_tenths(summary)
    return RatingSummaryOut(review_count=summary.review_count, average=None if tenths is None else tenths / 10,
                            stars={str(star): count for star, count in summary.stars.items()})


@api.route("POST", "/v1/orders/{order_id}/reviews", body=ReviewBody, response=OwnReviewList, status=201, also=(200,),
           errors=(400, 404, 409),
           summary="Review lines of a completed order, once per line (409 order_not_completed, already_reviewed; "
                   "400 line_not_in_order); the identical review again answers the stored one (200)")
def review_order(request: ApiRequest) -> Reply:
    lines = [reviews.LineReview(sku_id=line.sku_id, rating=line.rating, text=line.text, images=tuple(line.images))
             for line in request.body.lines]
    written, created = reviews.review_order(request.user_id, request.params["order_id"], lines)
    return Reply(OwnReviewList(items=[own_out(review) for review in written]), 201 if created else 200)


@api.route("GET", "/v1/products/{product_id}/reviews", auth=None, query=ReviewListQuery, response=ProductReviewPage,
           errors=(400, 404), summary="A product's visible reviews, newest first, with its rating summary")
def product_reviews(request: ApiRequest) -> ProductReviewPage:
    query = request.query
    summary, page, next_cursor = reviews.product_reviews(request.params["product_id"], query.limit, query.cursor)
    return ProductReviewPage(summary=summary_out(summary), items=[public_out(review) for review in page],
                             next_cursor=next_cursor)


@api.route("POST", "/v1/reviews/{review_id}/reports", body=ReportBody, response=ReportOut, errors=(400, 404),
           summary="Report a visible review to the merchant (once per user; again changes nothing)")
def report_review(request: ApiRequest) -> ReportOut:
    reviews.report_review(request.user_id, request.params["review_id"], request.body.reason)
    return ReportOut(review_id=request.params["review_id"], reported=True)


@api.route("GET", "/v1/admin/reviews", auth="admin", query=AdminReviewQuery, response=AdminReviewList, errors=(400,),
           summary="Reviews newest first: visible, hidden, reported (open reports), or all")
def list_reviews(request: ApiRequest) -> AdminReviewList:
    query = request.query
    page, next_cursor = reviews.list_reviews(query.status, query.limit, query.cursor)
    return AdminReviewList(items=[admin_out(review) for review in page], next_cursor=next_cursor)


@api.route("POST", "/v1/admin/reviews/{review_id}/reply", auth="admin", body=ReplyBody, response=AdminReviewOut,
           errors=(400, 404), summary="Reply to a review (one reply: a new one replaces it)")
def reply_to_review(request: ApiRequest) -> AdminReviewOut:
    return admin_out(reviews.reply_to_review(request.params["review_id"], request.body.text))


@api.route("POST", "/v1/admin/reviews/{review_id}/hide", auth="admin", response=AdminReviewOut, errors=(404,),
           summary="Hide a review (closing its reports); it leaves the rating summary (hidden: unchanged)")
def hide_review(request: ApiRequest) -> AdminReviewOut:
    return admin_out(reviews.hide_review(request.params["review_id"]))


@api.route("POST", "/v1/admin/reviews/{review_id}/show", auth="admin", response=AdminReviewOut, errors=(404,),
           summary="Show a review again, or dismiss its reports; it rejoins the rating summary")
def show_review(request: ApiRequest) -> AdminReviewOut:
    return admin_out(reviews.show_review(request.params["review_id"]))
