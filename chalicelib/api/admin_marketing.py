"""Merchant marketing routes: coupon templates (create, change, grant) and activities."""
from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.lazy import lazy_module, lazy_names
(ActivityListQuery, AdminActivityList, AdminActivityOut, CreateActivityBody, UpdateActivityBody) = lazy_names(
    "chalicelib.schemas.activities",
    "ActivityListQuery", "AdminActivityList", "AdminActivityOut", "CreateActivityBody",
    "UpdateActivityBody")
(AdminTemplateList, AdminTemplateOut, CreateTemplateBody, GrantBody, GrantReply,
 TemplateListQuery, UpdateTemplateBody) = lazy_names(
    "chalicelib.schemas.coupons",
    "AdminTemplateList", "AdminTemplateOut", "CreateTemplateBody", "GrantBody", "GrantReply",
    "TemplateListQuery", "UpdateTemplateBody")

coupons = lazy_module("chalicelib.services.coupons")
activities = lazy_module("chalicelib.services.activities")

api = ApiBlueprint(__name__, tag="admin-marketing")


@api.route("POST", "/v1/admin/coupon-templates", auth="admin", body=CreateTemplateBody, response=AdminTemplateOut,
           status=201, summary="Create a coupon template (answers it, template_id included)")
def create_template(request: ApiRequest) -> AdminTemplateOut:
    return coupons.create_template(request.body)


@api.route("GET", "/v1/admin/coupon-templates", auth="admin", query=TemplateListQuery, response=AdminTemplateList,
           errors=(400,), summary="Every coupon template, with issued and remaining")
def list_templates(request: ApiRequest) -> AdminTemplateList:
    items, next_cursor = coupons.list_templates(request.query.limit, request.query.cursor)
    return AdminTemplateList(items=items, next_cursor=next_cursor)


@api.route("PATCH", "/v1/admin/coupon-templates/{template_id}", auth="admin", body=UpdateTemplateBody,
           response=AdminTemplateOut, errors=(404, 409),
           summary="Change name, status, total (not below issued), limit, claim window; the terms only while "
                   "none is issued (409 coupon_template_in_use). Claimed coupons keep their terms")
def update_template(request: ApiRequest) -> AdminTemplateOut:
    return coupons.update_template(request.params["template_id"], request.body)


@api.route("POST", "/v1/admin/coupon-templates/{template_id}/grant", auth="admin", body=GrantBody,
           response=GrantReply, errors=(404, 409),
           summary="Give a grant template's coupons to users (at most 100), within its total and per-user limit; "
                   "one result per user")
def grant_coupons(request: ApiRequest) -> GrantReply:
    return coupons.grant(request.params["template_id"], request.body.user_ids)


@api.route("POST", "/v1/admin/activities", auth="admin", body=CreateActivityBody, response=AdminActivityOut,
           status=201, errors=(404,),
           summary="Create an activity: full_reduction (tiers, scope), group_buy (sku_id, price_fen, group_size, "
                   "window_minutes, per_user_limit) or bargain (sku_id, floor_price_fen, helpers_to_floor, "
                   "window_minutes, new_users_only?); 404 sku_not_found")
def create_activity(request: ApiRequest) -> AdminActivityOut:
    return activities.create_activity(request.body)


@api.route("GET", "/v1/admin/activities", auth="admin", query=ActivityListQuery, response=AdminActivityList,
           errors=(400,), summary="Every activity, running or not")
def list_activities(request: ApiRequest) -> AdminActivityList:
    items, next_cursor = activities.list_activities(request.query.limit, request.query.cursor)
    return AdminActivityList(items=items, next_cursor=next_cursor)


@api.route("PATCH", "/v1/admin/activities/{activity_id}", auth="admin", body=UpdateActivityBody,
           response=AdminActivityOut, errors=(404,),
           summary="Change name, tiers, scope, times or status (checkout sees it within 30 seconds)")
def update_activity(request: ApiRequest) -> AdminActivityOut:
    return activities.update_activity(request.params["activity_id"], request.body)
