"""The buyer's coupons and the store's running promotions."""
from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.lazy import lazy_module, lazy_names
ActivityList = lazy_names("chalicelib.schemas.activities", "ActivityList")
CouponList, CouponOut, MyCouponsQuery, TemplateList = lazy_names(
    "chalicelib.schemas.coupons", "CouponList", "CouponOut", "MyCouponsQuery", "TemplateList")

coupons = lazy_module("chalicelib.services.coupons")
activities = lazy_module("chalicelib.services.activities")

api = ApiBlueprint(__name__, tag="marketing")


@api.route("GET", "/v1/coupons", auth=None, response=TemplateList,
           summary="Coupons open for claiming now, with how many remain (0: all claimed)")
def list_claimable(request: ApiRequest) -> TemplateList:
    return TemplateList(items=coupons.claimable_templates())


@api.route("POST", "/v1/coupons/{template_id}/claim", response=CouponOut, status=201, errors=(401, 403, 404, 409, 503),
           summary="Claim one coupon (409 coupon_sold_out, claim_limit_reached, claim_not_open, wallet_full)")
def claim_coupon(request: ApiRequest) -> CouponOut:
    return coupons.claim(request.user_id, request.params["template_id"])


@api.route("GET", "/v1/me/coupons", query=MyCouponsQuery, response=CouponList, errors=(400, 401, 403),
           summary="The user's coupons, newest first; status unused, locked, used or expired (absent: all)")
def my_coupons(request: ApiRequest) -> CouponList:
    return CouponList(items=coupons.my_coupons(request.user_id, request.query.status))


@api.route("GET", "/v1/activities", auth=None, response=ActivityList,
           summary="Promotions running now (full-reduction tiers), soonest end first")
def running_activities(request: ApiRequest) -> ActivityList:
    return ActivityList(items=activities.list_running())
