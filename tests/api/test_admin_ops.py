"""Issue 16's merchant operations: roles, the audit log, batch and split shipments, address
changes, remarks, merchant refunds, categories, stores, the dashboard and the product list."""
from __future__ import annotations

import uuid

import pytest

from chalicelib.storage import after_sales, orders, payments
from tests.api.helpers import admin_token, assert_envelope, call, log_in
from tests.storage.order_fixtures import counters, pay

ADDRESS = {"name": "张三", "phone": "13800138000", "province": "上海市", "city": "上海市", "district": "徐汇区",
           "detail": "漕溪北路88号"}
NEW_ADDRESS = {"name": "李四", "phone": "13900139000", "province": "上海市", "city": "上海市", "district": "静安区",
               "detail": "南京西路1号", "reason": "买家来电改地址"}


@pytest.fixture
def shop(client, demo_store):
    token, user = log_in(client)
    address = call(client, "POST", "/v1/addresses", ADDRESS, token=token)[1]
    return {"user": token, "address_id": address["address_id"], "admin": admin_token(client)}


def _order(client, shop, items=(("sku-fuji-5", 3),), paid=True) -> dict:
    status, order, _ = call(client, "POST", "/v1/orders", {
        "items": [{"sku_id": sku_id, "quantity": quantity} for sku_id, quantity in items],
        "address_id": shop["address_id"], "checkout_token": uuid.uuid4().hex}, token=shop["user"])
    assert status == 201, order
    if paid:
        pay(orders.get_order(order["order_id"]))
    return order


def _staff(client, shop) -> str:
    status, body, _ = call(client, "POST", "/v1/admin/accounts",
                           {"username": "clerk", "password": "clerk-pass-1", "role": "staff"}, token=shop["admin"])
    assert status == 201, body
    status, body, _ = call(client, "POST", "/v1/admin/auth/login", {"username": "clerk", "password": "clerk-pass-1"})
    assert status == 200, body
    return body["token"]


def _audit(client, shop, query="") -> list[dict]:
    status, page, _ = call(client, "GET", f"/v1/admin/audit{query}", token=shop["admin"])
    assert status == 200, page
    return page["items"]


# ------------------------------------------------------------------------------ roles

def test_staff_is_refused_refunds_prices_and_accounts_but_may_ship_and_edit_stock_fields(client, shop):
    staff = _staff(client, shop)
    assert call(client, "GET", "/v1/admin/me", token=staff)[1] == {"username": "clerk", "role": "staff"}
    assert call(client, "GET", "/v1/admin/me", token=shop["admin"])[1] == {"username": "admin", "role": "owner"}
    order = _order(client, shop)
    refused = [
        call(client, "PATCH", "/v1/admin/skus/sku-fuji-5", {"price_fen": 1}, token=staff),
        call(client, "PATCH", "/v1/admin/skus/sku-fuji-5", {"market_price_fen": 1}, token=staff),
        call(client, "POST", f"/v1/admin/orders/{order['order_id']}/refunds",
             {"request_id": "req-00000001", "lines": [{"sku_id": "sku-fuji-5", "quantity": 1}], "reason": "缺货"},
             token=staff),
        call(client, "GET", "/v1/admin/accounts", token=staff),
        call(client, "PATCH", "/v1/admin/member-levels", {"levels": []}, token=staff),
        # money out to distributors and what they earn; a flash sale's price
        call(client, "POST", "/v1/admin/withdrawals/wd0000000001/approve", token=staff),
        call(client, "PUT", "/v1/admin/commission-rates/p-fuji", {"level1_permille": 300}, token=staff),
        call(client, "POST", "/v1/admin/flash-sales", {"sku_id": "sku-fuji-5", "price_fen": 1}, token=staff),
    ]
    for status, error, _ in refused:
        assert status == 403, error
        assert_envelope(error, "forbidden_for_role")
    assert counters("sku-fuji-5")["available"] == 197 and not after_sales.get_claims(order["order_id"]).units
    status, sku, _ = call(client, "PATCH", "/v1/admin/skus/sku-fuji-5", {"low_stock_threshold": 7}, token=staff)
    assert status == 200 and sku["low_stock_threshold"] == 7 and sku["price_fen"] == 3990
    status, shipped, _ = call(client, "POST", f"/v1/admin/orders/{order['order_id']}/ship",
                              {"carrier": "SF", "tracking_no": "SF100001"}, token=staff)
    assert status == 200 and shipped["status"] == "shipped"
    entry = _audit(client, shop, f"?target=order:{order['order_id']}")[0]
    assert entry["actor"] == "clerk" and entry["role"] == "staff" and entry["after"]["status"] == "shipped"


