"""Coupon claims racing on AWS's DynamoDB Local engine: the template's `issued` counter and the
wallet's per-user counter hold under real concurrent transactions."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from chalicelib import clock
from chalicelib.domain.coupons import CouponScope
from chalicelib.services import coupons as coupon_service
from chalicelib.storage import coupons
from chalicelib.storage.base import ConditionFailed
from chalicelib.storage.coupons import CouponTemplate, CouponWalletRecord
from tests.integration.concurrency import race

pytestmark = pytest.mark.dynamodb_local


def make_template(total: int, per_user_limit: int) -> CouponTemplate:
    now = clock.now()
    template = CouponTemplate(
        template_id="tpl-race", name="满50减5", kind="full_reduction", threshold_fen=5000, off_fen=500, rate_permille=0,
        cap_fen=0, scope=CouponScope(), valid_from=None, valid_to=None, valid_days=3, claim_from=None, claim_to=None,
        total=total, issued=0, per_user_limit=per_user_limit, channel="claim", stack_group="default",
        status="active", terms_version=1, created_at=now, updated_at=now)
    coupons.create_template(template)
    return template


def coupons_in_wallets() -> list:
    return [coupon for record in CouponWalletRecord.scan(consistent_read=True)
            for coupon in coupons.get_wallet(record.user_id, consistent=True).coupons]


def test_fifty_buyers_race_for_the_last_ten(dynamodb_local):
    make_template(total=12, per_user_limit=1)
    for early in ("early-1", "early-2"):
        coupon_service.claim(early, "tpl-race")

    outcomes = race(50, lambda n: coupon_service.claim(f"buyer-{n}", "tpl-race").coupon_id)

    codes = Counter(outcome if outcome in ("coupon_sold_out", "service_unavailable") else "claimed"
                    for outcome in outcomes)
    assert codes["claimed"] == 10 and codes["coupon_sold_out"] == 40, codes
    template = coupons.get_template("tpl-race", consistent=True)
    assert template.issued == template.total == 12
    held = coupons_in_wallets()
    assert len(held) == 12 and len({coupon.coupon_id for coupon in held}) == 12


def test_one_buyer_racing_themself_gets_exactly_their_limit(dynamodb_local):
    make_template(total=100, per_user_limit=2)

    outcomes = race(10, lambda n: coupon_service.claim("greedy", "tpl-race").coupon_id)

    assert Counter(outcome == "claim_limit_reached" for outcome in outcomes) == {True: 8, False: 2}, outcomes
    wallet = coupons.get_wallet("greedy", consistent=True)
    assert len(wallet.coupons) == 2 and wallet.claims == {"tpl-race": 2}
    assert coupons.get_template("tpl-race", consistent=True).issued == 2


def test_one_coupon_is_locked_by_one_order_only(dynamodb_local):
    make_template(total=10, per_user_limit=1)
    coupon_id = coupon_service.claim("u1", "tpl-race").coupon_id

    def lock(n: int) -> str:
        try:
            coupons.lock_coupons("u1", [coupon_id], f"order-{n}", clock.now() + timedelta(seconds=1)).apply()
            return f"order-{n}"
        except ConditionFailed:
            return "refused"

    outcomes = race(10, lock)

    winners = [outcome for outcome in outcomes if outcome != "refused"]
    assert len(winners) == 1
    assert coupons.get_wallet("u1", consistent=True).history[coupon_id].order_id == winners[0]
