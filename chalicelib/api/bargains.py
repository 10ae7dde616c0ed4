"""Bargains (砍价) for the mini-program (API.md, "Marketing, members and social commerce")."""
from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest, Reply
from chalicelib.lazy import lazy_module, lazy_names

(BargainOut, StartBargainBody) = lazy_names("chalicelib.schemas.bargains", "BargainOut", "StartBargainBody")

bargains = lazy_module("chalicelib.services.bargains")

api = ApiBlueprint(__name__, tag="marketing")


@api.route("POST", "/v1/bargains", body=StartBargainBody, response=BargainOut, status=201, also=(200,),
           errors=(400, 404, 409),
           summary="Start a bargain on a running bargain activity (one per user and activity: starting again "
                   "answers it, 200); buy at the price reached with POST /v1/orders {bargain_id}")
def start_bargain(request: ApiRequest) -> Reply:
    answer, created = bargains.start_bargain(request.user_id, request.body)
    return Reply(answer, 201 if created else 200)


@api.route("POST", "/v1/bargains/{bargain_id}/cuts", response=BargainOut, status=201, also=(200,),
           errors=(404, 409, 429),
           summary="Help cut a friend's bargain, once (a second time answers 200 unchanged); 409 "
                   "cannot_cut_own_bargain, not_a_new_user, bargain_expired, bargain_at_floor, bargain_ordered; "
                   "429 cut_rate_limited")
def cut_bargain(request: ApiRequest) -> Reply:
    answer, created = bargains.cut(request.user_id, request.params["bargain_id"])
    return Reply(answer, 201 if created else 200)


@api.route("GET", "/v1/bargains/{bargain_id}", response=BargainOut, errors=(404,),
           summary="A bargain: the price reached, its cuts (helpers' nicknames and avatars), expiry")
def get_bargain(request: ApiRequest) -> BargainOut:
    return bargains.get_bargain(request.user_id, request.params["bargain_id"])