def test_accounts_bad_input_is_400_a_duplicate_409_and_the_last_owner_stays(client, shop):
    for body in ({"username": "x", "password": "long-enough", "role": "staff"},
                 {"username": "bob", "password": "short", "role": "staff"},
                 {"username": "bob", "password": "long-enough", "role": "boss"}):
        status, error, _ = call(client, "POST", "/v1/admin/accounts", body, token=shop["admin"])
        assert status == 400, error
    assert [a["username"] for a in call(client, "GET", "/v1/admin/accounts", token=shop["admin"])[1]["items"]] == ["admin"]
    staff = _staff(client, shop)
    status, error, _ = call(client, "POST", "/v1/admin/accounts",
                            {"username": "clerk", "password": "another-pass", "role": "owner"}, token=shop["admin"])
    assert status == 409 and error["Code"] == "account_exists"
    status, error, _ = call(client, "PATCH", "/v1/admin/accounts/admin", {"role": "staff"}, token=shop["admin"])
    assert status == 409 and error["Code"] == "last_owner"
    status, changed, _ = call(client, "PATCH", "/v1/admin/accounts/clerk", {"disabled": True}, token=shop["admin"])
    assert status == 200 and changed["disabled"] is True
    assert call(client, "GET", "/v1/admin/me", token=staff)[0] == 401  # at once, not at the token's expiry
    status, error, _ = call(client, "POST", "/v1/admin/auth/login", {"username": "clerk", "password": "clerk-pass-1"})
    assert status == 401 and error["Code"] == "account_disabled"
    entry = _audit(client, shop, "?target=account:clerk")[0]
    assert entry["before"]["disabled"] is False and entry["after"]["disabled"] is True
    assert "password" not in str(_audit(client, shop)).replace('"password":"changed"', "")


# ------------------------------------------------------------------------------ batch and split shipping

def test_batch_ship_answers_per_order_and_a_repeat_changes_nothing(client, shop):
    first, second, unpaid = _order(client, shop), _order(client, shop), _order(client, shop, paid=False)
    body = {"shipments": [{"order_id": first["order_id"], "carrier": "SF", "tracking_no": "SF200001"},
                          {"order_id": unpaid["order_id"], "carrier": "SF", "tracking_no": "SF200002"},
                          {"order_id": "no-such-order", "carrier": "SF", "tracking_no": "SF200003"},
                          {"order_id": second["order_id"], "carrier": "SF", "tracking_no": "SF200004"}]}
    status, reply, _ = call(client, "POST", "/v1/admin/orders/batch-ship", body, token=shop["admin"])
    assert status == 200, reply
    assert [(r["ok"], r.get("code")) for r in reply["results"]] == [
        (True, None), (False, "invalid_order_state"), (False, "order_not_found"), (True, None)]
    audited = len(_audit(client, shop, f"?target=order:{first['order_id']}"))
    again = call(client, "POST", "/v1/admin/orders/batch-ship", body, token=shop["admin"])[1]
    assert [r["ok"] for r in again["results"]] == [True, False, False, True]
    assert orders.get_order(first["order_id"]).shipment["tracking_no"] == "SF200001"
    assert len(_audit(client, shop, f"?target=order:{first['order_id']}")) == audited == 1
    other = {"shipments": [{"order_id": first["order_id"], "carrier": "SF", "tracking_no": "SF299999"}]}
    assert call(client, "POST", "/v1/admin/orders/batch-ship", other, token=shop["admin"])[1]["results"][0]["code"] \
        == "already_shipped"


