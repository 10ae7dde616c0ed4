"""WeChat's logistics service for merchants (物流助手, express/by-business) and its path pushes.

    POST /cgi-bin/express/business/order/add      addOrder: make an e-waybill (order_id is ours:
                                                   the same order_id answers the same waybill)
    POST /cgi-bin/express/business/order/cancel   cancelOrder: before the parcel is picked up
    POST /cgi-bin/express/business/path/get       getPath: the waybill's trace so far
    GET  /cgi-bin/express/business/delivery/getall getAllDelivery: carriers and their services

Pushes (logistics.onPathUpdate, Event `add_express_path`) come through the mini-program's message
push: the URL's query carries `signature = sha1(sorted(token, timestamp, nonce) joined)`
(`push_signature`). An answer that lacks what we need is WeChatUnavailable, as in open_api.py.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from chalicelib.wechat.http import WeChatUnavailable, call_json

MAX_WAYBILL_ID = 64
MAX_PATH_ITEMS = 500  # a trace has tens of nodes; more is not WeChat answering
CANNOT_CANCEL_HAS_PATH = 9300506  # 运单 ID 已经存在轨迹,不可取消
ALREADY_CANCELLED = 9300524  # 取消订单失败(一般为重复取消订单)


@dataclass(frozen=True)
class Waybill:
    order_id: str
    waybill_id: str
    waybill_data: tuple[tuple[str, str], ...]  # key/value pairs the printed label needs


@dataclass(frozen=True)
class PathItem:
    action_time: int  # Unix seconds
    action_type: int
    action_msg: str


@dataclass(frozen=True)
class Carrier:
    delivery_id: str
    delivery_name: str
    can_use_cash: bool
    cash_biz_id: str | None
    services: tuple[tuple[int, str], ...]  # (service_type, service_name)


def push_signature(token: str, timestamp: str, nonce: str) -> str:
    """WeChat's message-push signature: sha1 of token, timestamp and nonce sorted and joined."""
    return hashlib.sha1("".join(sorted((token, timestamp, nonce))).encode()).hexdigest()


def push_signature_ok(token: str, timestamp: str, nonce: str, signature: str) -> bool:
    return hmac.compare_digest(push_signature(token, timestamp, nonce), (signature or "").lower())


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_path_items(items: Any, api: str) -> list[PathItem]:
    """getPath's path_item_list (snake_case) as PathItems; WeChatUnavailable if malformed."""
    if items is None:
        return []
    if not isinstance(items, list) or len(items) > MAX_PATH_ITEMS:
        raise WeChatUnavailable(f"{api}: the answer has no usable path_item_list")
    parsed = []
    for item in items:
        if not isinstance(item, dict):
            raise WeChatUnavailable(f"{api}: a path item is not an object")
        when, kind = _integer(item.get("action_time")), _integer(item.get("action_type"))
        message = item.get("action_msg")
        if when is None or kind is None or not 0 < when < 2 ** 32 or not isinstance(message, str):
            raise WeChatUnavailable(f"{api}: a path item is malformed")
        parsed.append(PathItem(when, kind, message[:1024]))
    return parsed


class WeChatLogistics:
    def __init__(self, base_url: str, timeout: float = 5.0):
        self._base = base_url.rstrip("/")
        self._timeout = timeout

    def _post(self, path: str, api: str, access_token: str, body: dict[str, Any]) -> dict[str, Any]:
        return call_json("POST", f"{self._base}{path}", api=api, query={"access_token": access_token},
                         body=body, timeout=self._timeout)

    def add_order(self, access_token: str, body: dict[str, Any]) -> Waybill:
        data = self._post("/cgi-bin/express/business/order/add", "express_add_order", access_token, body)
        waybill_id = data.get("waybill_id")
        if not isinstance(waybill_id, str) or not waybill_id.strip() or len(waybill_id) > MAX_WAYBILL_ID:
            raise WeChatUnavailable("express_add_order: the answer has no usable waybill_id")
        pairs = []
        for item in data.get("waybill_data") or []:
            if isinstance(item, dict) and isinstance(item.get("key"), str) and isinstance(item.get("value"), str):
                pairs.append((item["key"][:64], item["value"][:256]))
        return Waybill(order_id=str(data.get("order_id") or body["order_id"]), waybill_id=waybill_id.strip(),
                       waybill_data=tuple(pairs[:50]))

    def cancel_order(self, access_token: str, order_id: str, openid: str, delivery_id: str, waybill_id: str) -> None:
        """Raises WeChatApiError on a refusal (CANNOT_CANCEL_HAS_PATH once picked up)."""
        self._post("/cgi-bin/express/business/order/cancel", "express_cancel_order", access_token,
                   {"order_id": order_id, "openid": openid, "delivery_id": delivery_id, "waybill_id": waybill_id})

    def get_path(self, access_token: str, order_id: str, openid: str, delivery_id: str,
                 waybill_id: str) -> list[PathItem]:
        data = self._post("/cgi-bin/express/business/path/get", "express_get_path", access_token,
                          {"order_id": order_id, "openid": openid, "delivery_id": delivery_id,
                           "waybill_id": waybill_id})
        return parse_path_items(data.get("path_item_list"), "express_get_path")

    def get_all_delivery(self, access_token: str) -> list[Carrier]:
        data = call_json("GET", f"{self._base}/cgi-bin/express/business/delivery/getall",
                         api="express_get_all_delivery", query={"access_token": access_token}, timeout=self._timeout)
        items = data.get("data")
        if not isinstance(items, list) or len(items) > 1000:
            raise WeChatUnavailable("express_get_all_delivery: the answer has no usable data")
        carriers = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("delivery_id"), str) \
                    or not isinstance(item.get("delivery_name"), str):
                continue  # one odd entry does not hide the others
            services = tuple((service["service_type"], str(service.get("service_name") or ""))
                             for service in item.get("service_type") or []
                             if isinstance(service, dict) and _integer(service.get("service_type")) is not None)
            cash_biz_id = item.get("cash_biz_id")
            carriers.append(Carrier(delivery_id=item["delivery_id"][:32], delivery_name=item["delivery_name"][:64],
                                    can_use_cash=item.get("can_use_cash") == 1,
                                    cash_biz_id=cash_biz_id if isinstance(cash_biz_id, str) and cash_biz_id else None,
                                    services=services))
        return carriers
