"""Coupons and full-reduction activities as data: what each one is worth on an order's lines.

These are the pieces `domain/promotions.py` combines (stacking, best combination) and
`domain/pricing.py` prices; nothing here knows about other coupons or about the order total.

- `CouponScope` says which products a coupon or activity covers (a category covers its
  descendants, because an item carries its whole `category_path`).
- `CouponTerms` says what a coupon takes off the in-scope lines' current payable.
- `WalletCoupon` is a coupon a user holds: terms plus status and validity window.
- `FullReductionActivity` is a store promotion with tiers (满200减20, 满300减40, ...).
- `CouponOutcome` is what the quote says about each of the user's unused coupons, with a
  stable reason code when it does not apply (see REASON_CODES).

All amounts are integer fen; all validity windows are half-open: valid_from <= now < valid_to.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from chalicelib.domain.money import format_yuan
from chalicelib.errors import Conflict, NotFound

CouponKind = Literal["full_reduction", "discount", "no_threshold"]
CouponStatus = Literal["unused", "locked", "used"]
COUPON_KINDS: tuple[str, ...] = ("full_reduction", "discount", "no_threshold")

# Why a coupon does not apply: `CouponOutcome.reason` and `CouponNotApplicable.reason`.
# Clients key on these codes; `reason_text` is for showing to the buyer and may change.
EXPIRED = "expired"                        # now >= valid_to
NOT_YET_VALID = "not_yet_valid"            # now < valid_from
LOCKED = "locked"                          # held by another order awaiting payment (explicit choice only)
USED = "used"                              # already spent (explicit choice only)
OUT_OF_SCOPE = "out_of_scope"              # no line of the order is in the coupon's scope
THRESHOLD_NOT_REACHED = "threshold_not_reached"  # in-scope payable below threshold_fen at its turn
NOTHING_TO_DISCOUNT = "nothing_to_discount"      # worth 0 fen here: scope already free, or order at the 1-fen minimum
DOES_NOT_STACK = "does_not_stack"          # conflicts with a chosen coupon or the applied activity (see conflicts_with)
NOT_THE_BEST = "not_the_best"              # usable, but the chosen combination is at least as good without it
NOT_SELECTED = "not_selected"              # the caller chose coupons explicitly and not this one
REASON_CODES: tuple[str, ...] = (EXPIRED, NOT_YET_VALID, LOCKED, USED, OUT_OF_SCOPE, THRESHOLD_NOT_REACHED,
                                 NOTHING_TO_DISCOUNT, DOES_NOT_STACK, NOT_THE_BEST, NOT_SELECTED)


@dataclass(frozen=True)
class CouponScope:
    """Which products a coupon or activity covers.

    No category_ids and no product_ids means the whole store. Otherwise a product is covered
    when its id is listed or any of its category ancestors (root first, self last) is listed,
    so a category covers its descendants. An excluded product is never covered.
    """
    category_ids: frozenset[str] = frozenset()
    product_ids: frozenset[str] = frozenset()
    excluded_product_ids: frozenset[str] = frozenset()

    @property
    def whole_store(self) -> bool:
        return not self.category_ids and not self.product_ids

    def covers(self, product_id: str, category_path: tuple[str, ...] = ()) -> bool:
        if product_id in self.excluded_product_ids:
            return False
        if self.whole_store or product_id in self.product_ids:
            return True
        return any(category_id in self.category_ids for category_id in category_path)


@dataclass(frozen=True)
class CouponTerms:
    """What a coupon takes off the payable of the lines in its scope, at its turn in the pipeline.

    - full_reduction (满减券): `off_fen` once the in-scope payable reaches `threshold_fen`;
    - discount (折扣券): the buyer pays rate_permille/1000 (900 = 9折), so the coupon is worth
      payable x (1000 - rate_permille) / 1000 rounded down, at most `cap_fen` when cap_fen > 0;
      `threshold_fen` (0 = none) is an optional minimum in-scope payable;
    - no_threshold (无门槛券): `off_fen`; `threshold_fen` is ignored.

    Never worth more than the in-scope payable. Capping at the 1-fen order minimum is the
    pipeline's job (it knows the whole order).
    """
    kind: CouponKind
    threshold_fen: int = 0
    off_fen: int = 0
    rate_permille: int = 0
    cap_fen: int = 0  # discount only; 0 = no cap
    scope: CouponScope = field(default_factory=CouponScope)
    stack_group: str = "default"  # at most one coupon per stack group in an order

    def __post_init__(self) -> None:
        if self.kind not in COUPON_KINDS:
            raise ValueError(f"unknown coupon kind {self.kind!r}")
        if min(self.threshold_fen, self.off_fen, self.cap_fen) < 0:
            raise ValueError("coupon amounts must not be negative")
        if not 0 <= self.rate_permille <= 1000:
            raise ValueError("rate_permille must be within 0..1000")

    @property
    def effective_threshold_fen(self) -> int:
        return 0 if self.kind == "no_threshold" else self.threshold_fen

    def reaches_threshold(self, in_scope_payable_fen: int) -> bool:
        return in_scope_payable_fen >= self.effective_threshold_fen

    def value_fen(self, in_scope_payable_fen: int) -> int:
        """What the coupon takes off when its in-scope lines currently pay this much (0 if unreached)."""
        if in_scope_payable_fen <= 0 or not self.reaches_threshold(in_scope_payable_fen):
            return 0
        if self.kind == "discount":
            off = in_scope_payable_fen * (1000 - self.rate_permille) // 1000
            if self.cap_fen > 0:
                off = min(off, self.cap_fen)
        else:
            off = self.off_fen
        return min(off, in_scope_payable_fen)


@dataclass(frozen=True)
class WalletCoupon:
    """A coupon a user holds. `expired` is not a status: it is derived from valid_to and now."""
    coupon_id: str
    template_id: str
    name: str
    terms: CouponTerms
    status: CouponStatus
    valid_from: datetime
    valid_to: datetime

    def is_expired(self, now: datetime) -> bool:
        return now >= self.valid_to

    def unusable_reason(self, now: datetime) -> str | None:
        """Why the coupon cannot be used at all right now (status or validity), or None."""
        if self.status == "used":
            return USED
        if self.status == "locked":
            return LOCKED
        if self.is_expired(now):
            return EXPIRED
        if now < self.valid_from:
            return NOT_YET_VALID
        return None


@dataclass(frozen=True)
class FullReductionActivity:
    """A store promotion (满减活动): the best tier the in-scope lines reach applies.

    tiers: ((threshold_fen, off_fen), ...) in any order; the tier taking most off wins.
    Running while starts_at <= now < ends_at.
    """
    activity_id: str
    name: str
    tiers: tuple[tuple[int, int], ...]
    scope: CouponScope
    starts_at: datetime
    ends_at: datetime

    def __post_init__(self) -> None:
        if any(threshold < 0 or off < 0 for threshold, off in self.tiers):
            raise ValueError("activity tiers must not be negative")

    def is_running(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def best_tier(self, in_scope_payable_fen: int) -> tuple[int, int] | None:
        """The reached tier that takes most off (ties: the lower threshold), or None."""
        reached = [tier for tier in self.tiers if tier[1] > 0 and in_scope_payable_fen >= tier[0]]
        return min(reached, key=lambda tier: (-tier[1], tier[0])) if reached else None

    def value_fen(self, in_scope_payable_fen: int) -> int:
        tier = self.best_tier(in_scope_payable_fen) if in_scope_payable_fen > 0 else None
        return min(tier[1], in_scope_payable_fen) if tier else 0

    def describe(self, in_scope_payable_fen: int) -> str:
        tier = self.best_tier(in_scope_payable_fen)
        return f"{self.name}（满{format_yuan(tier[0])}减{format_yuan(tier[1])}）" if tier else self.name


@dataclass(frozen=True)
class CouponOutcome:
    """What the quote says about one of the user's unused coupons.

    applied: amount_fen is what it took off (its adjustment), reason and reason_text are None.
    Not applied: amount_fen is 0, reason is one of REASON_CODES, reason_text explains it to the
    buyer, and conflicts_with names what it does not stack with (coupon ids, or the applied
    activity's id) when reason is does_not_stack.
    """
    coupon_id: str
    applied: bool
    amount_fen: int
    reason: str | None = None
    reason_text: str | None = None
    conflicts_with: tuple[str, ...] = ()


class CouponNotFound(NotFound):
    """Explicit coupon_ids that are not among the user's coupons (unknown or someone else's)."""
    code = "coupon_not_found"

    def __init__(self, coupon_ids: tuple[str, ...]):
        self.coupon_ids = tuple(coupon_ids)
        super().__init__(f"Coupon not found: {', '.join(self.coupon_ids)}",
                         details=[{"field": "coupon_ids", "message": "not found", "coupon_id": coupon_id}
                                  for coupon_id in self.coupon_ids])


class CouponsDoNotStack(Conflict):
    """Explicit coupon_ids that may not be used together (same stack group, or the stacking matrix)."""
    code = "coupons_do_not_stack"

    def __init__(self, coupon_ids: tuple[str, ...]):
        self.coupon_ids = tuple(coupon_ids)
        super().__init__(f"These coupons cannot be used together: {', '.join(self.coupon_ids)}",
                         details=[{"field": "coupon_ids", "message": "does not stack", "coupon_id": coupon_id}
                                  for coupon_id in self.coupon_ids])


class CouponNotApplicable(Conflict):
    """An explicitly chosen coupon that cannot apply to this order; `reason` is one of REASON_CODES."""
    code = "coupon_not_applicable"

    def __init__(self, coupon_id: str, reason: str, reason_text: str | None = None):
        self.coupon_id = coupon_id
        self.reason = reason
        self.reason_text = reason_text
        super().__init__(f"Coupon {coupon_id} cannot be used for this order: {reason}",
                         details=[{"field": "coupon_ids", "message": reason_text or reason,
                                   "coupon_id": coupon_id, "reason": reason}])
