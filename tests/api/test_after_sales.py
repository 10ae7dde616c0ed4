"""After-sales routes: a user's refund/return request, the merchant's approve and reject, and the
refund's result coming back (moto, the WeChat simulator over HTTP).

Most tests pay the order in storage (`pay`), so the simulator does not know the transaction and
refuses the refund: it stays `processing` for the retry job, a valid state to assert on, and the
test hands the service WeChat's verified result where it needs the refund finished. The last
tests pay through the simulator and get the refund's signed notify over HTTP (`notify_bridge`).
"""
from __future__ import annotations

import uuid

import pytest

from chalicelib import clock
from chalicelib.services import refunds
from chalicelib.storage import orders, payments
from chalicelib.storage.stock import StockMovementRecord
from chalicelib.wechat.pay_types import Refund as WeChatRefund
from tests.api.helpers import admin_token, assert_envelope, call, log_in, sim_call
from tests.storage.order_fixtures import counters, pay
from tests.storage.test_after_sales_storage import paid_order

ADDRESS = {"name": "张三", "phone": "13800138000", "province": "上海市", "city": "上海市", "district": "徐汇区",
           "detail": "漕溪北路88号"}
REFUND_STARTED = {"refunding", "refunded"}  # refunded if WeChat answered at once
REFUND_ASKED = {"processing", "success"}


@pytest.fixture
def shop(client, demo_store):
    token, user = log_in(client)
    address = call(client, "POST", "/v1/addresses", ADDRESS, token=token)[1]
    return {"user": token, "user_id": user["user_id"], "address_id": address["address_id"],
            "admin": admin_token(client)}


def _paid_express_order(client, shop, quantity: int = 2) -> dict:
    """sku-fuji-5 (39.90) x quantity, express: 8 yuan delivery under 99 yuan."""
    status, order, _ = call(client, "POST", "/v1/orders", {
        "items": [{"sku_id": "sku-fuji-5", "quantity": quantity}], "address_id": shop["address_id"],
        "checkout_token": uuid.uuid4().hex}, token=shop["user"])
    assert status == 201, order
    pay(orders.get_order(order["order_id"]))
    return order


def _ask(client, token, order_id, kind="refund", lines=None, reason="不想要了"):
    body = {"kind": kind, "reason": reason, **({"lines": lines} if lines is not None else {})}
    return call(client, "POST", f"/v1/orders/{order_id}/after-sales", body, token=token)


def _admin(client, shop, request_id, action, body=None):
    return call(client, "POST", f"/v1/admin/after-sales/{request_id}/{action}", body, token=shop["admin"])


def _mine(client, shop, request) -> dict:
    return call(client, "GET", f"/v1/after-sales/{request['request_id']}", token=shop["user"])[1]


def _wechat_says(out_refund_no: str, status: str = "SUCCESS") -> str:
    """WeChat's verified word on the refund, as the notify route hands it to the service."""
    refund = payments.get_refund(out_refund_no)
    return refunds.handle_refund_result(WeChatRefund(
        out_refund_no=out_refund_no, refund_id=f"50300{uuid.uuid4().hex[:12]}", out_trade_no=refund.order_id,
        transaction_id=refund.transaction_id, refund_fen=refund.amount_fen, total_fen=None, status=status,
        success_time=clock.now() if status == "SUCCESS" else None))


def test_a_whole_paid_order_is_refunded_with_its_delivery_fee_and_restocked(client, shop):
    order = _paid_express_order(client, shop)
    stock_before = counters("sku-fuji-5")
    status, request, _ = _ask(client, shop["user"], order["order_id"])
    assert status == 201, request
    assert (request["status"], request["amount_fen"], request["delivery_fee_fen"]) == ("requested", 8780, 800)
    assert request["lines"] == [{"sku_id": "sku-fuji-5", "quantity": 2, "amount_fen": 7980}]
    assert call(client, "GET", f"/v1/after-sales/{request['request_id']}", token=shop["user"])[1] == request

    status, approved, _ = _admin(client, shop, request["request_id"], "approve")
    assert status == 200, approved
    assert approved["status"] in REFUND_STARTED and approved["refund_status"] in REFUND_ASKED
    assert approved["out_refund_no"] == f"AS{request['request_id']}"
    again = _admin(client, shop, request["request_id"], "approve")
    assert again[0] == 200 and again[1]["out_refund_no"] == approved["out_refund_no"]
    [refund] = payments.refunds_of_order(order["order_id"])
    assert (refund.amount_fen, refund.restock, refund.request_id) == (8780, "pending", request["request_id"])

    assert _wechat_says(refund.out_refund_no) in ("refunded", "duplicate")
    assert _mine(client, shop, request)["status"] == "refunded"
    assert orders.get_order(order["order_id"]).status == "refunded"
    after = counters("sku-fuji-5")
    assert (after["sold"], after["available"]) == (stock_before["sold"] - 2, stock_before["available"] + 2)
    assert _admin(client, shop, request["request_id"], "approve")[1]["status"] == "refunded"  # still no 2nd refund
    assert len(payments.refunds_of_order(order["order_id"])) == 1


