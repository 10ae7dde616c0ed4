"""Distribution over HTTP with the WeChat simulator: the demo distributor's share link, a referred
buyer's paid order (its stream records reconciled as the consumer would), the ledger frozen ->
available -> withdrawn, withdrawals (request_id idempotent, never above available), approval paying
once by a signed transfer to the WeChat balance, rejection, a failed transfer, and a crash between
approval and transfer healed by the sweep."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib import clock
from chalicelib.domain.posters import encode_scene
from chalicelib.services import commissions, withdrawals
from chalicelib.storage import orders
from tests.api.helpers import admin_token, assert_envelope, call, log_in, place_pickup_order, sim_call

SKU = "sku-fuji-5"  # p-fuji: 10% to the referrer, 3% to theirs (local/demo_store.json)


@pytest.fixture
def shop(client, demo_store, notify_bridge, monkeypatch):
    monkeypatch.setenv("COMMISSION_FREEZE_DAYS", "0")  # available as soon as the order completes
    distributor, _ = log_in(client, "fenxiao-1")  # the demo distributor
    code = call(client, "GET", "/v1/me", token=distributor)[1]["referral_code"]
    buyer, _ = log_in(client, "bob-1")
    status, body, _ = call(client, "POST", "/v1/referrals/bind", {"scene": encode_scene(code, "p-fuji")}, token=buyer)
    assert status == 200, body
    return {"distributor": distributor, "buyer": buyer, "admin": admin_token(client)}


def _completed_paid_order(client, wechat_sim, token: str) -> dict:
    order = place_pickup_order(client, token, SKU, quantity=2)
    params = call(client, "POST", f"/v1/orders/{order['order_id']}/pay", token=token)[1]
    sim_call(wechat_sim, "POST", "/__sim/pay/request-payment", {**params, "wait": True})
    commissions.reconcile(order["order_id"])  # the stream record of the payment
    orders.change_status(order["order_id"], "paid", "completed", completed_at=clock.now())
    commissions.reconcile(order["order_id"])  # ... and of the completion
    return order


def _ledger(client, token: str) -> dict:
    status, body, _ = call(client, "GET", "/v1/me/commissions", token=token)
    assert status == 200, body
    return body


def _withdraw(client, token: str, amount: int, request_id: str):
    status, body, _ = call(client, "POST", "/v1/me/withdrawals", {"amount_fen": amount, "request_id": request_id},
                           token=token)
    return status, body


def _batches(wechat_sim) -> list[dict]:
    return sim_call(wechat_sim, "GET", "/__sim/pay/transfers")["batches"]


def test_commission_goes_frozen_then_available_then_withdrawn_paid_once_by_a_transfer(client, wechat_sim, shop):
    order = _completed_paid_order(client, wechat_sim, shop["buyer"])
    commission = order["lines"][0]["payable_fen"] * 100 // 1000
    ledger = _ledger(client, shop["distributor"])
    assert (ledger["frozen"], ledger["available"]) == (commission, 0)
    assert [(e["kind"], e["amount_fen"], e["ref"], e["level"]) for e in ledger["items"]] == \
        [("earn", commission, order["order_id"], 1)]
    assert commissions.settle_due() == {"settled": 1}
    assert _ledger(client, shop["distributor"])["available"] == commission

    status, body = _withdraw(client, shop["distributor"], commission + 1, "too-much")
    assert status == 409
    assert_envelope(body, "insufficient_commission")
    status, first = _withdraw(client, shop["distributor"], commission, "w-1")
    assert status == 201 and first["status"] == "requested", first
    assert _withdraw(client, shop["distributor"], commission, "w-1") == (200, first)  # the same request again
    status, body = _withdraw(client, shop["distributor"], commission - 1, "w-1")
    assert status == 409 and body["Code"] == "request_id_reused"

    status, listed, _ = call(client, "GET", "/v1/admin/withdrawals", token=shop["admin"])
    assert [item["withdrawal_id"] for item in listed["items"]] == [first["withdrawal_id"]]
    path = f"/v1/admin/withdrawals/{first['withdrawal_id']}"
    for _ in range(2):  # approving twice pays once
        status, approved, _ = call(client, "POST", f"{path}/approve", token=shop["admin"])
        assert status == 200 and approved["status"] == "paid" and approved["transfer_id"], approved
    batches = _batches(wechat_sim)
    assert len(batches) == 1 and batches[0]["out_batch_no"] == first["withdrawal_id"]
    ledger = _ledger(client, shop["distributor"])
    assert (ledger["frozen"], ledger["available"], ledger["pending"], ledger["withdrawn"]) == (0, 0, 0, commission)
    assert [e["kind"] for e in ledger["items"]] == ["paid", "withdraw", "settle", "earn"]
    status, body, _ = call(client, "POST", f"{path}/reject", {"reason": "late"}, token=shop["admin"])
    assert status == 409 and body["Code"] == "invalid_withdrawal_state"


def test_a_rejected_withdrawal_returns_the_amount_to_available(client, wechat_sim, shop):
    _completed_paid_order(client, wechat_sim, shop["buyer"])
    commissions.settle_due()
    available = _ledger(client, shop["distributor"])["available"]
    status, withdrawal = _withdraw(client, shop["distributor"], available, "w-r")
    assert _ledger(client, shop["distributor"])["pending"] == available
    path = f"/v1/admin/withdrawals/{withdrawal['withdrawal_id']}"
    for _ in range(2):
        status, rejected, _ = call(client, "POST", f"{path}/reject", {"reason": "资料不全"}, token=shop["admin"])
        assert status == 200 and rejected["status"] == "rejected" and rejected["reason"] == "资料不全"
    ledger = _ledger(client, shop["distributor"])
    assert (ledger["available"], ledger["pending"]) == (available, 0)
    assert call(client, "POST", f"{path}/approve", token=shop["admin"])[0] == 409
    assert _batches(wechat_sim) == []


def test_a_refund_claws_back_the_commission_and_withdrawals_cannot_take_it(client, wechat_sim, shop):
    order = place_pickup_order(client, shop["buyer"], SKU, quantity=2)
    params = call(client, "POST", f"/v1/orders/{order['order_id']}/pay", token=shop["buyer"])[1]
    sim_call(wechat_sim, "POST", "/__sim/pay/request-payment", {**params, "wait": True})
    commissions.reconcile(order["order_id"])
    frozen = _ledger(client, shop["distributor"])["frozen"]
    assert frozen > 0
    status, body, _ = call(client, "POST", f"/v1/orders/{order['order_id']}/after-sales",
                           {"kind": "refund", "reason": "不想要了", "lines": [{"sku_id": SKU, "quantity": 1}]},
                           token=shop["buyer"])
    assert status in (200, 201), body
    call(client, "POST", f"/v1/admin/after-sales/{body['request_id']}/approve", token=shop["admin"])
    sim_call(wechat_sim, "POST", "/__sim/pay/refund-notify",
             {"out_refund_no": _refund_no(order["order_id"]), "status": "SUCCESS", "wait": True})
    for _ in range(2):  # the refund's stream record, delivered twice
        commissions.reconcile(order["order_id"])
    ledger = _ledger(client, shop["distributor"])
    assert (ledger["frozen"], ledger["clawed_back"]) == (frozen - frozen // 2, frozen // 2)
    assert _withdraw(client, shop["distributor"], 100, "w-early")[0] == 409  # frozen is not withdrawable


def _refund_no(order_id: str) -> str:
    from chalicelib.storage import payments

    (refund,) = payments.refunds_of_order(order_id)
    return refund.out_refund_no


def test_a_crash_between_approval_and_transfer_is_healed_by_the_sweep(client, wechat_sim, shop, monkeypatch):
    from chalicelib.wechat import pay_v3_funds
    from chalicelib.wechat.pay_types import PayUnavailable

    _completed_paid_order(client, wechat_sim, shop["buyer"])
    commissions.settle_due()
    available = _ledger(client, shop["distributor"])["available"]
    withdrawal = _withdraw(client, shop["distributor"], available, "w-crash")[1]
    real = pay_v3_funds.FundsV3.transfer
    monkeypatch.setattr(pay_v3_funds.FundsV3, "transfer", lambda *a, **k: (_ for _ in ()).throw(PayUnavailable("x")))
    status, approved, _ = call(client, "POST", f"/v1/admin/withdrawals/{withdrawal['withdrawal_id']}/approve",
                               token=shop["admin"])
    assert status == 200 and approved["status"] == "approved"
    monkeypatch.setattr(pay_v3_funds.FundsV3, "transfer", real)
    assert withdrawals.heal_approved(now=clock.now()) == {"asked": 0}  # not a minute old yet
    assert withdrawals.heal_approved(now=clock.now() + timedelta(minutes=2)) == {"asked": 1}
    assert withdrawals.get_withdrawal(withdrawal["withdrawal_id"]).status == "paid"
    assert len(_batches(wechat_sim)) == 1
    assert _ledger(client, shop["distributor"])["withdrawn"] == available


def test_a_transfer_wechat_refuses_fails_the_withdrawal_and_returns_the_money(client, wechat_sim, shop):
    from chalicelib.storage import users

    _completed_paid_order(client, wechat_sim, shop["buyer"])
    commissions.settle_due()
    available = _ledger(client, shop["distributor"])["available"]
    withdrawal = _withdraw(client, shop["distributor"], available, "w-fail")[1]
    openid = users.get_user(withdrawals.get_withdrawal(withdrawal["withdrawal_id"]).user_id).openid
    sim_call(wechat_sim, "POST", "/__sim/pay/transfers/config", {"fail_openids": [openid]})
    approved = call(client, "POST", f"/v1/admin/withdrawals/{withdrawal['withdrawal_id']}/approve",
                    token=shop["admin"])[1]
    assert approved["status"] == "failed" and approved["reason"] == "ACCOUNT_FROZEN"
    ledger = _ledger(client, shop["distributor"])
    assert (ledger["available"], ledger["pending"], ledger["withdrawn"]) == (available, 0, 0)


def test_bad_withdrawal_bodies_are_400_and_admin_routes_need_an_admin(client, shop):
    for body in ({}, {"amount_fen": "100", "request_id": "x"}, {"amount_fen": 0, "request_id": "x"},
                 {"amount_fen": 100, "request_id": "a b"}):
        status, answer, _ = call(client, "POST", "/v1/me/withdrawals", body, token=shop["distributor"])
        assert status == 400, body
    assert _withdraw(client, shop["distributor"], 5, "tiny")[1]["Code"] == "invalid_withdrawal_amount"
    assert call(client, "GET", "/v1/admin/withdrawals", token=shop["buyer"])[0] == 403
    assert call(client, "POST", "/v1/admin/withdrawals/wnope/approve", token=shop["admin"])[0] == 404


def test_a_product_gets_its_own_rates_within_the_30_percent_profit_sharing_allows(client, shop):
    path = "/v1/admin/commission-rates/p-navel"
    status, body, _ = call(client, "PUT", path, {"level1_permille": 200, "level2_permille": 100}, token=shop["admin"])
    assert status == 200 and body == {"product_id": "p-navel", "level1_permille": 200, "level2_permille": 100}
    assert call(client, "GET", path, token=shop["admin"])[1] == body
    status, body, _ = call(client, "PUT", path, {"level1_permille": 250, "level2_permille": 100}, token=shop["admin"])
    assert status == 400 and body["Code"] == "invalid_commission_rate"
    assert call(client, "PUT", "/v1/admin/commission-rates/p-none", {"level1_permille": 1},
                token=shop["admin"])[0] == 404


def test_a_withdrawal_stays_below_the_2000_yuan_that_would_need_the_payees_real_name(monkeypatch, wechat_sim):
    from chalicelib import distribution_settings
    from chalicelib.wechat.pay_types import PayApiError

    assert distribution_settings.load().withdrawal_max_fen == 199_999
    monkeypatch.setenv("WITHDRAWAL_MAX_FEN", "200000")
    with pytest.raises(distribution_settings.DistributionSettingsError):
        distribution_settings.load()
    with pytest.raises(PayApiError) as refused:  # WeChat (the simulator) wants user_name from 2,000 yuan
        withdrawals._funds().transfer("wbig00001", "o-someone", 200_000, "佣金提现")
    assert refused.value.code == "PARAM_ERROR"


def _approved_withdrawal(client, wechat_sim, shop, request_id: str) -> tuple[dict, int]:
    _completed_paid_order(client, wechat_sim, shop["buyer"])
    commissions.settle_due()
    available = _ledger(client, shop["distributor"])["available"]
    return _withdraw(client, shop["distributor"], available, request_id)[1], available


def test_a_transfer_refused_for_good_fails_the_withdrawal_once_instead_of_retrying_forever(client, wechat_sim, shop):
    from chalicelib.storage import users

    withdrawal, available = _approved_withdrawal(client, wechat_sim, shop, "w-refused")
    openid = users.get_user(withdrawals.get_withdrawal(withdrawal["withdrawal_id"]).user_id).openid
    sim_call(wechat_sim, "POST", "/__sim/pay/transfers/config", {"refuse_openids": [openid]})  # not of this appid
    approved = call(client, "POST", f"/v1/admin/withdrawals/{withdrawal['withdrawal_id']}/approve",
                    token=shop["admin"])[1]
    assert approved["status"] == "failed" and approved["reason"] == "PARAM_ERROR"
    assert withdrawals.heal_approved(now=clock.now() + timedelta(minutes=2)) == {"asked": 0}
    ledger = _ledger(client, shop["distributor"])
    assert (ledger["available"], ledger["pending"], ledger["withdrawn"]) == (available, 0, 0)
    assert [e["kind"] for e in ledger["items"]].count("returned") == 1


def test_a_withdrawal_of_a_deleted_account_fails_and_is_not_asked_again(client, wechat_sim, shop):
    from chalicelib.storage import users

    withdrawal, _ = _approved_withdrawal(client, wechat_sim, shop, "w-gone")
    users.UserRecord(withdrawals.get_withdrawal(withdrawal["withdrawal_id"]).user_id).delete()
    approved = call(client, "POST", f"/v1/admin/withdrawals/{withdrawal['withdrawal_id']}/approve",
                    token=shop["admin"])[1]
    assert approved["status"] == "failed" and approved["reason"] == "no_user"
    assert withdrawals.heal_approved(now=clock.now() + timedelta(minutes=2)) == {"asked": 0}
    assert _batches(wechat_sim) == []
