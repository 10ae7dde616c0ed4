"""E-waybills through WeChat's logistics service: made once however often the merchant retries,
the order shipped with them, cancelled only before pickup; bad input writes nothing."""
from __future__ import annotations

import pytest

from chalicelib.services import waybills as waybill_service
from chalicelib.storage import orders, waybills
from tests.api.helpers import assert_envelope, call, sim_call, sim_fault
from tests.api.logistics_helpers import logistics_store  # noqa: F401  (a fixture)
from tests.api.logistics_helpers import PICKED_UP, SENDER, SF, create, paid_express_order, sim_push, sim_waybills
from tests.services.test_shipping_info import place_and_pay


@pytest.fixture
def order(client, wechat_sim, logistics_store) -> dict:
    return paid_express_order(client, wechat_sim, logistics_store[0])


def test_a_waybill_is_made_through_wechat_and_ships_the_order(client, wechat_sim, logistics_store, order):
    _, admin = logistics_store
    status, waybill = create(client, admin, order["order_id"])
    assert status == 201, waybill
    assert waybill["status"] == "created" and waybill["shipped"] and waybill["order_status"] == "shipped"
    assert waybill["wx_order_id"] == order["order_id"] and waybill["delivery_name"] == "顺丰速运"
    shipped = orders.get_order(order["order_id"])
    assert shipped.shipment["tracking_no"] == waybill["waybill_id"] and shipped.shipment["carrier"] == "顺丰速运"
    [made] = sim_waybills(wechat_sim, order["order_id"])
    assert made["waybill_id"] == waybill["waybill_id"] and made["biz_id"] == "SF_CASH"
    sent = wechat_sim.state.namespace("logistics", dict)["waybills"][f"wx_test_appid|{order['order_id']}"]["request"]
    assert sent["sender"] == SENDER
    assert (sent["receiver"]["name"], sent["receiver"]["mobile"], sent["receiver"]["area"]) == ("张三", "13800138000",
                                                                                              "徐汇区")
    assert sent["cargo"]["count"] == 1 and sent["cargo"]["weight"] == 2.5
    assert sent["cargo"]["detail_list"][0]["count"] == 1
    assert sent["service"] == {"service_type": 0, "service_name": "标准快递"} and sent["expect_time"] > 0


def test_a_retried_create_makes_one_waybill_and_answers_it_again(client, wechat_sim, logistics_store, order):
    _, admin = logistics_store
    first = create(client, admin, order["order_id"])
    again = create(client, admin, order["order_id"])
    assert (first[0], again[0]) == (201, 200)
    assert again[1]["waybill_id"] == first[1]["waybill_id"]
    [made] = sim_waybills(wechat_sim, order["order_id"])
    assert made["adds"] == 1


def test_a_crash_after_wechat_answered_is_healed_by_the_retry(client, wechat_sim, logistics_store, order,
                                                               monkeypatch):
    _, admin = logistics_store
    real = waybills.mark_created

    def crash(*args, **kwargs):
        raise RuntimeError("the Lambda died here")

    monkeypatch.setattr(waybills, "mark_created", crash)
    from chalicelib.schemas.logistics import WaybillBody
    with pytest.raises(RuntimeError):
        waybill_service.create_waybill(order["order_id"], WaybillBody.model_validate(SF))
    assert waybills.get_waybill(order["order_id"]).status == waybills.CREATING
    assert orders.get_order(order["order_id"]).status == "paid"
    [made] = sim_waybills(wechat_sim, order["order_id"])  # WeChat made it; we never stored it

    monkeypatch.setattr(waybills, "mark_created", real)
    status, waybill = create(client, admin, order["order_id"])
    assert status == 201 and waybill["waybill_id"] == made["waybill_id"] and waybill["shipped"]
    [again] = sim_waybills(wechat_sim, order["order_id"])
    assert again["adds"] == 2 and again["waybill_id"] == made["waybill_id"]


def test_other_parameters_while_a_waybill_is_pending_or_made_are_409(client, wechat_sim, logistics_store, order):
    _, admin = logistics_store
    sim_fault(wechat_sim, "express_add_order", http_status=503)  # no answer: the marker stays pending
    status, error = create(client, admin, order["order_id"])
    assert status == 502 and waybills.get_waybill(order["order_id"]).status == waybills.CREATING
    status, error = create(client, admin, order["order_id"], {**SF, "weight_kg": 9})
    assert status == 409
    assert_envelope(error, "waybill_in_progress")
    assert create(client, admin, order["order_id"])[0] == 201
    status, error = create(client, admin, order["order_id"], {"delivery_id": "ZTO", "biz_id": "acct-1"})
    assert status == 409
    assert_envelope(error, "waybill_exists")
    assert len(sim_waybills(wechat_sim)) == 1


def test_wechat_refusing_the_create_marks_it_failed_and_the_next_create_starts_over(client, wechat_sim,
                                                                                    logistics_store, order):
    _, admin = logistics_store
    sim_fault(wechat_sim, "express_add_order", errcode=9300501, errmsg="delivery logic fail")
    status, error = create(client, admin, order["order_id"])
    assert status == 502
    assert_envelope(error, "waybill_refused")
    failed = waybills.get_waybill(order["order_id"])
    assert (failed.status, failed.errcode) == (waybills.FAILED, 9300501)
    assert orders.get_order(order["order_id"]).status == "paid"
    status, waybill = create(client, admin, order["order_id"], {**SF, "biz_id": "SF_CASH"})
    assert status == 201 and waybill["wx_order_id"] == f"{order['order_id']}.2" and waybill["errcode"] is None


