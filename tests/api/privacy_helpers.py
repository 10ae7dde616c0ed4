"""Shared by the PIPL tests: a user with a record in every store."""
from __future__ import annotations

from chalicelib.storage import orders
from tests.api.helpers import call, place_pickup_order
from tests.storage.order_fixtures import pay

ADDRESS = {"name": "张三", "phone": "13800138000", "province": "上海市", "city": "上海市", "district": "徐汇区",
           "detail": "漕溪北路88号"}
REVIEW = {"lines": [{"sku_id": "sku-fuji-5", "rating": 5, "text": "很甜，我家在漕溪北路", "images": ["reviews/a.jpg"]}]}


def completed_order(client, token: str, admin: str) -> dict:
    order = place_pickup_order(client, token)
    pay(orders.get_order(order["order_id"]))
    assert call(client, "POST", f"/v1/admin/orders/{order['order_id']}/ship",
                {"carrier": "顺丰速运", "tracking_no": "SF1234567890"}, token=admin)[0] == 200
    status, done, _ = call(client, "POST", f"/v1/orders/{order['order_id']}/confirm-receipt", token=token)
    assert status == 200 and done["status"] == "completed", done
    return done


def fill_every_store(client, token: str, admin: str, reviewed: bool = True) -> dict:
    """Profile, consent, address, cart, favorite, view, birthday, a completed (reviewed) order."""
    assert call(client, "PATCH", "/v1/me", {"nickname": "张三丰", "birthday": "1990-05-01"}, token=token)[0] == 200
    assert call(client, "POST", "/v1/me/consents", {"version": "2024-01", "granted": True}, token=token)[0] == 201
    address = call(client, "POST", "/v1/addresses", ADDRESS, token=token)[1]
    assert call(client, "POST", "/v1/cart/items", {"sku_id": "sku-fuji-5", "quantity": 1}, token=token)[0] == 200
    assert call(client, "POST", "/v1/me/favorites", {"product_id": "p-fuji"}, token=token)[0] == 201
    call(client, "GET", "/v1/products/p-fuji", token=token)  # a view, recorded by the product page
    order = completed_order(client, token, admin)
    if reviewed:
        assert call(client, "POST", f"/v1/orders/{order['order_id']}/reviews", REVIEW, token=token)[0] == 201
    return {"address_id": address["address_id"], "order_id": order["order_id"]}
