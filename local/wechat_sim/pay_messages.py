"""Notify messages as WeChat Pay sends them, and their tampered variants.

v3: JSON envelope whose ``resource`` is AEAD_AES_256_GCM-encrypted with the
APIv3 key (associated_data "transaction" / "refund"), signed per delivery in
the ``Wechatpay-*`` headers.  v2: signed ``<xml>`` for payments; for refunds
an unsigned ``<xml>`` whose ``req_info`` is AES-256-ECB with md5(API key).
``corrupt`` produces what an attacker or a bug would send (see CORRUPTIONS).
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from . import pay_crypto as pc
from .pay_keys import pay_config
from .pay_store import (Refund, Transaction, rfc3339, v2_datetime, v2_time, v3_refund_notify_json,
                        v3_transaction_json)

STALE_TIMESTAMP_S = 600          # corrupt="timestamp": signed 10 minutes in the past
OTHER_MCHID, OTHER_APPID = "1900000000", "wx0000000000000000"

# What each corruption does; which (api, kind) it applies to.
CORRUPTIONS = {
    "signature": "signature over a different message",
    "ciphertext": "one byte of the encrypted resource / req_info flipped",
    "timestamp": "correctly signed, but with a timestamp 10 minutes old",
    "serial": "correctly signed, but Wechatpay-Serial names an unknown key",
    "amount": "correctly signed and encrypted, but the amount is off by one fen",
    "mchid": "correctly signed and encrypted, but for another mchid",
    "appid": "correctly signed and encrypted, but for another appid",
}
APPLICABLE = {
    ("v3", "pay"): set(CORRUPTIONS),
    ("v3", "refund"): set(CORRUPTIONS) - {"appid"},
    ("v2", "pay"): {"signature", "amount", "mchid", "appid"},
    ("v2", "refund"): {"ciphertext", "amount", "mchid", "appid"},
}
REFUND_EVENTS = {"SUCCESS": ("REFUND.SUCCESS", "退款成功", "SUCCESS"),
                 "ABNORMAL": ("REFUND.ABNORMAL", "退款异常", "CHANGE"),
                 "CLOSED": ("REFUND.CLOSED", "退款关闭", "REFUNDCLOSE")}


class KnobError(ValueError):
    pass


def check_corrupt(api: str, kind: str, corrupt: str | None) -> None:
    if corrupt and corrupt not in APPLICABLE[(api, kind)]:
        raise KnobError(f"corrupt={corrupt!r} does not apply to a {api} {kind} notify "
                        f"(use one of {sorted(APPLICABLE[(api, kind)])})")


def _flip_b64(text: str) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[0] ^= 0x01
    return base64.b64encode(bytes(raw)).decode("ascii")


def _v3_envelope(state: Any, event: str, summary: str, original: str, plain: dict, corrupt: str | None) -> bytes:
    config = pay_config(state)
    nonce = pc.nonce_str(12)
    ciphertext = pc.gcm_encrypt(config.apiv3_key.encode("utf-8"), nonce, original,
                                json.dumps(plain, ensure_ascii=False, separators=(",", ":")))
    if corrupt == "ciphertext":
        ciphertext = _flip_b64(ciphertext)
    envelope = {"id": str(uuid.uuid4()), "create_time": rfc3339(state.now()),
                "resource_type": "encrypt-resource", "event_type": event, "summary": summary,
                "resource": {"original_type": original, "algorithm": "AEAD_AES_256_GCM",
                             "ciphertext": ciphertext, "associated_data": original, "nonce": nonce}}
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def pay_body(state: Any, txn: Transaction, corrupt: str | None) -> bytes:
    config = pay_config(state)
    total = txn.total + (1 if corrupt == "amount" else 0)
    mchid = OTHER_MCHID if corrupt == "mchid" else txn.mchid
    appid = OTHER_APPID if corrupt == "appid" else txn.appid
    if txn.api == "v3":
        plain = v3_transaction_json(txn)
        # A payment notify always reports the payment, even if refunds followed.
        plain.update(mchid=mchid, appid=appid, trade_state="SUCCESS", trade_state_desc="支付成功")
        plain["amount"].update(total=total, payer_total=total)
        return _v3_envelope(state, "TRANSACTION.SUCCESS", "支付成功", "transaction", plain, corrupt)
    params = {"appid": appid, "attach": txn.attach or None, "bank_type": "OTHERS", "cash_fee": str(total),
              "fee_type": "CNY", "is_subscribe": "N", "mch_id": mchid, "nonce_str": pc.nonce_str(),
              "openid": txn.openid, "out_trade_no": txn.out_trade_no, "result_code": "SUCCESS",
              "return_code": "SUCCESS", "time_end": v2_time(txn.success_at or state.now()),
              "total_fee": str(total), "trade_type": "JSAPI", "transaction_id": txn.transaction_id or "",
              "sign_type": "HMAC-SHA256" if txn.sign_type == "HMAC-SHA256" else None}
    params = {k: v for k, v in params.items() if v is not None}
    key = config.api_key + ("-wrong" if corrupt == "signature" else "")
    params["sign"] = pc.v2_sign(params, key, txn.sign_type)
    return pc.to_xml(params)


def refund_body(state: Any, txn: Transaction, refund: Refund, corrupt: str | None) -> tuple[bytes, str]:
    config = pay_config(state)
    event, summary, v2_status = REFUND_EVENTS[refund.status]
    amount = refund.refund + (1 if corrupt == "amount" else 0)
    mchid = OTHER_MCHID if corrupt == "mchid" else txn.mchid
    if refund.api == "v3":
        plain = v3_refund_notify_json(txn, refund)
        plain["mchid"] = mchid
        plain["amount"].update(refund=amount, payer_refund=amount)
        return _v3_envelope(state, event, summary, "refund", plain, corrupt), event
    inner = {"out_refund_no": refund.out_refund_no, "out_trade_no": txn.out_trade_no,
             "refund_account": "REFUND_SOURCE_UNSETTLED_FUNDS", "refund_fee": str(amount),
             "refund_id": refund.refund_id, "refund_recv_accout": "支付用户的零钱",
             "refund_request_source": "API", "refund_status": v2_status,
             "settlement_refund_fee": str(amount), "settlement_total_fee": str(txn.total),
             "success_time": v2_datetime(refund.success_at) if refund.success_at else None,
             "total_fee": str(txn.total), "transaction_id": refund.transaction_id}
    req_info = pc.ecb_encrypt(config.api_key, pc.to_xml(inner, root="root").decode("utf-8"))
    if corrupt == "ciphertext":
        req_info = _flip_b64(req_info)
    outer = {"return_code": "SUCCESS", "appid": OTHER_APPID if corrupt == "appid" else txn.appid,
             "mch_id": mchid, "nonce_str": pc.nonce_str(), "req_info": req_info}
    return pc.to_xml(outer), event


def v3_headers(state: Any, body: bytes, corrupt: str | None) -> dict[str, str]:
    """Signature headers for one delivery attempt (fresh timestamp and nonce)."""
    config = pay_config(state)
    serial, key = config.signer()
    stamp = int(state.wall_now()) - (STALE_TIMESTAMP_S if corrupt == "timestamp" else 0)
    nonce = pc.nonce_str(32)
    message = f"{stamp}\n{nonce}\n{body.decode('utf-8')}\n"
    signature = pc.rsa_sign(key, message + ("tampered" if corrupt == "signature" else ""))
    if corrupt == "serial":
        serial = ("PUB_KEY_ID_0199999999999999999999999999" if serial.startswith("PUB_KEY_ID_")
                  else "7" * 40)
    return {"Wechatpay-Timestamp": str(stamp), "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": signature, "Wechatpay-Serial": serial,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"}