@pytest.mark.parametrize("body, field", [
    ({**SF, "delivery_id": "sf"}, "delivery_id"),
    ({"delivery_id": "SF"}, "biz_id"),
    ({**SF, "weight_kg": 0}, "weight_kg"),
    ({**SF, "insured_value_fen": 1.5}, "insured_value_fen"),
    ({**SF, "expect_time": "2030-01-01T10:00:00"}, "expect_time"),
    ({**SF, "colour": "red"}, "colour"),
])
def test_bad_input_is_400_and_writes_nothing(client, wechat_sim, logistics_store, order, body, field):
    _, admin = logistics_store
    status, error = create(client, admin, order["order_id"], body)
    assert status == 400
    assert_envelope(error, "validation_error")
    assert field in {detail["field"] for detail in error["Details"]}
    assert waybills.get_waybill(order["order_id"]) is None and sim_waybills(wechat_sim) == []
    assert orders.get_order(order["order_id"]).status == "paid"


def test_a_carrier_or_service_wechat_does_not_have_is_400_and_writes_nothing(client, wechat_sim, logistics_store,
                                                                             order):
    _, admin = logistics_store
    status, error = create(client, admin, order["order_id"], {**SF, "delivery_id": "NOPE"})
    assert status == 400
    assert_envelope(error, "unknown_carrier")
    status, error = create(client, admin, order["order_id"], {**SF, "service_type": 7})
    assert status == 400
    assert_envelope(error, "unknown_service_type")
    assert waybills.get_waybill(order["order_id"]) is None and sim_waybills(wechat_sim) == []


def test_only_a_paid_express_order_gets_a_waybill(client, wechat_sim, logistics_store):
    token, admin = logistics_store
    pickup = place_and_pay(client, wechat_sim, token, "pickup")
    status, error = create(client, admin, pickup["order_id"])
    assert status == 409
    assert_envelope(error, "not_express")
    assert create(client, admin, "no-such-order")[0] == 404
    assert waybills.get_waybill(pickup["order_id"]) is None and sim_waybills(wechat_sim) == []


def test_without_a_sender_address_nothing_is_made(client, wechat_sim, logistics_store, order, monkeypatch):
    _, admin = logistics_store
    monkeypatch.delenv("LOGISTICS_SENDER")
    status, error = create(client, admin, order["order_id"])
    assert status == 409
    assert_envelope(error, "logistics_not_configured")
    assert waybills.get_waybill(order["order_id"]) is None and sim_waybills(wechat_sim) == []


def test_cancel_before_pickup_cancels_at_wechat_and_again_changes_nothing(client, wechat_sim, logistics_store, order):
    _, admin = logistics_store
    made = create(client, admin, order["order_id"])[1]
    path = f"/v1/admin/orders/{order['order_id']}/waybill/cancel"
    status, cancelled, _ = call(client, "POST", path, token=admin)
    assert status == 200 and cancelled["status"] == "cancelled" and cancelled["watch_at"] is None
    assert sim_waybills(wechat_sim)[0]["status"] == "cancelled"
    status, again, _ = call(client, "POST", path, token=admin)
    assert status == 200 and again["cancelled_at"] == cancelled["cancelled_at"]
    assert sim_call(wechat_sim, "GET", "/__sim/stats")["calls"]["express_cancel_order"] == 1
    assert again["waybill_id"] == made["waybill_id"]


def test_cancel_after_a_pickup_scan_we_know_is_409_without_asking_wechat(client, wechat_sim, logistics_store, order):
    _, admin = logistics_store
    made = create(client, admin, order["order_id"])[1]
    assert sim_push(wechat_sim, made["waybill_id"], PICKED_UP)["deliveries"][0]["status"] == 200
    status, error, _ = call(client, "POST", f"/v1/admin/orders/{order['order_id']}/waybill/cancel", token=admin)
    assert status == 409
    assert_envelope(error, "waybill_picked_up")
    assert sim_call(wechat_sim, "GET", "/__sim/stats")["calls"].get("express_cancel_order", 0) == 0
    assert waybills.get_waybill(order["order_id"]).status == waybills.CREATED


def test_cancel_after_a_pickup_only_wechat_knows_is_409_and_changes_nothing(client, wechat_sim, logistics_store,
                                                                           order):
    _, admin = logistics_store
    made = create(client, admin, order["order_id"])[1]
    sim_push(wechat_sim, made["waybill_id"], PICKED_UP, push=False)  # the push has not reached us yet
    status, error, _ = call(client, "POST", f"/v1/admin/orders/{order['order_id']}/waybill/cancel", token=admin)
    assert status == 409
    assert_envelope(error, "waybill_picked_up")
    assert waybills.get_waybill(order["order_id"]).status == waybills.CREATED
    assert sim_waybills(wechat_sim)[0]["status"] == "created"


def test_the_carrier_table_comes_from_wechat_once_an_hour(client, wechat_sim, logistics_store):
    _, admin = logistics_store
    first = call(client, "GET", "/v1/admin/carriers", token=admin)[1]
    second = call(client, "GET", "/v1/admin/carriers", token=admin)[1]
    assert first == second and {"SF", "ZTO", "EMS"} <= {item["delivery_id"] for item in first["items"]}
    assert sim_call(wechat_sim, "GET", "/__sim/stats")["calls"]["express_get_all_delivery"] == 1
    assert call(client, "GET", "/v1/admin/carriers?refresh=true", token=admin)[0] == 200
    assert sim_call(wechat_sim, "GET", "/__sim/stats")["calls"]["express_get_all_delivery"] == 2


def test_waybill_routes_are_for_the_merchant(client, logistics_store, order):
    token, _ = logistics_store
    assert create(client, token, order["order_id"])[0] == 403
    assert call(client, "GET", "/v1/admin/carriers", token=token)[0] == 403
