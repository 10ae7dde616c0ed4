"""Subscribe-message quota: the mini-program reports what `wx.requestSubscribeMessage` returned.

Flow: GET lists the store's templates (the ids to ask the user for); the mini-program calls
`wx.requestSubscribeMessage({tmplIds})`; for each id it POSTs `accepted` ('accept' -> true).
Each acceptance lets the store send one message of that template (docs/subscribe-messages.md).
"""
from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.lazy import lazy_module, lazy_names
SubscriptionBody, SubscriptionList, SubscriptionOut = lazy_names(
    "chalicelib.schemas.subscriptions", "SubscriptionBody", "SubscriptionList", "SubscriptionOut")

notifications = lazy_module("chalicelib.services.notifications")

api = ApiBlueprint(__name__, tag="members")


@api.route("GET", "/v1/me/subscriptions", response=SubscriptionList, errors=(401, 403),
           summary="The store's subscribe-message templates, each with the user's remaining one-time quota")
def list_subscriptions(request: ApiRequest) -> SubscriptionList:
    return notifications.list_subscriptions(request.user_id)


@api.route("POST", "/v1/me/subscriptions", body=SubscriptionBody, response=SubscriptionOut, errors=(400, 401, 403),
           summary="Record one wx.requestSubscribeMessage answer: accepted adds one send of that template "
                   "(400 unknown_template for an id the store does not use)")
def record_subscription(request: ApiRequest) -> SubscriptionOut:
    body = request.body
    return notifications.record_subscription(request.user_id, body.template_id, body.accepted, body.request_id)