@pytest.mark.parametrize("body", [{"shipments": []}, {"shipments": [{"order_id": "o", "carrier": "SF"}]},
                                  {"shipments": [{"order_id": "o", "carrier": "SF", "tracking_no": "SF1234"}] * 2},
                                  {"shipments": [{"order_id": "o", "carrier": "SF", "tracking_no": "SF1234"}] * 51}])
def test_a_bad_batch_is_400(client, shop, body):
    status, error, _ = call(client, "POST", "/v1/admin/orders/batch-ship", body, token=shop["admin"])
    assert status == 400, error


def test_split_shipments_ship_the_order_when_every_line_is(client, shop):
    order = _order(client, shop, items=(("sku-fuji-5", 3), ("sku-navel-5", 1)))
    path = f"/v1/admin/orders/{order['order_id']}/shipments"
    first = {"lines": [{"sku_id": "sku-fuji-5", "quantity": 2}], "carrier": "SF", "tracking_no": "SF300001"}
    status, shipped, _ = call(client, "POST", path, first, token=shop["admin"])
    assert status == 200 and shipped["status"] == "paid" and shipped["shipped_units"] == {"sku-fuji-5": 2}
    assert call(client, "POST", path, first, token=shop["admin"])[1]["shipped_units"] == {"sku-fuji-5": 2}  # replay
    too_many = {"lines": [{"sku_id": "sku-fuji-5", "quantity": 2}], "carrier": "SF", "tracking_no": "SF300002"}
    status, error, _ = call(client, "POST", path, too_many, token=shop["admin"])
    assert status == 409 and error["Code"] == "exceeds_shippable"
    status, error, _ = call(client, "POST", path, {**first, "tracking_no": "SF300003", "lines": [
        {"sku_id": "sku-cherry-1kg", "quantity": 1}]}, token=shop["admin"])
    assert status == 400 and error["Code"] == "sku_not_in_order"
    # a buyer's refund request cannot take the units already in a package
    status, error, _ = call(client, "POST", f"/v1/orders/{order['order_id']}/after-sales", {
        "kind": "refund", "reason": "不要了", "lines": [{"sku_id": "sku-fuji-5", "quantity": 2}]}, token=shop["user"])
    assert status == 409 and error["Code"] == "refund_exceeds_order"
    rest = {"lines": [{"sku_id": "sku-fuji-5", "quantity": 1}, {"sku_id": "sku-navel-5", "quantity": 1}],
            "carrier": "中通快递", "tracking_no": "ZT300004"}
    status, shipped, _ = call(client, "POST", path, rest, token=shop["admin"])
    assert status == 200 and shipped["status"] == "shipped", shipped
    assert [p["tracking_no"] for p in shipped["shipments"]] == ["SF300001", "ZT300004"]
    assert shipped["shipment"]["tracking_no"] == "ZT300004" and shipped["shipping_upload"]["status"] == "pending"
    detail = call(client, "GET", f"/v1/admin/orders/{order['order_id']}", token=shop["admin"])[1]
    assert len(detail["shipments"]) == 2 and detail["shipped_units"] == {"sku-fuji-5": 3, "sku-navel-5": 1}


