"""O2O (issue 17 item 4): stores nearest first from the buyer's location, with a SKU's units on each
store's shelf as its POS reports them through the stock sync (once per sync id)."""
from __future__ import annotations

import pytest

from tests.api.helpers import admin_token, assert_envelope, call

NEAR_JINGAN = {"lat": 31.2286, "lng": 121.4480}  # 静安寺


def stores(client, query: str) -> list[dict]:
    status, page, _ = call(client, "GET", f"/v1/stores?{query}")
    assert status == 200, page
    return page["items"]


def test_stores_come_nearest_first_with_their_distance_and_the_skus_units_on_the_shelf(client, demo_store):
    items = stores(client, f"lat={NEAR_JINGAN['lat']}&lng={NEAR_JINGAN['lng']}&sku_id=sku-cherry-1kg")
    assert [item["store_id"] for item in items] == ["store-jingan", "store-xuhui", "store-pudong"]
    distances = [item["distance_m"] for item in items]
    assert distances == sorted(distances) and 400 < distances[0] < 800 and 4_000 < distances[1] < 6_500
    assert {item["store_id"]: item["sku_units"] for item in items} == {"store-jingan": 6, "store-xuhui": 0,
                                                                       "store-pudong": 12}
    plain = stores(client, "")
    assert [item["store_id"] for item in plain] == ["store-xuhui", "store-jingan", "store-pudong"]  # display order
    assert all(item["distance_m"] is None and item["sku_units"] is None for item in plain)


@pytest.mark.parametrize("query", ["lat=31.2", "lng=121.4", "lat=91&lng=0", "lat=x&lng=1", "sku_id=a b"])
def test_a_bad_location_is_400(client, demo_store, query):
    status, body, _ = call(client, "GET", f"/v1/stores?{query}")
    assert status == 400
    assert_envelope(body, "validation_error")


def test_a_stores_pos_count_reaches_its_shelf_once_per_sync(client, demo_store):
    admin = admin_token(client)
    sync = {"sync_id": "pos-jingan-0001", "source": "pos-jingan",
            "items": [{"sku_id": "sku-cherry-1kg", "store_id": "store-jingan", "delta": -2},
                      {"sku_id": "sku-cherry-1kg", "store_id": "store-nowhere", "absolute": 3},
                      {"sku_id": "sku-missing", "store_id": "store-jingan", "absolute": 3},
                      {"sku_id": "sku-fuji-5", "store_id": "store-jingan", "delta": -9}]}
    for expected in (("applied", "store_not_found", "sku_not_found", "would_go_negative"),
                     ("already_applied", "store_not_found", "sku_not_found", "would_go_negative")):
        status, result, _ = call(client, "POST", "/v1/admin/stock-sync", sync, token=admin)
        assert status == 200 and tuple(item["status"] for item in result["items"]) == expected, result
    shelf = {item["store_id"]: item["sku_units"] for item in stores(client, "sku_id=sku-cherry-1kg")}
    assert shelf["store-jingan"] == 4
    online = call(client, "GET", "/v1/admin/skus/sku-cherry-1kg", token=admin)[1]
    assert online["available"] > 4  # the online stock is not the shelf's


ADDRESS = {"name": "张三", "phone": "13800138000", "province": "上海市", "city": "上海市", "district": "静安区",
           "detail": "南京西路1000号"}


def _address(client, token, **location) -> str:
    status, address, _ = call(client, "POST", "/v1/addresses", {**ADDRESS, **location}, token=token)
    assert status == 201, address
    return address["address_id"]


def _preview(client, token, address_id):
    return call(client, "POST", "/v1/checkout/preview", {"items": [{"sku_id": "sku-fuji-5", "quantity": 1}],
                                                          "delivery_method": "same_city", "address_id": address_id},
                token=token)


def test_same_city_delivery_comes_from_the_nearest_store_with_the_fee_and_eta_of_its_distance(client, demo_store):
    from tests.api.helpers import log_in

    token, _ = log_in(client)
    near = _address(client, token, **NEAR_JINGAN)
    status, quote, _ = _preview(client, token, near)
    assert status == 200, quote
    assert (quote["delivery_fee_fen"], quote["delivery_eta_minutes"]) == (500, 30)  # < 3 km from 静安店
    assert quote["payable_fen"] == 3990 + 500
    status, order, _ = call(client, "POST", "/v1/orders", {"items": [{"sku_id": "sku-fuji-5", "quantity": 1}],
                                                           "delivery_method": "same_city", "address_id": near,
                                                           "checkout_token": "same-city-0001"}, token=token)
    assert status == 201 and order["store_id"] == "store-jingan" and order["address"]["lat"] == NEAR_JINGAN["lat"]
    status, error, _ = _preview(client, token, _address(client, token))
    assert status == 400
    assert_envelope(error, "address_location_required")
    status, error, _ = _preview(client, token, _address(client, token, lat=39.9042, lng=116.4074))  # 北京
    assert status == 409
    assert_envelope(error, "out_of_delivery_range")


def test_an_address_location_comes_whole(client, demo_store):
    from tests.api.helpers import log_in

    token, _ = log_in(client)
    status, error, _ = call(client, "POST", "/v1/addresses", {**ADDRESS, "lat": 31.2}, token=token)
    assert status == 400
    assert_envelope(error, "validation_error")