def test_partial_refunds_of_a_line_add_up_to_its_payable_with_the_last_unit_taking_the_remainder(client, shop):
    order = paid_order("o-partial", {"sku-fuji-5": (7, 1000)}, user_id=shop["user_id"], fee=800, product_id="p-fuji")
    amounts = []
    for units in (2, 2):
        status, request, _ = _ask(client, shop["user"], order.order_id, lines=[{"sku_id": "sku-fuji-5",
                                                                                "quantity": units}])
        assert status == 201, request
        amounts.append(request["amount_fen"])
    status, last, _ = _ask(client, shop["user"], order.order_id)  # the rest: 3 units and the fee
    assert status == 201 and last["lines"] == [{"sku_id": "sku-fuji-5", "quantity": 3, "amount_fen": 429}]
    assert amounts == [285, 286] and last["delivery_fee_fen"] == 800 and last["amount_fen"] == 1229
    assert sum(amounts) + last["amount_fen"] == order.payable_fen
    status, error, _ = _ask(client, shop["user"], order.order_id, lines=[{"sku_id": "sku-fuji-5", "quantity": 1}])
    assert status == 409
    assert_envelope(error, "refund_exceeds_order")
    assert error["Details"] == [{"sku_id": "sku-fuji-5", "requested": 1, "refundable": 0}]


def test_a_rejection_releases_its_units_and_the_total_still_adds_up(client, shop):
    order = paid_order("o-reject", {"sku-fuji-5": (3, 1000)}, user_id=shop["user_id"], fee=800, product_id="p-fuji")
    one = [{"sku_id": "sku-fuji-5", "quantity": 1}]
    first, second = (_ask(client, shop["user"], order.order_id, lines=one)[1] for _ in range(2))
    assert (first["amount_fen"], second["amount_fen"]) == (333, 333)
    status, rejected, _ = _admin(client, shop, second["request_id"], "reject", {"reason": "已发货，请走退货"})
    assert status == 200 and (rejected["status"], rejected["note"]) == ("rejected", "已发货，请走退货")
    assert _admin(client, shop, second["request_id"], "reject", {"reason": "again"})[1] == rejected  # unchanged
    assert _admin(client, shop, second["request_id"], "approve")[0] == 409
    status, rest, _ = _ask(client, shop["user"], order.order_id)
    assert status == 201 and (rest["amount_fen"], rest["delivery_fee_fen"]) == (667 + 800, 800)
    assert first["amount_fen"] + rest["amount_fen"] == order.payable_fen


def _shipped_return(client, shop) -> tuple[dict, dict]:
    order = _paid_express_order(client, shop)
    body = {"carrier": "顺丰速运", "tracking_no": "SF1234567890"}
    assert call(client, "POST", f"/v1/admin/orders/{order['order_id']}/ship", body, token=shop["admin"])[0] == 200
    status, request, _ = _ask(client, shop["user"], order["order_id"], kind="return")
    assert status == 201, request
    return order, request


def _send_back(client, shop, request, tracking_no="YT9876543210"):
    return call(client, "POST", f"/v1/after-sales/{request['request_id']}/return-shipment",
                {"carrier": "圆通速递", "tracking_no": tracking_no}, token=shop["user"])


