"""Group-buys (拼团) for the mini-program (API.md, "Marketing, members and social commerce")."""
from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest, Reply
from chalicelib.lazy import lazy_module, lazy_names

(GroupBuyOrder, GroupOut, StartGroupBuyBody) = lazy_names(
    "chalicelib.schemas.group_buys", "GroupBuyOrder", "GroupOut", "StartGroupBuyBody")

group_buys = lazy_module("chalicelib.services.group_buys")

api = ApiBlueprint(__name__, tag="marketing")


@api.route("POST", "/v1/group-buys", body=StartGroupBuyBody, response=GroupBuyOrder, status=201, also=(200,),
           errors=(400, 404, 409),
           summary="Open a group (no group_id) or join one: answers the group and a pending order of one unit at the "
                   "group price (the place is taken by paying it; a payment the group can no longer take leads a new "
                   "group). 409 group_not_open, group_full, already_in_group, group_buy_limit_reached, "
                   "activity_not_running; a replayed checkout_token answers 200")
def start_group_buy(request: ApiRequest) -> Reply:
    answer, created = group_buys.start_group_buy(request.user_id, request.body)
    return Reply(answer, 201 if created else 200)


@api.route("GET", "/v1/group-buys/{group_id}", response=GroupOut, errors=(404,),
           summary="A group: status (opening, open, succeeded, failed), places left, its paid members' nicknames "
                   "and avatars")
def get_group(request: ApiRequest) -> GroupOut:
    return group_buys.get_group(request.params["group_id"])
