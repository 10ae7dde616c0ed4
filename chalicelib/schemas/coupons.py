"""Coupons: the merchant's templates, the buyer's claims and wallet."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from chalicelib.schemas.common import Moment, QueryModel, RequestModel, ResponseModel

CouponKind = Literal["full_reduction", "discount", "no_threshold"]
Channel = Literal["claim", "new_user", "birthday", "grant", "share"]
TemplateStatus = Literal["active", "paused"]
CouponStatus = Literal["unused", "locked", "used", "expired"]

MAX_FEN = 100_000_000  # ¥1,000,000
MAX_SCOPE_IDS = 50  # per list: a coupon's scope is copied into every claimed coupon (its wallet item)
Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
Fen = Annotated[int, Field(ge=0, le=MAX_FEN)]


class ScopeBody(RequestModel):
    """None of them (or no scope at all): the whole store. Exclusions win over inclusions."""
    category_ids: list[Id] = Field(default_factory=list, max_length=MAX_SCOPE_IDS,
                                   description="these categories and everything below them")
    product_ids: list[Id] = Field(default_factory=list, max_length=MAX_SCOPE_IDS)
    excluded_product_ids: list[Id] = Field(default_factory=list, max_length=MAX_SCOPE_IDS)


class ScopeOut(ResponseModel):
    category_ids: list[str]
    product_ids: list[str]
    excluded_product_ids: list[str]


def terms_problems(values: dict[str, Any]) -> list[dict[str, str]]:
    """What is wrong with a template's terms and validity (also checked on a PATCH, merged with
    the stored template): [{"field", "message"}]."""
    kind, problems = values.get("kind"), []

    def need(name: str, ok: bool, message: str) -> None:
        if not ok:
            problems.append({"field": name, "message": message})

    given = {name for name in ("threshold_fen", "off_fen", "rate_permille", "cap_fen") if values.get(name)}
    allowed = {"full_reduction": {"threshold_fen", "off_fen"}, "discount": {"threshold_fen", "rate_permille", "cap_fen"},
               "no_threshold": {"off_fen"}}.get(kind, set())
    for name in sorted(given - allowed):
        need(name, False, f"not used by a {kind} coupon")
    threshold, off = values.get("threshold_fen") or 0, values.get("off_fen") or 0
    if kind == "full_reduction":
        need("threshold_fen", threshold >= 1, "required: the amount to reach")
        need("off_fen", off >= 1 and (threshold < 1 or off < threshold), "required, at least 1 and below threshold_fen")
    elif kind == "discount":
        need("rate_permille", 1 <= (values.get("rate_permille") or 0) <= 999, "required: 1-999 (900 = pay 90%)")
    elif kind == "no_threshold":
        need("off_fen", off >= 1, "required: the amount taken off")
    fixed = values.get("valid_from") is not None or values.get("valid_to") is not None
    if fixed == (values.get("valid_days") is not None):
        need("valid_days", False, "give either valid_from and valid_to, or valid_days")
    elif fixed:
        need("valid_to", values.get("valid_from") is not None and values.get("valid_to") is not None
             and values["valid_from"] < values["valid_to"], "valid_from and valid_to, valid_from first")
    claim_from, claim_to = values.get("claim_from"), values.get("claim_to")
    need("claim_to", claim_from is None or claim_to is None or claim_from < claim_to, "must be after claim_from")
    return problems


class _Template(RequestModel):
    def problems(self) -> list[dict[str, str]]:
        return terms_problems(self.model_dump())


class CreateTemplateBody(_Template):
    name: str = Field(min_length=1, max_length=64)
    kind: CouponKind
    threshold_fen: Fen | None = Field(default=None, description="full_reduction: required; discount: optional minimum")
    off_fen: Fen | None = Field(default=None, description="full_reduction (below threshold_fen) and no_threshold")
    rate_permille: int | None = Field(default=None, ge=1, le=999, description="discount: 900 = 9折 (pay 90%)")
    cap_fen: Fen | None = Field(default=None, description="discount: most it takes off (0 or absent: no cap)")
    scope: ScopeBody | None = Field(default=None, description="absent: the whole store")
    valid_from: Moment | None = None
    valid_to: Moment | None = None
    valid_days: int | None = Field(default=None, ge=1, le=3650, description="instead of valid_from/valid_to: "
                                                                            "valid for N days from claiming")
    claim_from: Moment | None = Field(default=None, description="claiming opens (absent: now)")
    claim_to: Moment | None = Field(default=None, description="claiming closes (absent: never)")
    total: int = Field(ge=1, le=10_000_000, description="coupons that may ever be issued")
    per_user_limit: int = Field(ge=1, le=100, description="coupons one user may hold of it (birthday: per year)")
    channel: Channel
    stack_group: str = Field(default="default", min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$",
                             description="an order uses at most one coupon per stack group")
    status: TemplateStatus = "active"

    @model_validator(mode="after")
    def _consistent(self) -> "CreateTemplateBody":
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(f"{p['field']}: {p['message']}" for p in problems))
        return self


class UpdateTemplateBody(RequestModel):
    """name, status, total (not below issued), per_user_limit and the claim window may always
    change; the terms (kind, amounts, scope, validity, channel, stack_group) only while none is
    issued. Coupons already claimed keep the terms they were claimed with."""
    name: str | None = Field(default=None, min_length=1, max_length=64)
    status: TemplateStatus | None = None
    total: int | None = Field(default=None, ge=1, le=10_000_000)
    per_user_limit: int | None = Field(default=None, ge=1, le=100)
    claim_from: Moment | None = None
    claim_to: Moment | None = None
    kind: CouponKind | None = None
    threshold_fen: Fen | None = None
    off_fen: Fen | None = None
    rate_permille: int | None = Field(default=None, ge=1, le=999)
    cap_fen: Fen | None = None
    scope: ScopeBody | None = None
    valid_from: Moment | None = None
    valid_to: Moment | None = None
    valid_days: int | None = Field(default=None, ge=1, le=3650)
    channel: Channel | None = None
    stack_group: str | None = Field(default=None, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")


class TemplateListQuery(QueryModel):
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=2048)


class _TermsOut(ResponseModel):
    """What a template and each coupon claimed from it show alike: its terms."""
    template_id: str
    name: str
    kind: CouponKind
    threshold_fen: int
    off_fen: int
    rate_permille: int
    cap_fen: int
    scope: ScopeOut
    stack_group: str


class TemplateOut(_TermsOut):
    valid_from: str | None = Field(description="fixed window (else valid_days from claiming)")
    valid_to: str | None
    valid_days: int | None
    claim_from: str | None
    claim_to: str | None
    remaining: int
    per_user_limit: int


class TemplateList(ResponseModel):
    items: list[TemplateOut]


class AdminTemplateOut(TemplateOut):
    total: int
    issued: int
    channel: Channel
    status: TemplateStatus
    created_at: str
    updated_at: str


class AdminTemplateList(ResponseModel):
    items: list[AdminTemplateOut]
    next_cursor: str | None


class GrantBody(RequestModel):
    user_ids: list[Id] = Field(min_length=1, max_length=100, description="at most 100 per call; repeats count once")


class GrantResult(ResponseModel):
    user_id: str
    granted: bool
    coupon_id: str | None = None
    code: str | None = Field(default=None, description="why not: coupon_sold_out, claim_limit_reached, "
                                                       "user_not_found, claim_not_open, wallet_full, ...")


class GrantReply(ResponseModel):
    granted: int
    results: list[GrantResult]


class CouponOut(_TermsOut):
    coupon_id: str
    status: CouponStatus = Field(description="expired: unused and past valid_to")
    valid_from: str
    valid_to: str
    channel: str
    claimed_at: str
    order_id: str | None = Field(description="the order holding (locked) or that used it")
    used_at: str | None


class CouponList(ResponseModel):
    items: list[CouponOut]


class MyCouponsQuery(QueryModel):
    status: CouponStatus | None = Field(default=None, description="absent: all")