def test_a_return_is_refunded_only_after_the_goods_are_received_and_restocked_once(client, shop):
    order = _paid_express_order(client, shop)
    body = {"carrier": "顺丰速运", "tracking_no": "SF1234567890"}
    assert call(client, "POST", f"/v1/admin/orders/{order['order_id']}/ship", body, token=shop["admin"])[0] == 200
    status, error, _ = _ask(client, shop["user"], order["order_id"], kind="refund")
    assert status == 409 and "return" in error["Message"]
    assert_envelope(error, "invalid_after_sales_kind")
    status, request, _ = _ask(client, shop["user"], order["order_id"], kind="return")
    assert status == 201 and (request["amount_fen"], request["delivery_fee_fen"]) == (7980, 0)
    status, early, _ = _admin(client, shop, request["request_id"], "receive")
    assert status == 409  # approve first
    approved = _admin(client, shop, request["request_id"], "approve")[1]
    assert approved["status"] == "approved" and approved["out_refund_no"] is None  # no money before the goods
    assert _admin(client, shop, request["request_id"], "approve")[1]["status"] == "approved"  # again: unchanged
    assert "漕溪北路88号" in _mine(client, shop, request)["return_address"]
    assert payments.refunds_of_order(order["order_id"]) == []
    status, sent, _ = _send_back(client, shop, request)
    assert status == 200 and sent["return_shipment"]["tracking_no"] == "YT9876543210"
    before = counters("sku-fuji-5")
    received = _admin(client, shop, request["request_id"], "receive")[1]
    assert received["status"] in REFUND_STARTED and received["received_at"] and received["return_address"] is None
    again = _admin(client, shop, request["request_id"], "receive")[1]
    assert again["out_refund_no"] == received["out_refund_no"]
    after = counters("sku-fuji-5")
    assert (after["available"], after["stock_in"], after["sold"]) == (before["available"] + 2, before["stock_in"] + 2,
                                                                      before["sold"])
    movements = list(StockMovementRecord.query("sku-fuji-5", StockMovementRecord.movement_key.startswith("return#")))
    assert [(m.delta, m.reason) for m in movements] == [(2, "return")]
    refund = payments.get_refund(received["out_refund_no"])
    assert refund.restock == "no" and refund.amount_fen == 7980  # restocked by the receipt, not by the refund
    _wechat_says(refund.out_refund_no)
    assert _mine(client, shop, request)["status"] == "refunded"
    assert counters("sku-fuji-5")["available"] == after["available"]
    assert orders.get_order(order["order_id"]).status == "shipped"  # the fee was not refunded: not whole
    assert _admin(client, shop, request["request_id"], "reject", {"reason": "x"})[0] == 409


def test_an_approved_return_whose_goods_never_came_can_be_rejected_and_a_received_one_cannot(client, shop):
    _, request = _shipped_return(client, shop)
    _admin(client, shop, request["request_id"], "approve")
    status, rejected, _ = _admin(client, shop, request["request_id"], "reject", {"reason": "未收到退货"})
    assert status == 200 and rejected["status"] == "rejected"
    assert _send_back(client, shop, request)[0] == 409
    _, second = _shipped_return(client, shop)
    _admin(client, shop, second["request_id"], "approve")
    _admin(client, shop, second["request_id"], "receive")
    assert _admin(client, shop, second["request_id"], "reject", {"reason": "x"})[0] == 409


def test_only_the_buyer_gives_a_return_shipment_and_only_for_an_approved_return(client, shop):
    _, request = _shipped_return(client, shop)
    assert _send_back(client, shop, request)[0] == 409  # not approved yet
    _admin(client, shop, request["request_id"], "approve")
    other, _ = log_in(client, "bob-1")
    status, _, _ = call(client, "POST", f"/v1/after-sales/{request['request_id']}/return-shipment",
                        {"carrier": "圆通速递", "tracking_no": "YT9876543210"}, token=other)
    assert status == 404
    status, error, _ = call(client, "POST", f"/v1/after-sales/{request['request_id']}/return-shipment",
                            {"carrier": "圆通速递", "tracking_no": "no spaces allowed"}, token=shop["user"])
    assert status == 400 and _mine(client, shop, request)["return_shipment"] is None
    assert _send_back(client, shop, request, "YT1111111111")[1]["return_shipment"]["tracking_no"] == "YT1111111111"
    assert _send_back(client, shop, request, "YT2222222222")[1]["return_shipment"]["tracking_no"] == "YT2222222222"


def test_returns_cannot_be_approved_before_the_store_has_a_return_address(client, shop, monkeypatch):
    _, request = _shipped_return(client, shop)
    monkeypatch.delenv("RETURN_ADDRESS")
    status, error, _ = _admin(client, shop, request["request_id"], "approve")
    assert status == 409
    assert_envelope(error, "return_address_not_set")
    assert _mine(client, shop, request)["status"] == "requested"


