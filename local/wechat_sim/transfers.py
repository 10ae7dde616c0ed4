"""WeChat Pay v3 商家转账到零钱 (batch transfers to a user's WeChat balance), as documented:

  POST /v3/transfer/batches                                              发起商家转账
  GET  /v3/transfer/batches/out-batch-no/{no}/details/out-detail-no/{d}  查询明细单

Requests must carry the merchant's v3 signature (pay_v3.verify_request); answers are signed.
A batch is paid at once: each detail SUCCESS, unless its openid is in the `fail_openids` knob
(POST /__sim/pay/transfers/config) -> FAIL with ACCOUNT_FROZEN; an openid in `refuse_openids`
(one not of this appid) is refused, 400 PARAM_ERROR, and no batch is made. A detail of 2,000
yuan (200,000 fen) or more needs `user_name` (the payee's real name, encrypted): 400 PARAM_ERROR. The same out_batch_no asked again
with the same content answers the same batch (what makes our retries safe); with other content,
400 INVALID_REQUEST. GET /__sim/pay/transfers lists every batch (dev).
"""
from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .pay_keys import pay_config
from .pay_store import rfc3339
from .pay_v3 import _json_body, error, param_error, signed, verify_request
from .server import Request, Response, Router, json_response

NO_RE = re.compile(r"^[0-9A-Za-z]{5,32}$")
USER_NAME_FROM_FEN = 200_000
_ids = itertools.count(1)


@dataclass
class TransferBook:
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_openids: set[str] = field(default_factory=set)
    refuse_openids: set[str] = field(default_factory=set)


def _book(state: Any) -> TransferBook:
    return state.namespace("transfers", TransferBook)


def register(router: Router) -> None:
    router.add("POST", "/v3/transfer/batches", create_batch, name="pay_v3_transfer_batch")
    router.add("GET", "/v3/transfer/batches/out-batch-no/{no}/details/out-detail-no/{detail}", detail,
               name="pay_v3_transfer_detail")
    router.add("GET", "/__sim/pay/transfers", view)
    router.add("POST", "/__sim/pay/transfers/config", config)


def _validate(req: Request, body: dict[str, Any]) -> Response | None:
    if body.get("appid") not in req.state.apps:
        return error(req, 400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
    if not isinstance(body.get("out_batch_no"), str) or not NO_RE.match(body["out_batch_no"]):
        return param_error(req, "/out_batch_no", "5..32 letters or digits", body.get("out_batch_no"))
    details = body.get("transfer_detail_list")
    if not isinstance(details, list) or not 1 <= len(details) <= 1000 or body.get("total_num") != len(details):
        return param_error(req, "/transfer_detail_list", "1..1000 details, as many as total_num")
    for item in details:
        if (not isinstance(item, dict) or not isinstance(item.get("out_detail_no"), str)
                or not NO_RE.match(item["out_detail_no"]) or not isinstance(item.get("openid"), str)
                or not isinstance(item.get("transfer_amount"), int) or item["transfer_amount"] < 10):
            return param_error(req, "/transfer_detail_list", "out_detail_no, openid and transfer_amount >= 10 fen")
        if item["transfer_amount"] >= USER_NAME_FROM_FEN and not item.get("user_name"):
            return param_error(req, "/transfer_detail_list/user_name", "明细金额大于等于2000元时，收款用户姓名必填",
                               item["transfer_amount"])
    if body.get("total_amount") != sum(item["transfer_amount"] for item in details):
        return param_error(req, "/total_amount", "must be the sum of the details", body.get("total_amount"))
    return None


def create_batch(req: Request) -> Response:
    body = verify_request(req) or _json_body(req)
    if isinstance(body, Response):
        return body
    problem = _validate(req, body)
    if problem:
        return problem
    book, now = _book(req.state), req.state.now()
    with req.state.lock:
        refused = [item["openid"] for item in body["transfer_detail_list"] if item["openid"] in book.refuse_openids]
    if refused:
        return param_error(req, "/transfer_detail_list/openid", "openid与appid不匹配", refused[0])
    fingerprint = json.dumps(body, sort_keys=True, ensure_ascii=False)
    with req.state.lock:
        batch = book.batches.get(body["out_batch_no"])
        if batch is not None and batch["fingerprint"] != fingerprint:
            return error(req, 400, "INVALID_REQUEST", "商户批次单号已存在，且内容不一致")
        if batch is None:
            batch_id = f"1030000{next(_ids):07d}"
            batch = {"fingerprint": fingerprint, "batch_id": batch_id, "appid": body["appid"],
                     "out_batch_no": body["out_batch_no"], "create_time": rfc3339(now), "details": {}}
            for item in body["transfer_detail_list"]:
                failed = item["openid"] in book.fail_openids
                batch["details"][item["out_detail_no"]] = {
                    "out_detail_no": item["out_detail_no"], "detail_id": f"1040000{next(_ids):07d}",
                    "detail_status": "FAIL" if failed else "SUCCESS", "transfer_amount": item["transfer_amount"],
                    "transfer_remark": item.get("transfer_remark", ""), "openid": item["openid"],
                    "fail_reason": "ACCOUNT_FROZEN" if failed else None,
                    "initiate_time": rfc3339(now), "update_time": rfc3339(now)}
            book.batches[body["out_batch_no"]] = batch
        answer = {"out_batch_no": batch["out_batch_no"], "batch_id": batch["batch_id"],
                  "create_time": batch["create_time"], "batch_status": "ACCEPTED"}
    return signed(req, 200, answer)


def detail(req: Request) -> Response:
    problem = verify_request(req)
    if problem:
        return problem
    book = _book(req.state)
    with req.state.lock:
        batch = book.batches.get(req.params["no"])
        item = (batch or {}).get("details", {}).get(req.params["detail"])
        if item is None:
            return error(req, 404, "NOT_FOUND", "记录不存在")
        answer = {"mchid": pay_config(req.state).mchid,
                  "out_batch_no": batch["out_batch_no"], "batch_id": batch["batch_id"], "appid": batch["appid"],
                  **{k: v for k, v in item.items() if v is not None}}
    return signed(req, 200, answer)


def view(req: Request) -> Response:
    book = _book(req.state)
    with req.state.lock:
        items = [{k: v for k, v in batch.items() if k != "fingerprint"} for batch in book.batches.values()]
    return json_response({"batches": items})


def config(req: Request) -> Response:
    body = req.json_object()
    book = _book(req.state)
    with req.state.lock:
        book.fail_openids = set(body.get("fail_openids") or ())
        book.refuse_openids = set(body.get("refuse_openids") or ())
    return json_response({"ok": True, "fail_openids": sorted(book.fail_openids),
                          "refuse_openids": sorted(book.refuse_openids)})