def test_the_last_package_waits_for_a_refund_request_on_the_other_units(client, shop):
    """Shipping the last package makes the order shipped, after which an unshipped refund cannot be
    approved: a buyer's request still waiting must be decided first, never stranded."""
    order = _order(client, shop, items=(("sku-fuji-5", 2), ("sku-navel-5", 1)))
    status, request, _ = call(client, "POST", f"/v1/orders/{order['order_id']}/after-sales", {
        "kind": "refund", "reason": "不要了", "lines": [{"sku_id": "sku-navel-5", "quantity": 1}]}, token=shop["user"])
    assert status == 201, request
    path = f"/v1/admin/orders/{order['order_id']}/shipments"
    package = {"lines": [{"sku_id": "sku-fuji-5", "quantity": 2}], "carrier": "SF", "tracking_no": "SF500001"}
    status, error, _ = call(client, "POST", path, package, token=shop["admin"])
    assert status == 409 and error["Code"] == "refund_request_open", error
    assert orders.get_order(order["order_id"]).shipped_units is None  # nothing shipped
    status, _, _ = call(client, "POST", f"/v1/admin/after-sales/{request['request_id']}/reject",
                        {"reason": "已备货"}, token=shop["admin"])
    assert status == 200
    status, shipped, _ = call(client, "POST", path, package, token=shop["admin"])
    assert status == 200 and shipped["status"] == "paid"  # the navel orange is shippable again
    status, shipped, _ = call(client, "POST", path, {"lines": [{"sku_id": "sku-navel-5", "quantity": 1}],
                                                     "carrier": "SF", "tracking_no": "SF500002"}, token=shop["admin"])
    assert status == 200 and shipped["status"] == "shipped"


def test_the_whole_order_ship_after_a_package_ships_the_rest(client, shop):
    order = _order(client, shop, items=(("sku-fuji-5", 3),))
    call(client, "POST", f"/v1/admin/orders/{order['order_id']}/shipments",
         {"lines": [{"sku_id": "sku-fuji-5", "quantity": 1}], "carrier": "SF", "tracking_no": "SF400001"},
         token=shop["admin"])
    status, shipped, _ = call(client, "POST", f"/v1/admin/orders/{order['order_id']}/ship",
                              {"carrier": "SF", "tracking_no": "SF400002"}, token=shop["admin"])
    assert status == 200 and shipped["status"] == "shipped" and shipped["shipped_units"] == {"sku-fuji-5": 3}


# ------------------------------------------------------------------------------ address and remarks

def test_the_address_changes_before_shipping_with_before_and_after_in_the_audit(client, shop):
    order = _order(client, shop)
    path = f"/v1/admin/orders/{order['order_id']}/address"
    status, error, _ = call(client, "PATCH", path, {**NEW_ADDRESS, "phone": "12345"}, token=shop["admin"])
    assert status == 400 and orders.get_order(order["order_id"]).address["name"] == "张三"
    status, changed, _ = call(client, "PATCH", path, NEW_ADDRESS, token=shop["admin"])
    assert status == 200 and changed["address"]["name"] == "李四", changed
    entry = _audit(client, shop, f"?target=order:{order['order_id']}")[0]
    assert entry["before"]["address"]["name"] == "张三" and entry["after"]["address"]["name"] == "李四"
    assert entry["after"]["reason"] == "买家来电改地址" and entry["actor"] == "admin"
    call(client, "POST", f"/v1/admin/orders/{order['order_id']}/ship", {"carrier": "SF", "tracking_no": "SF500001"},
         token=shop["admin"])
    status, error, _ = call(client, "PATCH", path, {**NEW_ADDRESS, "name": "王五"}, token=shop["admin"])
    assert status == 409 and error["Code"] == "already_shipped"


def test_remarks_are_kept_on_the_order_with_who_and_when(client, shop):
    order = _order(client, shop)
    path = f"/v1/admin/orders/{order['order_id']}/remarks"
    assert call(client, "POST", path, {"text": ""}, token=shop["admin"])[0] == 400
    call(client, "POST", path, {"text": "客户要求周末送"}, token=shop["admin"])
    status, detail, _ = call(client, "POST", path, {"text": "已电话确认"}, token=shop["admin"])
    assert status == 201 and [r["text"] for r in detail["remarks"]] == ["客户要求周末送", "已电话确认"]
    assert detail["remarks"][0]["by"] == "admin" and detail["remarks"][0]["at"]


