"""The declared routes (chalicelib.api.http.ROUTES), grouped the way the security tests need them."""
from __future__ import annotations

import re
from typing import Any

import app  # noqa: F401  (registers every route in ROUTES)
from chalicelib.api.http import ROUTES, RouteSpec

# The resources a user owns, by the name of their id in a path.
OWNED_IDS = ("order_id", "address_id", "request_id", "ticket_id")
# Ids in user routes that name no one's resource: a catalog SKU, as a line of the caller's own cart;
# a flash sale, which everyone may enter; a product, as one of the caller's own favorites; a
# public review, which anyone may report; a group-buy's group and a bargain, shared to be joined or cut
# (they show nicknames and avatars only).
SHARED_IDS = ("sku_id", "sale_id", "template_id", "product_id", "review_id",  # catalog-like: the same for every user
              "group_id", "bargain_id")

ADDRESS = {"name": "张三", "phone": "13800138000", "province": "上海市", "city": "上海市", "district": "徐汇区",
           "detail": "漕溪北路88号"}
# A valid body for each body model a route with an owned id takes (so ownership, not validation, answers).
VALID_BODIES: dict[str, Any] = {
    "AddressBody": ADDRESS,
    "AfterSaleBody": {"kind": "refund", "reason": "不想要了"},
    "ReviewBody": {"lines": [{"sku_id": "sku-fuji-5", "rating": 5, "text": "很好"}]},
    "ReturnShipmentBody": {"carrier": "圆通速递", "tracking_no": "YT9876543210"},
    "DisputeBody": {"reason": "商品确有质量问题"},
}


def label(spec: RouteSpec) -> str:
    return f"{spec.method} {spec.path}"


def path_ids(spec: RouteSpec) -> list[str]:
    return re.findall(r"\{(\w+)\}", spec.path)


def fill(spec: RouteSpec, ids: dict[str, str] | None = None) -> str:
    """The route's path with its ids filled in (`ids`, else a well-formed id of nothing)."""
    return re.sub(r"\{(\w+)\}", lambda match: (ids or {}).get(match.group(1), "nothing-1"), spec.path)


def authenticated() -> list[RouteSpec]:
    return [spec for spec in ROUTES if spec.path.startswith("/v1/") and spec.auth in ("user", "admin")]


def admin_routes() -> list[RouteSpec]:
    return [spec for spec in ROUTES if spec.path.startswith("/v1/admin/") and spec.auth is not None]


def user_routes_on_owned_ids() -> list[RouteSpec]:
    return [spec for spec in ROUTES if spec.auth == "user" and set(path_ids(spec)) & set(OWNED_IDS)]


def routes_with_a_body() -> list[RouteSpec]:
    return [spec for spec in ROUTES if spec.body is not None]