def test_a_refund_wechat_refuses_goes_back_to_approved_and_can_be_asked_again(client, shop):
    order = _paid_express_order(client, shop)
    request = _ask(client, shop["user"], order["order_id"])[1]
    first = _admin(client, shop, request["request_id"], "approve")[1]
    assert _wechat_says(first["out_refund_no"], "CLOSED") == "failed"
    failed = _mine(client, shop, request)
    assert failed["status"] == "approved" and "CLOSED" in failed["note"]
    retried = _admin(client, shop, request["request_id"], "approve")[1]
    assert retried["out_refund_no"] == f"AS{request['request_id']}-2" and retried["status"] in REFUND_STARTED
    assert _wechat_says(first["out_refund_no"], "CLOSED") == "duplicate"  # the old refund's news moves nothing
    assert _admin(client, shop, request["request_id"], "reject", {"reason": "x"})[0] == 409  # refunding
    _wechat_says(retried["out_refund_no"])
    assert orders.get_order(order["order_id"]).status == "refunded"
    assert sorted(r.status for r in payments.refunds_of_order(order["order_id"])) == ["failed", "success"]


def test_someone_elses_order_or_request_is_404(client, shop):
    order = _paid_express_order(client, shop)
    request = _ask(client, shop["user"], order["order_id"])[1]
    bob, _ = log_in(client, "bob-1")
    status, error, _ = _ask(client, bob, order["order_id"])
    assert status == 404
    assert_envelope(error, "order_not_found")
    status, error, _ = call(client, "GET", f"/v1/after-sales/{request['request_id']}", token=bob)
    assert status == 404
    assert_envelope(error, "after_sale_not_found")
    assert call(client, "GET", "/v1/after-sales/missing", token=shop["user"])[0] == 404
    assert _ask(client, shop["user"], "o-missing")[0] == 404
    assert _admin(client, shop, "missing", "approve")[0] == 404
    assert _admin(client, shop, "missing", "reject", {"reason": "x"})[0] == 404


def test_orders_that_are_not_paid_shipped_or_completed_are_409(client, shop):
    status, order, _ = call(client, "POST", "/v1/orders", {
        "items": [{"sku_id": "sku-fuji-5", "quantity": 1}], "address_id": shop["address_id"],
        "checkout_token": uuid.uuid4().hex}, token=shop["user"])
    status, error, _ = _ask(client, shop["user"], order["order_id"])
    assert status == 409
    assert_envelope(error, "invalid_order_state")
    call(client, "POST", f"/v1/orders/{order['order_id']}/cancel", token=shop["user"])
    assert _ask(client, shop["user"], order["order_id"])[1]["Code"] == "invalid_order_state"
    paid = _paid_express_order(client, shop)
    status, error, _ = _ask(client, shop["user"], paid["order_id"], kind="return")
    assert status == 409 and "refund" in error["Message"]
    assert_envelope(error, "invalid_after_sales_kind")


def test_a_second_whole_order_request_is_409_and_approving_after_shipping_too(client, shop):
    order = _paid_express_order(client, shop)
    request = _ask(client, shop["user"], order["order_id"])[1]
    status, error, _ = _ask(client, shop["user"], order["order_id"])
    assert status == 409
    assert_envelope(error, "refund_exceeds_order")
    body = {"carrier": "顺丰速运", "tracking_no": "SF1234567890"}
    call(client, "POST", f"/v1/admin/orders/{order['order_id']}/ship", body, token=shop["admin"])
    status, error, _ = _admin(client, shop, request["request_id"], "approve")
    assert status == 409 and "shipped" in error["Message"]
    assert_envelope(error, "invalid_order_state")
    assert payments.refunds_of_order(order["order_id"]) == []


@pytest.mark.parametrize("body, status, code", [
    ({"kind": "refund", "reason": "x", "lines": [{"sku_id": "sku-other", "quantity": 1}]}, 400, "sku_not_in_order"),
    ({"kind": "refund", "reason": "x", "lines": [{"sku_id": "sku-fuji-5", "quantity": 3}]}, 400, "validation_error"),
    ({"kind": "refund", "reason": "x", "lines": [{"sku_id": "sku-fuji-5", "quantity": 0}]}, 400, "validation_error"),
    ({"kind": "refund", "reason": "x", "lines": [{"sku_id": "sku-fuji-5", "quantity": "1"}]}, 400, "validation_error"),
    ({"kind": "refund", "reason": "x", "lines": []}, 400, "validation_error"),
    ({"kind": "refund", "reason": "x", "lines": [{"sku_id": "sku-fuji-5", "quantity": 1}] * 2}, 400,
     "validation_error"),
    ({"kind": "refund", "reason": ""}, 400, "validation_error"),
    ({"kind": "refund", "reason": "长" * 201}, 400, "validation_error"),
    ({"kind": "swap", "reason": "x"}, 400, "validation_error"),
])
def test_bad_requests_are_400_and_claim_nothing(client, shop, body, status, code):
    order = _paid_express_order(client, shop)
    answer, error, _ = call(client, "POST", f"/v1/orders/{order['order_id']}/after-sales", body, token=shop["user"])
    assert answer == status, error
    assert_envelope(error, code)
    assert _ask(client, shop["user"], order["order_id"])[1]["amount_fen"] == order["payable_fen"]