# ------------------------------------------------------------------------------ merchant refunds

def test_a_merchant_refund_goes_through_after_sales_once_per_request_id(client, shop):
    order = _order(client, shop, items=(("sku-fuji-5", 3),))
    path = f"/v1/admin/orders/{order['order_id']}/refunds"
    body = {"request_id": "oos-00000001", "lines": [{"sku_id": "sku-fuji-5", "quantity": 1}], "reason": "缺货"}
    status, first, _ = call(client, "POST", path, body, token=shop["admin"])
    assert status == 200 and first["kind"] == "refund" and first["status"] in ("refunding", "refunded"), first
    assert first["amount_fen"] == 3990  # the line's payable share of one unit
    status, again, _ = call(client, "POST", path, body, token=shop["admin"])
    assert status == 200 and again["request_id"] == first["request_id"]
    refund = payments.get_refund(first["out_refund_no"])
    assert refund.amount_fen == 3990 and refund.lines == (("sku-fuji-5", 1),)
    assert orders.get_order(order["order_id"]).refunds_in_flight == {first["out_refund_no"]}
    status, error, _ = call(client, "POST", path, {**body, "lines": [{"sku_id": "sku-fuji-5", "quantity": 2}]},
                            token=shop["admin"])
    assert status == 409 and error["Code"] == "request_id_reused"
    status, error, _ = call(client, "POST", path, {**body, "request_id": "oos-00000002", "lines": [
        {"sku_id": "sku-fuji-5", "quantity": 3}]}, token=shop["admin"])
    assert status == 409 and error["Code"] == "refund_exceeds_order"
    status, error, _ = call(client, "POST", path, {**body, "request_id": "bad id"}, token=shop["admin"])
    assert status == 400
    assert after_sales.get_claims(order["order_id"]).units == {"sku-fuji-5": 1}


# ------------------------------------------------------------------------------ categories, stores, products

def test_categories_move_within_three_levels_and_hidden_ones_leave_the_buyers_tree(client, shop):
    admin = shop["admin"]
    status, error, _ = call(client, "PATCH", "/v1/admin/categories/c-fruit", {"parent_id": "c-apple"}, token=admin)
    assert status == 400 and error["Code"] == "category_cycle"
    status, error, _ = call(client, "PATCH", "/v1/admin/categories/c-fruit-domestic", {"parent_id": "c-gift-e"},
                            token=admin)
    assert status == 400 and error["Code"] == "category_too_deep"
    status, moved, _ = call(client, "PATCH", "/v1/admin/categories/c-apple", {"parent_id": "c-fruit-imported",
                                                                              "name": "苹果梨"}, token=admin)
    assert status == 200 and moved["parent_id"] == "c-fruit-imported" and moved["name"] == "苹果梨", moved
    listed = call(client, "GET", "/v1/products?category_id=c-fruit-imported")[1]["items"]
    assert "p-fuji" in [item["product_id"] for item in listed]
    assert "p-fuji" not in [i["product_id"] for i in call(client, "GET", "/v1/products?category_id=c-fruit-domestic")[1]["items"]]
    status, hidden, _ = call(client, "PATCH", "/v1/admin/categories/c-fruit-imported", {"hidden": True}, token=admin)
    assert status == 200 and hidden["hidden"] is True
    tree = call(client, "GET", "/v1/categories")[1]["items"]
    fruit = next(node for node in tree if node["category_id"] == "c-fruit")
    assert [child["category_id"] for child in fruit["children"]] == ["c-fruit-domestic"]
    assert call(client, "GET", "/v1/products?category_id=c-apple")[1]["items"] == []
    assert "p-fuji" in [i["product_id"] for i in call(client, "GET", "/v1/products")[1]["items"]]
    admin_tree = call(client, "GET", "/v1/admin/categories", token=admin)[1]["items"]
    assert any(child["hidden"] for node in admin_tree for child in node["children"])
    assert _audit(client, shop, "?target=category:c-apple")[0]["before"]["parent_id"] == "c-fruit-domestic"
    status, child, _ = call(client, "POST", "/v1/admin/categories", {"name": "新品", "parent_id": "c-fruit-imported"},
                            token=admin)
    assert status == 201  # under a hidden category: hidden from buyers too, not shown as an orphan root
    assert child["category_id"] not in [node["category_id"] for node in call(client, "GET", "/v1/categories")[1]["items"]]
    call(client, "PATCH", "/v1/admin/categories/c-fruit-imported", {"hidden": False}, token=admin)
    assert "p-fuji" in [i["product_id"] for i in call(client, "GET", "/v1/products?category_id=c-apple")[1]["items"]]
    fruit = next(node for node in call(client, "GET", "/v1/categories")[1]["items"] if node["category_id"] == "c-fruit")
    assert len(fruit["children"]) == 2


