"""Group-buys (拼团): the open/join body and the group as members and sharers see it."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from chalicelib.schemas.common import RequestModel, ResponseModel
from chalicelib.schemas.orders import OrderOut

GroupStatus = Literal["opening", "open", "succeeded", "failed"]
Id = dict(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")


class StartGroupBuyBody(RequestModel):
    """Open a group (no group_id) or join one: answers a pending order of one unit at the group
    price. The place is taken when the order is paid."""
    activity_id: str = Field(**Id)
    sku_id: str = Field(**Id)
    group_id: str | None = Field(default=None, **Id, description="join this group; absent: open a new one")
    delivery_method: Literal["express", "pickup", "same_city", "none"] | None = Field(
        default=None, description="as in POST /v1/orders")
    address_id: str | None = Field(default=None, min_length=1, max_length=64)
    store_id: str | None = Field(default=None, min_length=1, max_length=64)
    checkout_token: str | None = Field(default=None, min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$",
                                       description="client-made UUID: replaying it answers the same order (200)")


class GroupMemberOut(ResponseModel):
    nickname: str | None
    avatar_url: str | None
    leader: bool
    joined_at: str


class GroupOut(ResponseModel):
    group_id: str
    activity_id: str
    sku_id: str
    price_fen: int = Field(description="the group price of one unit")
    group_size: int
    paid_count: int = Field(description="places taken (paid members)")
    places_left: int
    status: GroupStatus = Field(description="opening (the leader has not paid), open, succeeded, failed "
                                            "(paid members refunded automatically)")
    expires_at: str
    succeeded_at: str | None = None
    failed_at: str | None = None
    members: list[GroupMemberOut] = Field(description="paid members, the leader first: nickname and avatar only")


class GroupBuyOrder(ResponseModel):
    group: GroupOut = Field(description="the group the order is for (its place is taken by paying)")
    order: OrderOut = Field(description="the order to pay (POST /v1/orders/{order_id}/pay)")