def test_the_merchant_lists_requests_newest_first_by_status_with_a_cursor(client, shop):
    ids = [_ask(client, shop["user"], _paid_express_order(client, shop, 1)["order_id"])[1]["request_id"]
           for _ in range(3)]
    _admin(client, shop, ids[0], "reject", {"reason": "no"})
    page = call(client, "GET", "/v1/admin/after-sales?limit=2", token=shop["admin"])[1]
    assert [item["request_id"] for item in page["items"]] == [ids[2], ids[1]] and page["next_cursor"]
    assert page["items"][0]["user_id"] == shop["user_id"] and page["items"][0]["refund_status"] is None
    rest = call(client, "GET", f"/v1/admin/after-sales?limit=2&cursor={page['next_cursor']}", token=shop["admin"])[1]
    assert [item["request_id"] for item in rest["items"]] == [ids[0]]
    requested = call(client, "GET", "/v1/admin/after-sales?status=requested", token=shop["admin"])[1]
    assert [item["request_id"] for item in requested["items"]] == [ids[2], ids[1]]
    status, error, _ = call(client, "GET", f"/v1/admin/after-sales?status=rejected&cursor={page['next_cursor']}",
                            token=shop["admin"])
    assert status == 400
    assert_envelope(error, "invalid_cursor")
    assert call(client, "GET", "/v1/admin/after-sales?status=lost", token=shop["admin"])[0] == 400


def test_a_user_token_on_merchant_after_sales_routes_is_403(client, shop):
    for method, path in (("GET", "/v1/admin/after-sales"), ("POST", "/v1/admin/after-sales/x/approve"),
                         ("GET", "/v1/admin/after-sales/x")):
        assert call(client, method, path, token=shop["user"])[0] == 403
    assert call(client, "GET", "/v1/after-sales/x")[0] == 401


# ------------------------------------------------------------- paid and refunded through WeChat

@pytest.fixture
def paying_shop(shop, wechat_sim, notify_bridge):
    # Refunds stay PROCESSING until the test finishes them, so each notify arrives while the test
    # waits for it (never in the middle of another call through the in-process app).
    wechat_sim.state.pay.refund_delay_ms = None
    return shop


def _paid_through_wechat(client, wechat_sim, shop) -> dict:
    order = call(client, "POST", "/v1/orders", {
        "items": [{"sku_id": "sku-fuji-5", "quantity": 2}], "address_id": shop["address_id"],
        "checkout_token": uuid.uuid4().hex}, token=shop["user"])[1]
    params = call(client, "POST", f"/v1/orders/{order['order_id']}/pay", token=shop["user"])[1]
    sim_call(wechat_sim, "POST", "/__sim/pay/request-payment", {**params, "wait": True})
    assert orders.get_order(order["order_id"]).status == "paid"
    return order


def _wechat_finishes(wechat_sim, out_refund_no: str, status: str = "SUCCESS") -> None:
    sim_call(wechat_sim, "POST", "/__sim/pay/refund-notify", {"out_refund_no": out_refund_no, "status": status,
                                                               "wait": True})


def test_a_refund_through_wechat_pay_ends_with_its_signed_notify(client, wechat_sim, paying_shop):
    shop = paying_shop
    order = _paid_through_wechat(client, wechat_sim, shop)
    request = _ask(client, shop["user"], order["order_id"])[1]
    approved = _admin(client, shop, request["request_id"], "approve")[1]
    assert (approved["status"], approved["refund_status"]) == ("refunding", "processing")
    _admin(client, shop, request["request_id"], "approve")
    refunds_at_wechat = sim_call(wechat_sim, "GET", f"/__sim/pay/transactions/{order['out_trade_no']}")
    assert len(refunds_at_wechat["refunds"]) == 1, refunds_at_wechat
    _wechat_finishes(wechat_sim, approved["out_refund_no"])
    done = call(client, "GET", f"/v1/admin/after-sales/{request['request_id']}", token=shop["admin"])[1]
    assert (done["status"], done["refund_status"]) == ("refunded", "success")
    assert orders.get_order(order["order_id"]).status == "refunded"