def test_stores_are_created_edited_and_hidden_from_buyers(client, shop):
    admin = shop["admin"]
    status, error, _ = call(client, "POST", "/v1/admin/stores", {"name": "新店", "address": "上海", "lat": 91,
                                                                 "lng": 121}, token=admin)
    assert status == 400
    status, store, _ = call(client, "POST", "/v1/admin/stores", {
        "name": "鲜果园 静安店", "address": "上海市静安区南京西路1号", "lat": 31.23, "lng": 121.46,
        "hours": "08:00-22:00"}, token=admin)
    assert status == 201 and store["hidden"] is False, store
    assert call(client, "PATCH", f"/v1/admin/stores/{store['store_id']}", {"hours": "8点-22点"}, token=admin)[0] == 400
    for null in ({"name": None}, {"lat": None}, {"hidden": None}):  # null is "not sent": nothing to change
        status, error, _ = call(client, "PATCH", f"/v1/admin/stores/{store['store_id']}", null, token=admin)
        assert status == 400 and "send at least one" in error["Details"][0]["message"], error
    status, error, _ = call(client, "PATCH", "/v1/admin/categories/c-fruit", {"parent_id": None}, token=admin)
    assert status == 400, error  # "" makes a root; null is not taken for it
    status, changed, _ = call(client, "PATCH", f"/v1/admin/stores/{store['store_id']}", {"hidden": True}, token=admin)
    assert status == 200 and changed["hidden"] is True and changed["name"] == "鲜果园 静安店"
    public = [s["store_id"] for s in call(client, "GET", "/v1/stores")[1]["items"]]
    assert store["store_id"] not in public and "store-xuhui" in public
    assert store["store_id"] in [s["store_id"] for s in call(client, "GET", "/v1/admin/stores", token=admin)[1]["items"]]


def test_the_admin_product_list_shows_off_sale_products_with_stock(client, shop):
    admin = shop["admin"]
    call(client, "PATCH", "/v1/admin/products/p-durian", {"on_sale": False}, token=admin)
    page = call(client, "GET", "/v1/admin/products?limit=100", token=admin)[1]
    durian = next(item for item in page["items"] if item["product_id"] == "p-durian")
    assert durian["on_sale"] is False and durian["skus"][0]["available"] == 20
    by_category = call(client, "GET", "/v1/admin/products?category_id=c-apple", token=admin)[1]["items"]
    assert [item["product_id"] for item in by_category] == ["p-fuji"]
    off = call(client, "GET", "/v1/admin/products?on_sale=false&limit=100", token=admin)[1]["items"]
    assert [item["product_id"] for item in off] == ["p-durian"]
    assert call(client, "GET", "/v1/admin/products?limit=0", token=admin)[0] == 400


