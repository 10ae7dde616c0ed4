"""Which admin routes only an owner may call (staff gets 403 `forbidden_for_role`).

One table, checked by chalicelib/api/http.py for every `auth="admin"` route before its handler
runs, so a new owner-only route is one line here and nothing is checked in handlers. A rule names
a method and a path (a path ending in `*` covers everything under it, so routes added later under
a covered prefix are covered too), and optionally the body fields that make the call owner-only
(a SKU edit is open to staff unless it changes the price).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

OWNER, STAFF = "owner", "staff"
ADMIN_ROLES = (OWNER, STAFF)


@dataclass(frozen=True)
class OwnerOnly:
    methods: tuple[str, ...]
    path: str
    fields: tuple[str, ...] = ()  # empty: the route itself; else only when the body sets one of these

    def matches(self, method: str, path: str) -> bool:
        if method not in self.methods:
            return False
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return path == self.path


WRITES = ("POST", "PUT", "PATCH", "DELETE")
RULES: tuple[OwnerOnly, ...] = (
    # money back to buyers
    OwnerOnly(("POST",), "/v1/admin/orders/{order_id}/refunds"),
    OwnerOnly(("POST",), "/v1/admin/after-sales/{request_id}/approve"),
    OwnerOnly(("POST",), "/v1/admin/after-sales/{request_id}/receive"),
    OwnerOnly(("POST",), "/v1/admin/refunds/{out_refund_no}/retry"),
    # money out to distributors, and what they earn
    OwnerOnly(WRITES, "/v1/admin/withdrawals*"),
    OwnerOnly(WRITES, "/v1/admin/commission-rates*"),
    # prices (a flash sale's price and units are set on create and edit)
    OwnerOnly(("PATCH",), "/v1/admin/skus/{sku_id}", fields=("price_fen", "market_price_fen")),
    OwnerOnly(WRITES, "/v1/admin/flash-sales*"),
    # accounts, member levels, coupons and activities
    OwnerOnly(("GET", *WRITES), "/v1/admin/accounts*"),
    OwnerOnly(WRITES, "/v1/admin/member-levels*"),
    OwnerOnly(WRITES, "/v1/admin/coupon-templates*"),
    OwnerOnly(WRITES, "/v1/admin/coupons*"),
    OwnerOnly(WRITES, "/v1/admin/activities*"),
)


def refusal(method: str, path: str, admin_role: str, body: Any) -> str | None:
    """Why `admin_role` may not make this call (a message), or None when it may."""
    if admin_role == OWNER:
        return None
    sent = set(getattr(body, "model_fields_set", ()) or ())
    for rule in RULES:
        if not rule.matches(method, path) or (rule.fields and body is None):
            continue  # a field rule is checked once the body is parsed
        if not rule.fields or sent & set(rule.fields):
            what = f" ({', '.join(sorted(sent & set(rule.fields)))})" if rule.fields else ""
            return f"Only an owner account may do this{what}"
    return None


def owner_only(method: str, path: str) -> bool:
    """Whether the route can be refused to staff (for the OpenAPI document's 403)."""
    return any(rule.matches(method, path) for rule in RULES)