def test_a_refund_wechat_closes_can_be_approved_again_with_a_new_refund_number(client, wechat_sim, paying_shop):
    shop = paying_shop
    order = _paid_through_wechat(client, wechat_sim, shop)
    request = _ask(client, shop["user"], order["order_id"])[1]
    first = _admin(client, shop, request["request_id"], "approve")[1]
    _wechat_finishes(wechat_sim, first["out_refund_no"], "CLOSED")
    failed = _mine(client, shop, request)
    assert failed["status"] == "approved" and "CLOSED" in failed["note"]
    second = _admin(client, shop, request["request_id"], "approve")[1]
    assert second["out_refund_no"] == f"AS{request['request_id']}-2" and second["refund_status"] == "processing"
    _wechat_finishes(wechat_sim, second["out_refund_no"])
    assert _mine(client, shop, request)["status"] == "refunded"
    assert orders.get_order(order["order_id"]).status == "refunded"


def test_an_exchange_takes_the_replacement_from_stock_once_when_the_goods_are_back_and_refunds_nothing(client, shop):
    order = _paid_express_order(client, shop)
    call(client, "POST", f"/v1/admin/orders/{order['order_id']}/ship", {"carrier": "顺丰速运", "tracking_no": "SF1234567890"},
         token=shop["admin"])
    status, request, _ = _ask(client, shop["user"], order["order_id"], kind="exchange",
                              lines=[{"sku_id": "sku-fuji-5", "quantity": 1}], reason="有一个坏了")
    assert status == 201 and request["kind"] == "exchange"
    assert _admin(client, shop, request["request_id"], "approve")[1]["status"] == "approved"
    assert _send_back(client, shop, request)[0] == 200
    before = counters("sku-fuji-5")
    for _ in range(2):
        received = _admin(client, shop, request["request_id"], "receive")[1]
        assert received["status"] == "exchanging" and received["out_refund_no"] is None
    after = counters("sku-fuji-5")
    assert (after["available"], after["sold"], after["stock_in"]) == (before["available"] - 1, before["sold"] + 1,
                                                                      before["stock_in"])
    shipped = _admin(client, shop, request["request_id"], "ship-replacement",
                     {"carrier": "顺丰速运", "tracking_no": "SF2222222222"})[1]
    assert shipped["status"] == "exchanged" and shipped["replacement_shipment"]["tracking_no"] == "SF2222222222"
    assert payments.refunds_of_order(order["order_id"]) == []
    status, error, _ = _ask(client, shop["user"], order["order_id"], kind="return",
                            lines=[{"sku_id": "sku-fuji-5", "quantity": 2}])
    assert status == 409  # the exchanged unit is claimed: it can never also be refunded
    assert_envelope(error, "refund_exceeds_order")


def test_a_rejection_can_be_disputed_once_and_the_merchant_decides_again(client, shop):
    order = _paid_express_order(client, shop)
    request = _ask(client, shop["user"], order["order_id"])[1]
    _admin(client, shop, request["request_id"], "reject", {"reason": "不符合退款条件"})
    dispute = lambda reason: call(client, "POST", f"/v1/after-sales/{request['request_id']}/dispute",  # noqa: E731
                                  {"reason": reason}, token=shop["user"])
    status, disputed, _ = dispute("我还没收到货")
    assert status == 200 and disputed["status"] == "disputed" and disputed["dispute_reason"] == "我还没收到货"
    assert dispute("我还没收到货")[1]["status"] == "disputed"  # again: unchanged
    approved = _admin(client, shop, request["request_id"], "approve")[1]
    assert approved["status"] in REFUND_STARTED and approved["amount_fen"] == request["amount_fen"]
    second = _ask(client, shop["user"], _paid_express_order(client, shop)["order_id"])[1]
    _admin(client, shop, second["request_id"], "reject", {"reason": "不符合"})
    call(client, "POST", f"/v1/after-sales/{second['request_id']}/dispute", {"reason": "理由"}, token=shop["user"])
    closed = _admin(client, shop, second["request_id"], "reject", {"reason": "维持原判"})[1]
    assert closed["status"] == "rejected"
    status, error, _ = call(client, "POST", f"/v1/after-sales/{second['request_id']}/dispute", {"reason": "再来"},
                            token=shop["user"])
    assert status == 409  # once
