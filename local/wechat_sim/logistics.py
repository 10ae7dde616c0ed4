"""物流助手 (logistics for merchants) on the simulator, and its path pushes.

  POST /cgi-bin/express/business/order/add?access_token=      "express_add_order"
  POST /cgi-bin/express/business/order/cancel?access_token=   "express_cancel_order"
  POST /cgi-bin/express/business/path/get?access_token=       "express_get_path"
  GET  /cgi-bin/express/business/delivery/getall?access_token= "express_get_all_delivery"

As WeChat answers (HTTP 200 + errcode): 41001/40001 for the access token; 47001 for a body of
the wrong shape; 9300503 an unknown delivery_id; addOrder with an order_id it has seen answers
that order's waybill again (the carrier "must generate the same waybill for the same OrderID");
cancel: 930563 unknown order, 40199 unknown waybill, 9300524 cancelled already, 9300506 once the
path has a pickup (or later) scan; getPath: 930563 unknown.

Dev only (never WeChat):
  POST /__sim/logistics/config {push_url?, token?}   where pushes go and the Token they are signed
                                                     with (defaults: $WECHAT_SIM_LOGISTICS_PUSH_URL,
                                                     $WECHAT_SIM_LOGISTICS_PUSH_TOKEN)
  POST /__sim/logistics/push {waybill_id | order_id, action_type?, action_msg?, action_time?,
                              push? (default true), times? (1-5 copies), forge? (a bad signature),
                              push_url?, token?}
        adds the scan (when action_type is given) to the waybill's path, then sends the signed
        add_express_path push of the whole path, as WeChat does, and answers what the app said
  GET  /__sim/logistics/waybills[?order_id=]         the waybills made (and their paths)
Pushes go to loopback URLs only, synchronously, each with a 5 s timeout.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import secrets
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode, urlsplit

from .open_api import _token_appid
from .server import Request, Response, Router, json_response, wx_error

CARRIERS = [
    ("SF", "顺丰速运", [(0, "标准快递"), (1, "顺丰即日")], "SF_CASH"),
    ("ZTO", "中通快递", [(0, "标准快件")], None),
    ("YTO", "圆通速递", [(0, "上门揽收")], None),
    ("YD", "韵达速递", [(0, "标准快件")], None),
    ("STO", "申通快递", [(0, "标准快递")], None),
    ("JD", "京东物流", [(0, "特快送")], None),
    ("EMS", "中国邮政速递物流", [(6, "标准快递"), (9, "快递包裹")], None),
    ("BEST", "百世快递", [(0, "标准快递")], None),
]
_BY_ID = {delivery_id: (name, dict(services)) for delivery_id, name, services, _ in CARRIERS}
PICKUP_OR_LATER = lambda action_type: action_type == 100001 or 200000 <= action_type < 400000  # noqa: E731
MAX_PATH = 200
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def register(router: Router) -> None:
    router.add("POST", "/cgi-bin/express/business/order/add", add_order, name="express_add_order")
    router.add("POST", "/cgi-bin/express/business/order/cancel", cancel_order, name="express_cancel_order")
    router.add("POST", "/cgi-bin/express/business/path/get", get_path, name="express_get_path")
    router.add("GET", "/cgi-bin/express/business/delivery/getall", get_all_delivery, name="express_get_all_delivery")
    router.add("POST", "/__sim/logistics/config", configure)
    router.add("POST", "/__sim/logistics/push", push)
    router.add("GET", "/__sim/logistics/waybills", list_waybills)


def _store(state: Any) -> dict[str, Any]:
    return state.namespace("logistics", lambda: {
        "waybills": {}, "by_waybill": {}, "next_no": 1,
        "push_url": os.environ.get("WECHAT_SIM_LOGISTICS_PUSH_URL") or None,
        "token": os.environ.get("WECHAT_SIM_LOGISTICS_PUSH_TOKEN") or None, "pushes": []})


def _text(value: Any, high: int) -> bool:
    return isinstance(value, str) and 1 <= len(value.strip()) and len(value.encode()) <= high


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _format_error(hint: str) -> Response:
    return wx_error(47001, f"data format error, hint: {hint}")


def _check_person(person: Any, who: str) -> str | None:
    if not isinstance(person, dict):
        return f"{who} must be an object"
    for field in ("name", "province", "city", "area", "address"):
        if not _text(person.get(field), 512 if field == "address" else 64):
            return f"{who}.{field} is required"
    if not (_text(person.get("mobile"), 32) or _text(person.get("tel"), 32)):
        return f"{who}.mobile or {who}.tel is required"
    return None


def _check_add(body: dict[str, Any]) -> Response | None:
    if not _text(body.get("order_id"), 512):
        return _format_error("order_id is required (at most 512 bytes)")
    if body.get("add_source", 0) not in (0, 2):
        return _format_error("add_source must be 0 or 2")
    if body.get("add_source", 0) == 0 and not _text(body.get("openid"), 128):
        return _format_error("openid is required when add_source is 0")
    if body.get("delivery_id") not in _BY_ID:
        return wx_error(9300503, "delivery_id not exist")
    if not _text(body.get("biz_id"), 64):
        return _format_error("biz_id is required")
    for who in ("sender", "receiver"):
        problem = _check_person(body.get(who), who)
        if problem:
            return _format_error(problem)
    cargo = body.get("cargo")
    if not isinstance(cargo, dict) or not _int(cargo.get("count")) or cargo["count"] < 1 \
            or not isinstance(cargo.get("weight"), (int, float)) or isinstance(cargo.get("weight"), bool) \
            or cargo["weight"] <= 0:
        return _format_error("cargo.count and cargo.weight are required")
    details = cargo.get("detail_list")
    if not isinstance(details, list) or not details or not all(
            isinstance(d, dict) and _text(d.get("name"), 256) and _int(d.get("count")) for d in details):
        return _format_error("cargo.detail_list is empty")
    if not isinstance(body.get("shop"), dict) or not isinstance(body.get("insured"), dict):
        return _format_error("shop and insured are required")
    service = body.get("service")
    if not isinstance(service, dict) or not _int(service.get("service_type")) \
            or service["service_type"] not in _BY_ID[body["delivery_id"]][1]:
        return _format_error("service.service_type is not one of the carrier's")
    if body["delivery_id"] == "SF" and not _int(body.get("expect_time")):
        return _format_error("expect_time is required for SF")
    return None


def add_order(req: Request) -> Response:
    appid = _token_appid(req)
    if isinstance(appid, Response):
        return appid
    body = req.json_object()
    problem = _check_add(body)
    if problem:
        return problem
    store = _store(req.state)
    with req.state.lock:
        key = f"{appid}|{body['order_id']}"
        waybill = store["waybills"].get(key)
        if waybill is None:  # the same order_id answers the same waybill
            number = store["next_no"]
            store["next_no"] += 1
            waybill = {"appid": appid, "order_id": body["order_id"], "delivery_id": body["delivery_id"],
                       "waybill_id": f"{body['delivery_id']}{7_000_000_000 + number:012d}",
                       "biz_id": body["biz_id"], "openid": body.get("openid"), "status": "created",
                       "created_at": req.state.now(), "path": [], "request": body, "adds": 0}
            store["waybills"][key] = waybill
            store["by_waybill"][waybill["waybill_id"]] = key
        waybill["adds"] += 1
        answer = {"errcode": 0, "errmsg": "ok", "order_id": waybill["order_id"], "waybill_id": waybill["waybill_id"],
                  "delivery_resultcode": 0, "delivery_resultmsg": "",
                  "waybill_data": [{"key": f"{waybill['delivery_id']}_bagAddr", "value": body["receiver"]["city"]},
                                   {"key": f"{waybill['delivery_id']}_mark", "value": "101- 07-03 509"}]}
    return json_response(answer)


def _find(req: Request, body: dict[str, Any]) -> tuple[str, dict[str, Any]] | Response:
    appid = _token_appid(req)
    if isinstance(appid, Response):
        return appid
    if not _text(body.get("order_id"), 512) or not _text(body.get("waybill_id"), 64):
        return _format_error("order_id and waybill_id are required")
    waybill = _store(req.state)["waybills"].get(f"{appid}|{body['order_id']}")
    if waybill is None:
        return wx_error(930563, "order not exist")
    if waybill["waybill_id"] != body["waybill_id"] or waybill["delivery_id"] != body.get("delivery_id"):
        return wx_error(40199, "waybill_id not exist")
    return appid, waybill


def cancel_order(req: Request) -> Response:
    body = req.json_object()
    with req.state.lock:
        found = _find(req, body)
        if isinstance(found, Response):
            return found
        _, waybill = found
        if waybill["status"] == "cancelled":
            return wx_error(9300524, "cancel order fail")
        if any(PICKUP_OR_LATER(item["action_type"]) for item in waybill["path"]):
            return wx_error(9300506, "waybill already has path, can not cancel")
        waybill["status"] = "cancelled"
    return json_response({"errcode": 0, "errmsg": "ok", "delivery_resultcode": 0, "delivery_resultmsg": ""})


def get_path(req: Request) -> Response:
    body = req.json_object()
    with req.state.lock:
        found = _find(req, body)
        if isinstance(found, Response):
            return found
        _, waybill = found
        items = [dict(item) for item in waybill["path"]]
        answer = {"errcode": 0, "errmsg": "ok", "openid": waybill["openid"], "delivery_id": waybill["delivery_id"],
                  "waybill_id": waybill["waybill_id"], "path_item_num": len(items), "path_item_list": items}
    return json_response(answer)


def get_all_delivery(req: Request) -> Response:
    appid = _token_appid(req)
    if isinstance(appid, Response):
        return appid
    data = [{"delivery_id": delivery_id, "delivery_name": name, "can_use_cash": 1 if cash else 0, "can_get_quota": 1,
             **({"cash_biz_id": cash} if cash else {}),
             "service_type": [{"service_type": kind, "service_name": label} for kind, label in services]}
            for delivery_id, name, services, cash in CARRIERS]
    return json_response({"count": len(data), "data": data})


# ---------------------------------------------------------------------------- dev endpoints

def _bad(message: str) -> Response:
    return json_response({"ok": False, "error": message}, status=400)


def _loopback_url(url: Any) -> bool:
    if not isinstance(url, str) or not url.startswith("http://"):
        return False
    host = urlsplit(url).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def configure(req: Request) -> Response:
    body = req.json_object()
    store = _store(req.state)
    if "push_url" in body and not _loopback_url(body["push_url"]):
        return _bad("push_url must be an http:// URL on loopback")
    if "token" in body and not (isinstance(body["token"], str) and 3 <= len(body["token"]) <= 64):
        return _bad("token must be 3..64 characters")
    with req.state.lock:
        store.update({name: body[name] for name in ("push_url", "token") if name in body})
    return json_response({"ok": True, "push_url": store["push_url"]})


def push(req: Request) -> Response:
    body = req.json_object()
    store, state = _store(req.state), req.state
    times = body.get("times", 1)
    if not _int(times) or not 1 <= times <= 5:
        return _bad("times must be 1..5")
    url, token = body.get("push_url") or store["push_url"], body.get("token") or store["token"]
    if body.get("push", True) and (not _loopback_url(url) or not isinstance(token, str) or not token):
        return _bad("configure push_url (loopback) and token first: POST /__sim/logistics/config")
    with state.lock:
        key = store["by_waybill"].get(body.get("waybill_id")) or next(
            (k for k, w in store["waybills"].items() if w["order_id"] == body.get("order_id")), None)
        if key is None:
            return _bad("no such waybill (waybill_id or order_id)")
        waybill = store["waybills"][key]
        event = None
        if "action_type" in body:
            if not _int(body["action_type"]) or len(waybill["path"]) >= MAX_PATH:
                return _bad("action_type must be an integer (and a path holds at most 200 scans)")
            when = body.get("action_time", int(state.wall_now()))
            if not _int(when) or when <= 0:
                return _bad("action_time must be Unix seconds")
            event = {"action_time": when, "action_type": body["action_type"],
                     "action_msg": str(body.get("action_msg") or f"scan {body['action_type']}")[:1024]}
            waybill["path"].append(event)
        message = _path_message(waybill, state)
    deliveries = []
    if body.get("push", True):
        for _ in range(times):
            deliveries.append(_send(url, token, message, forge=bool(body.get("forge")), now=int(state.wall_now())))
        with state.lock:
            store["pushes"].append({"waybill_id": waybill["waybill_id"], "deliveries": deliveries})
    return json_response({"ok": True, "event": event, "waybill_id": waybill["waybill_id"], "deliveries": deliveries})


def _path_message(waybill: dict[str, Any], state: Any) -> dict[str, Any]:
    path = waybill["path"]
    return {"ToUserName": "gh_sim_miniprogram", "FromUserName": waybill.get("openid") or "",
            "CreateTime": int(state.wall_now()), "MsgType": "event", "Event": "add_express_path",
            "DeliveryID": waybill["delivery_id"], "WayBillId": waybill["waybill_id"], "OrderId": waybill["order_id"],
            "Version": len(path), "Count": len(path),
            "Actions": [{"ActionTime": item["action_time"], "ActionType": item["action_type"],
                         "ActionMsg": item["action_msg"]} for item in path]}


def _send(url: str, token: str, message: dict[str, Any], *, forge: bool, now: int) -> dict[str, Any]:
    timestamp, nonce = str(now), secrets.token_hex(8)
    signature = hashlib.sha1("".join(sorted((token, timestamp, nonce))).encode()).hexdigest()
    if forge:
        signature = hashlib.sha1(f"forged{signature}".encode()).hexdigest()
    target = f"{url}?{urlencode({'signature': signature, 'timestamp': timestamp, 'nonce': nonce})}"
    request = urllib.request.Request(target, data=json.dumps(message, ensure_ascii=False).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with _OPENER.open(request, timeout=5) as answer:
            return {"status": answer.status, "body": answer.read(4096).decode("utf-8", "replace")}
    except urllib.error.HTTPError as error:
        return {"status": error.code, "body": error.read(4096).decode("utf-8", "replace")}
    except (urllib.error.URLError, OSError) as error:
        return {"status": None, "body": f"not delivered: {type(error).__name__}"}


def list_waybills(req: Request) -> Response:
    order_id = req.query.get("order_id")
    with req.state.lock:
        items = [{key: value for key, value in waybill.items() if key != "request"} | {"path": list(waybill["path"])}
                 for waybill in _store(req.state)["waybills"].values()
                 if order_id is None or waybill["order_id"] == order_id]
    return json_response({"items": items})
