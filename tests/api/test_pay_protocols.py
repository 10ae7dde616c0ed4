"""A notify of a WeChat Pay version the store is not configured for is refused before anything is
verified, and changes nothing: on a v3 store (with or without a v2 key lying around) anyone can
sign a v2 notify with an empty key (`...&key=` is valid MD5 input) or seal a refund notify's
req_info with md5(""), so the v2 routes must not verify at all there."""
from __future__ import annotations

import uuid

import pytest

from chalicelib.settings import SettingsError, load_settings
from chalicelib.storage import orders
from chalicelib.storage import payments as payment_store
from chalicelib.storage.payments import PaymentRecord
from chalicelib.wechat import pay_v2
from tests.api.helpers import log_in, place_pickup_order
from tests.conftest import TEST_ENV, reset_process_caches

XML = {"Content-Type": "text/xml"}


@pytest.fixture
def shopper(client, demo_store, notify_bridge):
    return log_in(client)[0]


@pytest.fixture(params=["no_v2_key", "v2_key_of_a_former_setup"])
def v3_store(request, monkeypatch, wechat_sim):
    """A v3 merchant: docs/operations.md tells them they need no v2 key; some still have one."""
    if request.param == "no_v2_key":
        monkeypatch.delenv("WECHAT_PAY_API_KEY", raising=False)
    monkeypatch.setenv("WECHAT_PAY_VERSION", "v3")
    reset_process_caches()
    return request.param


def _order(client, token) -> dict:
    return place_pickup_order(client, token, "sku-durian-3kg")


def _xml(fields: dict[str, str]) -> bytes:
    return ("<xml>" + "".join(f"<{k}>{v}</{k}>" for k, v in fields.items()) + "</xml>").encode("utf-8")


def _self_signed_pay_notify(order: dict, sign_type: str) -> bytes:
    fields = {"return_code": "SUCCESS", "result_code": "SUCCESS", "appid": TEST_ENV["WECHAT_APPID"],
              "mch_id": "1900000109", "out_trade_no": order["out_trade_no"], "transaction_id": "4200000000forged",
              "total_fee": str(order["payable_fen"]), "openid": "o-forger", "trade_type": "JSAPI",
              "time_end": "20261204120000", "nonce_str": uuid.uuid4().hex, "sign_type": sign_type}
    fields["sign"] = pay_v2.sign_v2(fields, "", sign_type)  # signed with the empty key
    return _xml(fields)


@pytest.mark.parametrize("sign_type", ["MD5", "HMAC-SHA256"])
def test_a_v3_store_refuses_a_self_signed_v2_payment_notify(client, shopper, v3_store, sign_type):
    order = _order(client, shopper)
    response = client.http.post("/v1/payments/wechat/notify", headers=XML,
                                body=_self_signed_pay_notify(order, sign_type))
    assert orders.get_order(order["order_id"]).status == "pending_payment"
    assert PaymentRecord.count() == 0
    assert response.status_code == 404 and b"<return_code>FAIL</return_code>" in response.body


def test_a_v3_store_refuses_a_self_sealed_v2_refund_notify(client, shopper, v3_store):
    order = _order(client, shopper)
    refund = payment_store.Refund(
        out_refund_no="RFforged1", order_id=order["order_id"], transaction_id="4200000000real", amount_fen=100,
        status="processing", reason="test", refund_id=None, request_id=None, lines=(), restock="no",
        created_at=orders.get_order(order["order_id"]).created_at, completed_at=None)
    assert payment_store.create_refund(refund)
    for status in ("SUCCESS", "REFUNDCLOSE", "CHANGE"):
        secret = _xml({"out_refund_no": "RFforged1", "refund_id": "50000forged", "out_trade_no": order["out_trade_no"],
                       "transaction_id": "4200000000real", "refund_fee": "100", "total_fee": str(order["payable_fen"]),
                       "refund_status": status, "success_time": "2026-12-04 12:00:00"}).decode()
        body = _xml({"return_code": "SUCCESS", "appid": TEST_ENV["WECHAT_APPID"], "mch_id": "1900000109",
                     "req_info": pay_v2.encrypt_refund_req_info(secret, "")})  # AES key md5("")
        response = client.http.post("/v1/payments/wechat/refund-notify", headers=XML, body=body)
        assert payment_store.get_refund("RFforged1").status == "processing"
        assert response.status_code == 404 and b"FAIL" in response.body


def test_a_v2_store_refuses_every_v3_notify_before_verifying(client, shopper, monkeypatch):
    monkeypatch.setenv("WECHAT_PAY_VERSION", "v2")
    reset_process_caches()
    response = client.http.post("/v1/payments/wechat/v3/notify", headers={"Content-Type": "application/json"},
                                body=b'{"id": "x", "event_type": "TRANSACTION.SUCCESS"}')
    assert response.status_code == 404 and b'"FAIL"' in response.body


@pytest.mark.parametrize("key", ["", "short", "x" * 33])
def test_a_v2_store_needs_an_api_key_of_exactly_32_characters(monkeypatch, key):
    monkeypatch.setenv("WECHAT_PAY_VERSION", "v2")
    monkeypatch.setenv("WECHAT_PAY_API_KEY", key)
    with pytest.raises(SettingsError, match="32 characters"):
        load_settings()


@pytest.mark.parametrize("key", ["", "k" * 31])
def test_the_v2_verifier_never_verifies_with_a_key_that_is_not_32_characters(key):
    fields = {"return_code": "SUCCESS", "out_trade_no": "T1", "nonce_str": "n"}
    fields["sign"] = pay_v2.sign_v2(fields, key)
    with pytest.raises(pay_v2.PaySignatureError):
        pay_v2.verify_sign_v2(fields, key)
    with pytest.raises(pay_v2.PaySignatureError):
        pay_v2.decrypt_refund_req_info(pay_v2.encrypt_refund_req_info("<xml></xml>", key), key)