def test_the_dashboard_counts_pending_shipments_and_open_after_sales(client, shop):
    _order(client, shop)
    order = _order(client, shop)
    call(client, "POST", f"/v1/orders/{order['order_id']}/after-sales", {"kind": "refund", "reason": "不要了"},
         token=shop["user"])
    status, board, _ = call(client, "GET", "/v1/admin/dashboard", token=shop["admin"])
    assert status == 200, board
    assert board["pending_shipments"] == 2 and board["open_after_sales"] == 1
    assert set(board["today"]) == {"date", "orders", "paid_orders", "gmv_fen"}


def test_the_audit_log_lists_newest_first_with_a_cursor_and_a_user_token_is_403(client, shop):
    admin = shop["admin"]
    for threshold in (3, 4, 5):
        call(client, "PATCH", "/v1/admin/skus/sku-fuji-5", {"low_stock_threshold": threshold}, token=admin)
    status, page, _ = call(client, "GET", "/v1/admin/audit?target=sku:sku-fuji-5&limit=2", token=admin)
    assert status == 200 and [e["after"]["low_stock_threshold"] for e in page["items"]] == [5, 4]
    assert page["items"][0]["action"] == "PATCH /v1/admin/skus/{sku_id}"
    rest = call(client, "GET", f"/v1/admin/audit?target=sku:sku-fuji-5&limit=2&cursor={page['next_cursor']}",
                token=admin)[1]
    assert [e["after"]["low_stock_threshold"] for e in rest["items"]] == [3]
    refused = call(client, "PATCH", "/v1/admin/skus/sku-fuji-5", {"low_stock_threshold": -1}, token=admin)
    assert refused[0] == 400 and len(_audit(client, shop, "?target=sku:sku-fuji-5")) == 3
    assert call(client, "GET", "/v1/admin/audit", token=shop["user"])[0] == 403
    assert call(client, "GET", "/v1/admin/audit?cursor=forged", token=admin)[0] == 400


def test_split_shipments_upload_to_wechat_once_in_split_mode_with_every_package(client, wechat_sim, demo_store,
                                                                                notify_bridge):
    from chalicelib.schemas.shipping import ShippingUploadJob
    from chalicelib.services import shipping_info
    from tests.api.helpers import sim_call

    token, _ = log_in(client)
    address = call(client, "POST", "/v1/addresses", ADDRESS, token=token)[1]
    status, order, _ = call(client, "POST", "/v1/orders", {
        "items": [{"sku_id": "sku-fuji-5", "quantity": 2}], "address_id": address["address_id"],
        "checkout_token": uuid.uuid4().hex}, token=token)
    params = call(client, "POST", f"/v1/orders/{order['order_id']}/pay", token=token)[1]
    sim_call(wechat_sim, "POST", "/__sim/pay/request-payment", {**params, "wait": True})
    admin, path = admin_token(client), f"/v1/admin/orders/{order['order_id']}/shipments"
    for tracking_no in ("SF600001", "SF600002"):
        status, shipped, _ = call(client, "POST", path, {"lines": [{"sku_id": "sku-fuji-5", "quantity": 1}],
                                                         "carrier": "顺丰速运", "tracking_no": tracking_no}, token=admin)
        assert status == 200, shipped
    assert shipped["status"] == "shipped" and shipped["shipping_upload"]["status"] == "pending"
    job = ShippingUploadJob(order_id=order["order_id"], reason="shipped")
    assert shipping_info.upload_shipping_info(job) == "uploaded"
    assert shipping_info.upload_shipping_info(job) == "duplicate"
    [upload] = sim_call(wechat_sim, "GET", f"/__sim/shipping?out_trade_no={order['out_trade_no']}")["items"]
    assert upload["delivery_mode"] == 2  # the simulator refuses split mode without is_all_delivered
    assert [item["tracking_no"] for item in upload["shipping_list"]] == ["SF600001", "SF600002"]
    assert {item["item_desc"] for item in upload["shipping_list"]} == {f"{order['lines'][0]['name']}*1"}
