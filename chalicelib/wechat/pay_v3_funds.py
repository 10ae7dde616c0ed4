"""Pay v3 money out of a payment: transfers to a user's WeChat balance (商家转账到零钱, batch API)
and profit sharing (分账). Same signer and answer verification as pay_v3.PayV3Client (every
answer's signature is checked before it is read).

Transfers: `POST /v3/transfer/batches` with one detail per withdrawal (out_batch_no =
out_detail_no = the withdrawal id, so asking again is the same transfer), then
`GET /v3/transfer/batches/out-batch-no/{no}/details/out-detail-no/{no}` for its word.
Profit sharing: `POST /v3/profitsharing/receivers/add`, `POST /v3/profitsharing/orders`,
`GET /v3/profitsharing/orders/{out_order_no}`, `POST /v3/profitsharing/orders/unfreeze`,
`POST /v3/profitsharing/return-orders`.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from chalicelib.wechat.pay_types import PayUnavailable
from chalicelib.wechat.pay_v3 import PayV3Client, _serial_key, platform_keys


@dataclass(frozen=True)
class TransferDetail:
    out_detail_no: str
    status: str  # INIT, WAIT_PAY, PROCESSING, SUCCESS, FAIL
    batch_id: str | None
    fail_reason: str | None


@dataclass(frozen=True)
class SharingOrder:
    out_order_no: str
    order_id: str
    state: str  # PROCESSING, FINISHED
    receivers: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class SharingReturn:
    out_return_no: str
    result: str  # PROCESSING, SUCCESS, FAILED
    amount_fen: int


def _need(data: dict[str, Any], *names: str) -> None:
    missing = [name for name in names if name not in data]
    if missing:
        raise PayUnavailable(f"the answer lacks {', '.join(missing)}")


class FundsV3:
    def __init__(self, client: PayV3Client):
        self._client = client
        self._appid = client._config.appid

    def transfer(self, out_no: str, openid: str, amount_fen: int, remark: str) -> str:
        """Ask for the transfer (again: the same batch); WeChat's batch id."""
        body = {"appid": self._appid, "out_batch_no": out_no, "batch_name": remark[:32], "batch_remark": remark[:32],
                "total_amount": int(amount_fen), "total_num": 1,
                "transfer_detail_list": [{"out_detail_no": out_no, "transfer_amount": int(amount_fen),
                                          "transfer_remark": remark[:32], "openid": openid}]}
        data = self._client._call("POST", "/v3/transfer/batches", body, api="transfer_batch")
        _need(data, "batch_id")
        return str(data["batch_id"])

    def transfer_detail(self, out_no: str) -> TransferDetail:
        path = (f"/v3/transfer/batches/out-batch-no/{quote(out_no, safe='')}"
                f"/details/out-detail-no/{quote(out_no, safe='')}")
        data = self._client._call("GET", path, None, api="transfer_detail")
        _need(data, "detail_status")
        return TransferDetail(out_no, str(data["detail_status"]), data.get("batch_id"), data.get("fail_reason"))

    def add_receiver(self, kind: str, account: str, name: str | None = None) -> None:
        """A MERCHANT_ID receiver needs `name` (the merchant's full name), sent encrypted."""
        relation = "STORE" if kind == "MERCHANT_ID" else "DISTRIBUTOR"
        body = {"appid": self._appid, "type": kind, "account": account, "relation_type": relation}
        headers = None
        if name:
            serial, body["name"] = self.encrypt_sensitive(name)
            headers = {"Wechatpay-Serial": serial}
        self._client._call("POST", "/v3/profitsharing/receivers/add", body, api="sharing_add_receiver",
                           extra_headers=headers)

    def encrypt_sensitive(self, value: str) -> tuple[str, str]:
        """(the Wechatpay-Serial naming the key, base64 RSA-OAEP(SHA-1) of `value`) with the platform
        public key when one is configured, else a platform certificate: how v3 sends sensitive fields."""
        config = self._client._config
        keys = platform_keys(config)
        serial = config.platform_public_key_id or next(iter(keys))
        key = keys[_serial_key(serial)]
        cipher = key.encrypt(value.encode("utf-8"),
                             padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(),
                                          label=None))
        return serial, base64.b64encode(cipher).decode("ascii")

    def share(self, transaction_id: str, out_order_no: str, receivers: list[dict[str, Any]]) -> SharingOrder:
        body = {"appid": self._appid, "transaction_id": transaction_id, "out_order_no": out_order_no,
                "receivers": receivers, "unfreeze_unsplit": False}
        return self._order(self._client._call("POST", "/v3/profitsharing/orders", body, api="sharing_order"))

    def query_share(self, transaction_id: str, out_order_no: str) -> SharingOrder:
        path = f"/v3/profitsharing/orders/{quote(out_order_no, safe='')}?transaction_id={quote(transaction_id)}"
        return self._order(self._client._call("GET", path, None, api="sharing_query"))

    def unfreeze(self, transaction_id: str, out_order_no: str) -> SharingOrder:
        body = {"transaction_id": transaction_id, "out_order_no": out_order_no, "description": "解冻剩余资金"}
        return self._order(self._client._call("POST", "/v3/profitsharing/orders/unfreeze", body,
                                              api="sharing_unfreeze"))

    def return_share(self, out_order_no: str, out_return_no: str, return_mchid: str, amount_fen: int) -> SharingReturn:
        body = {"out_order_no": out_order_no, "out_return_no": out_return_no, "return_mchid": return_mchid,
                "amount": int(amount_fen), "description": "退款回退分账"}
        data = self._client._call("POST", "/v3/profitsharing/return-orders", body, api="sharing_return")
        _need(data, "out_return_no", "result", "amount")
        return SharingReturn(str(data["out_return_no"]), str(data["result"]), int(data["amount"]))

    @staticmethod
    def _order(data: dict[str, Any]) -> SharingOrder:
        _need(data, "out_order_no", "order_id", "state")
        return SharingOrder(str(data["out_order_no"]), str(data["order_id"]), str(data["state"]),
                            tuple(data.get("receivers") or ()))
