"""Every public WeChat / WeChat Pay vector in ../shared/wechat-vectors, checked against OUR code.

One test per vector id. wechatpy is never called here: the point is that our own signer,
verifier and decryptors give the published answers.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509

from chalicelib.wechat import pay_v2, pay_v3, wxa_crypto
from chalicelib.wechat.pay_types import PayNotifyUnsupported, PaySignatureError

VECTORS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "wechat-vectors"
if not (VECTORS_DIR / "vectors.json").is_file():
    pytest.skip(f"the shared WeChat vectors are not checked out next to the project ({VECTORS_DIR})",
                allow_module_level=True)

VECTORS: dict[str, dict] = json.loads((VECTORS_DIR / "vectors.json").read_text(encoding="utf-8"))


def text(name: str) -> str:
    return (VECTORS_DIR / name).read_text(encoding="utf-8")


def config(**overrides) -> pay_v3.PayV3Config:
    values = dict(mchid="1234567890", appid="wx_test", api_base="http://127.0.0.1:9",
                  merchant_private_key_pem=text("wechatpay-go-test-private-key.pem"), merchant_cert_serial="X",
                  apiv3_key="a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb", platform_certs_pem=[])
    values.update(overrides)
    return pay_v3.PayV3Config(**values)


def signed_headers(private_key_pem: str, serial: str, body: bytes, stamp: int, nonce: str = "n0nce") -> dict:
    signature = pay_v3.rsa_sign(private_key_pem, f"{stamp}\n{nonce}\n".encode() + body + b"\n")
    return {"Wechatpay-Timestamp": str(stamp), "Wechatpay-Nonce": nonce, "Wechatpay-Signature": signature,
            "Wechatpay-Serial": serial}


def at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


# ---------------------------------------------------------------- APIv2

def check_v2_sign(v):
    expected = v.get("expected_sign") or v["expected_pay_sign"]
    assert pay_v2.sign_v2(v["params"], v["api_key"], v["sign_type"]) == expected
    pay_v2.verify_sign_v2({**v["params"], "sign": expected}, v["api_key"], v["sign_type"])
    with pytest.raises(PaySignatureError):
        pay_v2.verify_sign_v2({**v["params"], "sign": expected}, v["api_key"][::-1], v["sign_type"])


def check_jsapi_paysign_v2(v):
    check_v2_sign(v)
    p = v["params"]
    params = pay_v2.jsapi_pay_params_v2(p["appId"], p["package"].removeprefix("prepay_id="), v["api_key"],
                                        p["signType"], int(p["timeStamp"]), p["nonceStr"])
    assert params == {"timeStamp": p["timeStamp"], "nonceStr": p["nonceStr"], "package": p["package"],
                      "signType": "MD5", "paySign": v["expected_pay_sign"]}


def check_refund_notify_v2(v):
    assert pay_v2.decrypt_refund_req_info(v["req_info"], v["api_key"]) == v["expected_fields"]
    notification = pay_v2.parse_refund_notify((VECTORS_DIR / v["xml_file"]).read_bytes(), v["api_key"])
    refund, fields = notification.refund, v["expected_fields"]
    assert notification.kind == "refund" and notification.transaction is None
    assert (refund.out_refund_no, refund.refund_id, refund.out_trade_no, refund.transaction_id) == (
        fields["out_refund_no"], fields["refund_id"], fields["out_trade_no"], fields["transaction_id"])
    assert (refund.refund_fen, refund.total_fen, refund.status) == (1, 1, "SUCCESS")
    assert refund.success_time == datetime(2020, 1, 4, 10, 34, 24, tzinfo=timezone.utc)
    with pytest.raises(PaySignatureError):
        pay_v2.decrypt_refund_req_info(v["req_info"], "x" + v["api_key"])


def check_aes_ecb_php(v):
    key = v["key"].encode("ascii")
    assert base64.b64encode(pay_v2.aes_ecb_encrypt(key, v["plaintext"].encode())).decode() == v["ciphertext_b64"]
    assert pay_v2.aes_ecb_decrypt(key, base64.b64decode(v["ciphertext_b64"])) == v["plaintext"].encode()


# ---------------------------------------------------------------- mini-program

def check_wxa_encrypted_data(v):
    args = (v["encrypted_data"], v["session_key"], v["iv"])
    assert wxa_crypto.decrypt_encrypted_data(*args, v["appid"]) == v["expected_json"]
    with pytest.raises(wxa_crypto.WxaDecryptError):
        wxa_crypto.decrypt_encrypted_data(*args, "wx_another_app")
    with pytest.raises(wxa_crypto.WxaDecryptError):
        wxa_crypto.decrypt_encrypted_data(v["encrypted_data"], "o0q0otL8aEzpcZL/FT9WsQ==", v["iv"], v["appid"])


def check_wxa_session_signature(v):
    assert wxa_crypto.wxa_session_signature(v["session_key"], v["post_data"]) == v["expected_signature"]
    assert wxa_crypto.wxa_session_signature(v["session_key"], v["post_data"].encode()) == v["expected_signature"]


def check_rawdata_signature(v):
    assert wxa_crypto.rawdata_signature(v["raw_data"], v["session_key"]) == v["expected_signature"]
    assert wxa_crypto.verify_rawdata_signature(v["raw_data"], v["session_key"], v["expected_signature"])
    assert not wxa_crypto.verify_rawdata_signature(v["raw_data"] + " ", v["session_key"], v["expected_signature"])


# ---------------------------------------------------------------- APIv3

def check_v3_notify(v):
    cfg = config(apiv3_key=v["apiv3_key"], platform_certs_pem=[text(v["platform_cert_file"])])
    body, now = v["body"].encode("utf-8"), at(v["now"])
    pay_v3.verify_signature(v["headers"], body, pay_v3.platform_keys(cfg), now)
    resource = json.loads(v["body"])["resource"]
    assert pay_v3.decrypt_resource(resource, v["apiv3_key"]) == v["expected_plaintext"]
    with pytest.raises(PayNotifyUnsupported):  # signed and fresh, but a pay-score event we don't handle
        pay_v3.parse_notify(v["headers"], body, cfg, now)
    with pytest.raises(PaySignatureError):
        pay_v3.parse_notify(v["headers"], body, cfg, now + timedelta(seconds=301))
    with pytest.raises(PaySignatureError):
        pay_v3.verify_signature(v["headers"], body.replace(b"PAYSCORE", b"PAYSCORf"), pay_v3.platform_keys(cfg), now)


def check_v3_rsa_sign(v):
    private_pem = text(v["private_key_file"])
    assert pay_v3.rsa_sign(private_pem, v["message"].encode()) == v["expected_signature"]
    # The same key pair, configured as a platform public key, verifies what it signs.
    cfg = config(platform_public_key_pem=text(v["public_key_file"]), platform_public_key_id=v["public_key_id"])
    pay_v3.verify_signature(signed_headers(private_pem, v["public_key_id"], b"{}", 1700000000), b"{}",
                            pay_v3.platform_keys(cfg), at(1700000000))


def check_v3_gcm(v):
    resource = {"algorithm": "AEAD_AES_256_GCM", "nonce": v["nonce"], "associated_data": v["associated_data"],
                "ciphertext": v["ciphertext_b64"]}
    assert pay_v3.decrypt_resource(resource, v["key"]) == v["plaintext"]
    with pytest.raises(PaySignatureError):
        pay_v3.decrypt_resource({**resource, "associated_data": "tampered"}, v["key"])


def check_v3_certificates_download(v):
    item = json.loads(v["response_body"])["data"][0]
    pem = pay_v3.decrypt_resource(item["encrypt_certificate"], v["apiv3_key"])
    assert pem.startswith("-----BEGIN CERTIFICATE-----")
    assert set(pay_v3.platform_keys(config(platform_certs_pem=[pem]))) == {v["expected_serial"]}
    cert = x509.load_pem_x509_certificate(pem.encode())
    assert cert.not_valid_before_utc == datetime.fromisoformat(v["expected_not_before_utc"].replace("Z", "+00:00"))
    assert cert.not_valid_after_utc == datetime.fromisoformat(v["expected_not_after_utc"].replace("Z", "+00:00"))


def check_v3_request_sign_wechatpy(v):
    body = v["body"].encode()
    assert pay_v3.request_message(v["method"], v["url"], v["timestamp"], v["nonce_str"], body) == v["message"].encode()
    header = pay_v3.authorization_header(v["method"], v["url"], body, mchid="1900000001", serial_no="B821DD2CA045BB93",
                                         private_key=text(v["private_key_file"]), timestamp=int(v["timestamp"]),
                                         nonce=v["nonce_str"])
    assert header.startswith("WECHATPAY2-SHA256-RSA2048 ")
    fields = dict(re.findall(r'(\w+)="([^"]*)"', header))
    assert fields == {"mchid": "1900000001", "nonce_str": v["nonce_str"], "signature": v["expected_signature"],
                      "timestamp": v["timestamp"], "serial_no": "B821DD2CA045BB93"}


# ---------------------------------------------------------------- key material

def assert_pair(private_pem: str, cfg: pay_v3.PayV3Config, serial: str, matches: bool = True):
    headers = signed_headers(private_pem, serial, b'{"k":1}', 1700000000)
    if matches:
        pay_v3.verify_signature(headers, b'{"k":1}', pay_v3.platform_keys(cfg), at(1700000000))
    else:
        with pytest.raises(PaySignatureError):
            pay_v3.verify_signature(headers, b'{"k":1}', pay_v3.platform_keys(cfg), at(1700000000))


def check_keys_wechatpay_go(v):
    cfg = config(platform_certs_pem=[text(v["cert_file"])], platform_public_key_pem=text(v["public_key_file"]),
                 platform_public_key_id="PUB_KEY_ID_GO")
    assert set(pay_v3.platform_keys(cfg)) == {v["expected_cert_serial"], "PUB_KEY_ID_GO"}
    assert_pair(text(v["private_key_file"]), cfg, v["expected_cert_serial"])
    assert_pair(text(v["private_key_file"]), cfg, "PUB_KEY_ID_GO")


def check_keys_wechatpay_java(v):
    platform = config(platform_certs_pem=[text(v["platform_cert_file"])],
                      platform_public_key_pem=text(v["platform_public_key_file"]), platform_public_key_id="PUB_KEY_ID_J")
    assert_pair(text(v["platform_private_key_file"]), platform, v["expected_platform_cert_serial"])
    assert_pair(text(v["platform_private_key_file"]), platform, "PUB_KEY_ID_J")
    merchant = config(platform_certs_pem=[text(v["merchant_cert_file"])])
    assert set(pay_v3.platform_keys(merchant)) == {v["expected_merchant_cert_serial"]}
    assert_pair(text(v["merchant_private_key_file"]), merchant, v["expected_merchant_cert_serial"])
    assert_pair(text(v["merchant_private_key_file"]), platform, v["expected_platform_cert_serial"], matches=False)


def check_keys_wechatpy(v):
    cfg = config(platform_certs_pem=[text(v["cert_file"])])
    assert set(pay_v3.platform_keys(cfg)) == {v["expected_cert_serial"]}
    assert_pair(text(v["private_key_file"]), cfg, v["expected_cert_serial"], matches=v["expected_key_matches_cert"])


# ---------------------------------------------------------------- XML

def check_xml_fixture(v):
    fields = pay_v2.parse_xml((VECTORS_DIR / v["xml_file"]).read_bytes())
    assert {name: fields.get(name, "").strip() for name in v["expected_fields"]} == v["expected_fields"]
    if "expected_detail_goods_ids" in v:
        goods = json.loads(fields["detail"])["goods_detail"]
        assert [g["goods_id"] for g in goods] == v["expected_detail_goods_ids"]
    else:  # the pay notify: its fields map, but its sign (unpublished API key) never verifies with ours
        transaction = pay_v2.transaction_from_v2(fields)
        assert (transaction.trade_state, transaction.amount_total_fen) == ("SUCCESS", 1)
        assert transaction.success_time == datetime(2014, 9, 3, 5, 15, 40, tzinfo=timezone.utc)
        with pytest.raises(PaySignatureError):
            pay_v2.parse_notify_xml((VECTORS_DIR / v["xml_file"]).read_bytes(), "192006250b4c09247ec02edce69f6a2d")


def check_xml_xxe(v):
    body = (VECTORS_DIR / v["xml_file"]).read_bytes()
    assert f"<!ENTITY {v['expected_entity_name']} SYSTEM".encode() in body
    with pytest.raises(pay_v2.UnsafeXml):
        pay_v2.parse_xml(body)
    for parse in (lambda: pay_v2.parse_notify_xml(body, "k"), lambda: pay_v2.parse_pay_notify(body, "k"),
                  lambda: pay_v2.parse_refund_notify(body, "k")):
        with pytest.raises(PaySignatureError):  # a notify handler refuses it like any forgery
            parse()


CHECKS = {
    "pay_v2_sign_md5": check_v2_sign, "pay_v2_sign_hmac": check_v2_sign,
    "pay_v2_sign_wechatpy_md5": check_v2_sign, "pay_v2_sign_wechatpy_hmac": check_v2_sign,
    "pay_v2_jsapi_paysign": check_jsapi_paysign_v2, "refund_notify_v2": check_refund_notify_v2,
    "aes_ecb_php": check_aes_ecb_php, "wxa_encrypted_data": check_wxa_encrypted_data,
    "wxa_session_signature": check_wxa_session_signature, "rawdata_signature": check_rawdata_signature,
    "v3_notify": check_v3_notify, "v3_rsa_sign": check_v3_rsa_sign, "v3_gcm_go": check_v3_gcm,
    "v3_gcm_java": check_v3_gcm, "v3_certificates_download": check_v3_certificates_download,
    "v3_request_sign_wechatpy": check_v3_request_sign_wechatpy, "keys_wechatpay_go": check_keys_wechatpay_go,
    "keys_wechatpay_java": check_keys_wechatpay_java, "keys_wechatpy": check_keys_wechatpy,
    "xml_paysuccess_notify": check_xml_fixture, "xml_unifiedorder_request": check_xml_fixture,
    "xml_xxe_injection": check_xml_xxe,
}


@pytest.mark.parametrize("vector_id", sorted(VECTORS))
def test_vector(vector_id):
    vector = VECTORS[vector_id]
    assert vector_id in CHECKS, f"vector {vector_id} has no check here: add one"
    for name, digest in vector.get("files_sha256", {}).items():
        assert hashlib.sha256((VECTORS_DIR / name).read_bytes()).hexdigest() == digest, f"{name} changed"
    CHECKS[vector_id](vector)


def test_every_check_has_its_vector():
    assert set(CHECKS) <= set(VECTORS)
