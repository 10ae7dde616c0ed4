"""Flash sales through the API (moto + the test client): create, enter, drain, win, lose, return, end."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest

from chalicelib import clock
from chalicelib.services import flash_sales, order_lifecycle
from chalicelib.storage import orders
from tests.api.helpers import admin_token, assert_envelope, call, log_in
from tests.flash.helpers import drain_entries, sale_body
from tests.storage.order_fixtures import counters, pay

GIFT = "sku-giftcard-100"  # virtual: no address needed


@pytest.fixture
def admin(client, demo_store):
    return admin_token(client)


def _create(client, admin, **terms):
    status, sale, _ = call(client, "POST", "/v1/admin/flash-sales", sale_body(**terms), token=admin)
    assert status == 201, sale
    return sale


def _enter(client, token, sale_id, request_id=None, **body):
    payload = {"sku_id": GIFT, "quantity": 1, "request_id": request_id or uuid.uuid4().hex, **body}
    return call(client, "POST", f"/v1/flash-sales/{sale_id}/entries", payload, token=token)


def _ticket(client, token, ticket_id):
    status, ticket, _ = call(client, "GET", f"/v1/flash-sales/tickets/{ticket_id}", token=token)
    assert status == 200, ticket
    return ticket


def _admin_sale(client, admin, sale_id):
    status, sale, _ = call(client, "GET", f"/v1/admin/flash-sales/{sale_id}", token=admin)
    assert status == 200, sale
    return sale


def test_creating_a_sale_carves_its_units_out_of_available_stock(client, admin):
    before = counters(GIFT)
    sale = _create(client, admin, quantity=10, shards=4)
    assert (sale["remaining"], sale["shards"], sale["remaining_by_shard"]) == (10, 4, [3, 3, 2, 2])
    assert sale["status"] == "active" and sale["original_price_fen"] == 10000 and sale["price_fen"] == 5000
    after = counters(GIFT)
    assert after["available"] == before["available"] - 10 and after["allocated"] == 10


@pytest.mark.parametrize("change, status, code", [
    ({"quantity": 100_000}, 409, "insufficient_stock"),
    ({"sku_id": "sku-nope"}, 404, "sku_not_found"),
    ({"shards": 11, "quantity": 10}, 400, "validation_error"),
])
def test_a_sale_the_sku_cannot_give_is_refused_and_changes_nothing(client, admin, change, status, code):
    before = counters(GIFT)
    body = {**sale_body(), **change}
    answer, error, _ = call(client, "POST", "/v1/admin/flash-sales", body, token=admin)
    assert answer == status, error
    assert_envelope(error, code)
    assert counters(GIFT) == before


def test_a_sale_ending_before_it_starts_is_bad_input(client, admin):
    body = sale_body()
    body["ends_at"], body["starts_at"] = body["starts_at"], body["ends_at"]
    status, error, _ = call(client, "POST", "/v1/admin/flash-sales", body, token=admin)
    assert status == 400 and error["Details"][0]["message"]


def test_an_entry_is_queued_then_becomes_an_unpaid_order_at_the_sale_price(client, admin):
    sale = _create(client, admin, quantity=5)
    token, _ = log_in(client, "flash_buyer-1-1")
    status, ticket, _ = _enter(client, token, sale["sale_id"])
    assert status == 202 and ticket["status"] == "queued" and ticket["order_id"] is None
    assert drain_entries() == {"assigned": 1, "won": 1}
    won = _ticket(client, token, ticket["ticket_id"])
    assert won["status"] == "won" and won["order_id"]
    status, order, _ = call(client, "GET", f"/v1/orders/{won['order_id']}", token=token)
    assert status == 200 and order["status"] == "pending_payment" and order["flash_sale_id"] == sale["sale_id"]
    assert (order["payable_fen"], order["delivery_method"], order["lines"][0]["price_fen"]) == (5000, "none", 5000)
    deadline = datetime.fromisoformat(order["pay_deadline"]) - datetime.fromisoformat(order["created_at"])
    assert timedelta(minutes=4) < deadline <= timedelta(minutes=5)  # FLASH_PAY_TIMEOUT_MINUTES, not 15
    assert counters(GIFT)["allocated"] == 4 and counters(GIFT)["reserved"] == 1
    assert _admin_sale(client, admin, sale["sale_id"])["remaining"] == 4


def test_a_repeated_request_id_answers_the_same_ticket_and_counts_as_a_duplicate(client, admin):
    sale = _create(client, admin)
    token, _ = log_in(client, "flash_buyer-2-1")
    first = _enter(client, token, sale["sale_id"], request_id="req-same-0001")
    again = _enter(client, token, sale["sale_id"], request_id="req-same-0001")
    assert first[0] == again[0] == 202 and first[1]["ticket_id"] == again[1]["ticket_id"]
    drain_entries()
    assert len(list(orders.OrderRecord.scan())) == 1
    view = _admin_sale(client, admin, sale["sale_id"])
    assert view["rejects"]["duplicate_request"] == 1 and view["won"] == 1 and view["queued"] == 0


def test_a_second_entry_over_the_per_user_limit_is_refused(client, admin):
    sale = _create(client, admin, per_user_limit=1)
    token, _ = log_in(client, "flash_buyer-3-1")
    assert _enter(client, token, sale["sale_id"])[0] == 202
    status, error, _ = _enter(client, token, sale["sale_id"])
    assert status == 409
    assert_envelope(error, "limit_exceeded")
    status, error, _ = _enter(client, token, sale["sale_id"], quantity=2)
    assert status == 409 and error["Code"] == "limit_exceeded"
    assert _admin_sale(client, admin, sale["sale_id"])["rejects"]["limit_exceeded"] == 2


def test_entries_outside_the_window_are_refused(client, admin):
    upcoming = _create(client, admin, starts_at=clock.now() + timedelta(hours=1))
    token, _ = log_in(client, "flash_buyer-4-1")
    status, error, _ = _enter(client, token, upcoming["sale_id"])
    assert status == 409 and error["Code"] == "not_started"
    ended = _create(client, admin)
    call(client, "POST", f"/v1/admin/flash-sales/{ended['sale_id']}/stop", token=admin)
    status, error, _ = _enter(client, token, ended["sale_id"])
    assert status == 409 and error["Code"] == "ended"


def test_a_sku_not_on_sale_an_unknown_sale_and_no_token_are_refused(client, admin):
    sale = _create(client, admin)
    token, _ = log_in(client, "flash_buyer-5-1")
    status, error, _ = _enter(client, token, sale["sale_id"], sku_id="sku-giftcard-200")
    assert status == 404 and error["Code"] == "sku_not_on_sale"
    status, error, _ = _enter(client, token, "fs-unknown")
    assert status == 404 and error["Code"] == "flash_sale_not_found"
    status, _, _ = _enter(client, None, sale["sale_id"])
    assert status == 401
    assert _admin_sale(client, admin, sale["sale_id"])["rejects"]["sku_not_on_sale"] == 1


def test_entries_after_the_last_unit_are_lost_and_then_refused_as_sold_out(client, admin):
    sale = _create(client, admin, quantity=1)
    tokens = [log_in(client, f"flashrush{n}-1")[0] for n in range(3)]
    tickets = [_enter(client, token, sale["sale_id"])[1]["ticket_id"] for token in tokens[:2]]
    assert drain_entries() == {"assigned": 1, "won": 1, "lost": 1}
    assert [_ticket(client, t, ticket)["status"] for t, ticket in zip(tokens, tickets)] == ["won", "lost"]
    flash_sales.forget_sale()  # another instance: the flag is read, not the stock
    status, error, _ = _enter(client, tokens[2], sale["sale_id"])
    assert status == 409 and error["Code"] == "sold_out"
    view = _admin_sale(client, admin, sale["sale_id"])
    assert (view["status"], view["remaining"], view["won"], view["lost"], view["rejects"]["sold_out"]) == (
        "sold_out", 0, 1, 1, 1)


def test_one_user_over_a_burst_of_five_is_rate_limited_with_retry_after(client, admin):
    sale = _create(client, admin, quantity=50, per_user_limit=99)
    token, _ = log_in(client, "flash_burst-1")
    with clock.frozen_at(clock.now()):
        answers = [_enter(client, token, sale["sale_id"]) for _ in range(7)]
    assert [status for status, _, _ in answers] == [202] * 5 + [429, 429]
    assert_envelope(answers[5][1], "rate_limited")
    assert int(answers[5][2]["Retry-After"]) >= 1
    assert _admin_sale(client, admin, sale["sale_id"])["rejects"]["rate_limited"] == 2


def test_an_unpaid_flash_order_gives_its_unit_back_to_the_sale_for_the_next_buyer(client, admin):
    sale = _create(client, admin, quantity=1)
    first, _ = log_in(client, "flash_slow-payer-1")
    second, _ = log_in(client, "flash_next-buyer-1")
    ticket = _enter(client, first, sale["sale_id"])[1]
    drain_entries()
    order_id = _ticket(client, first, ticket["ticket_id"])["order_id"]
    status, error, _ = _enter(client, second, sale["sale_id"])  # the flag went up with the last unit
    assert status == 409 and error["Code"] == "sold_out"
    order = orders.get_order(order_id)
    with clock.frozen_at(order.pay_deadline + timedelta(seconds=1)):
        assert order_lifecycle.close_if_overdue(order_id) == "closed"
    assert counters(GIFT)["reserved"] == 0 and counters(GIFT)["allocated"] == 1
    view = _admin_sale(client, admin, sale["sale_id"])
    assert view["remaining"] == 1 and view["status"] == "active"
    status, retry, _ = _enter(client, second, sale["sale_id"])  # the return cleared the flag
    assert status == 202
    drain_entries()
    assert _ticket(client, second, retry["ticket_id"])["status"] == "won"


def test_a_paid_flash_order_sells_the_unit(client, admin):
    sale = _create(client, admin, quantity=2)
    token, _ = log_in(client, "flash_payer-1")
    ticket = _enter(client, token, sale["sale_id"])[1]
    drain_entries()
    order = orders.get_order(_ticket(client, token, ticket["ticket_id"])["order_id"])
    pay(order)
    assert counters(GIFT)["sold"] == 1 and counters(GIFT)["allocated"] == 1


def test_stopping_a_sale_returns_unsold_units_and_queued_tickets_lose(client, admin):
    before = counters(GIFT)
    sale = _create(client, admin, quantity=5)
    token, _ = log_in(client, "flash_late-1")
    ticket = _enter(client, token, sale["sale_id"])[1]
    status, stopped, _ = call(client, "POST", f"/v1/admin/flash-sales/{sale['sale_id']}/stop", token=admin)
    assert status == 200 and stopped["status"] == "ended" and stopped["unsold_returned"] == 5
    assert counters(GIFT) == before
    assert drain_entries() == {"lost": 1}
    assert _ticket(client, token, ticket["ticket_id"])["status"] == "lost"
    again = call(client, "POST", f"/v1/admin/flash-sales/{sale['sale_id']}/stop", token=admin)[1]
    assert again["unsold_returned"] == 5 and counters(GIFT) == before


def test_the_sweep_ends_sales_past_their_end(client, admin):
    sale = _create(client, admin, quantity=3, minutes=10)
    with clock.frozen_at(clock.now() + timedelta(minutes=11)):
        assert flash_sales.settle_due_sales() == {"settled": 1}
        assert flash_sales.settle_due_sales() == {}
    assert _admin_sale(client, admin, sale["sale_id"])["status"] == "ended"
    assert counters(GIFT)["allocated"] == 0


def test_the_buyers_list_shows_running_and_upcoming_sales_without_a_token(client, admin):
    running = _create(client, admin, quantity=3)
    upcoming = _create(client, admin, starts_at=clock.now() + timedelta(hours=1))
    ended = _create(client, admin)
    call(client, "POST", f"/v1/admin/flash-sales/{ended['sale_id']}/stop", token=admin)
    status, page, _ = call(client, "GET", "/v1/flash-sales")
    assert status == 200
    by_id = {sale["sale_id"]: sale for sale in page["items"]}
    assert {running["sale_id"], upcoming["sale_id"]} <= set(by_id) and ended["sale_id"] not in by_id
    assert by_id["fs-demo-cherry"]["status"] == "active"  # the demo store's own sale
    assert by_id[running["sale_id"]]["status"] == "active" and by_id[running["sale_id"]]["remaining"] == 3
    assert by_id[upcoming["sale_id"]]["status"] == "upcoming"


def test_a_ticket_of_another_user_is_not_found(client, admin):
    sale = _create(client, admin)
    owner, _ = log_in(client, "flash_owner-1")
    other, _ = log_in(client, "flash_other-1")
    ticket = _enter(client, owner, sale["sale_id"])[1]
    status, error, _ = call(client, "GET", f"/v1/flash-sales/tickets/{ticket['ticket_id']}", token=other)
    assert status == 404 and error["Code"] == "ticket_not_found"


def test_a_physical_sku_goes_to_the_default_address_or_needs_one(client, admin):
    sale = _create(client, admin, sku_id="sku-durian-3kg", quantity=2, price_fen=5000)
    token, _ = log_in(client, "flash_durian-1")
    status, error, _ = _enter(client, token, sale["sale_id"], sku_id="sku-durian-3kg")
    assert status == 400 and error["Code"] == "address_required"
    address = {"name": "张三", "phone": "13800138000", "province": "上海市", "city": "上海市", "district": "徐汇区",
               "detail": "漕溪北路88号", "is_default": True}
    assert call(client, "POST", "/v1/addresses", address, token=token)[0] == 201
    status, ticket, _ = _enter(client, token, sale["sale_id"], sku_id="sku-durian-3kg")
    assert status == 202
    drain_entries()
    order = orders.get_order(_ticket(client, token, ticket["ticket_id"])["order_id"])
    assert order.delivery_method == "express" and order.address["detail"] == "漕溪北路88号"
    assert order.payable_fen == 5000 + 800  # under 99 yuan: the express fee applies


def test_changing_a_started_sale_allows_only_its_end(client, admin):
    sale = _create(client, admin)
    path = f"/v1/admin/flash-sales/{sale['sale_id']}"
    status, error, _ = call(client, "PATCH", path, {"price_fen": 1}, token=admin)
    assert status == 409 and error["Code"] == "flash_sale_started"
    later = (clock.now() + timedelta(hours=2)).isoformat()
    status, changed, _ = call(client, "PATCH", path, {"ends_at": later}, token=admin)
    assert status == 200 and datetime.fromisoformat(changed["ends_at"]) == datetime.fromisoformat(later).replace(microsecond=0)


def test_a_payment_after_a_flash_order_closed_is_refunded_not_revived(client, admin, monkeypatch):
    from chalicelib.services import payments
    from chalicelib.storage import payments as payment_store
    from chalicelib.wechat.pay_types import Transaction
    from tests.conftest import TEST_ENV, reset_process_caches

    monkeypatch.setenv("WECHAT_PAY_MCH_ID", "1900000109")
    reset_process_caches()
    sale = _create(client, admin, quantity=1)
    token, _ = log_in(client, "flash_late-payer-1")
    ticket = _enter(client, token, sale["sale_id"])[1]
    drain_entries()
    order = orders.get_order(_ticket(client, token, ticket["ticket_id"])["order_id"])
    with clock.frozen_at(order.pay_deadline + timedelta(seconds=1)):
        assert order_lifecycle.close_if_overdue(order.order_id) == "closed"
    late = Transaction(out_trade_no=order.out_trade_no, transaction_id="4200000000000777", trade_state="SUCCESS",
                       amount_total_fen=order.payable_fen, payer_openid="o", appid=TEST_ENV["WECHAT_APPID"],
                       mchid="1900000109", success_time=clock.now())
    assert payments.apply_transaction(late, "v3") == "refunding"
    assert orders.get_order(order.order_id).status == "cancelled"
    assert [refund.amount_fen for refund in payment_store.refunds_of_order(order.order_id)] == [order.payable_fen]
    assert counters(GIFT)["sold"] == 0 and _admin_sale(client, admin, sale["sale_id"])["remaining"] == 1


def test_a_batch_holding_one_ticket_twice_makes_one_order(client, admin):
    from chalicelib.schemas.flash_sales import FlashEntryMessage
    from chalicelib.services import flash_orders

    sale = _create(client, admin)
    token, _ = log_in(client, "flash_twice-1")
    ticket = _enter(client, token, sale["sale_id"])[1]
    message = FlashEntryMessage(ticket_id=ticket["ticket_id"], sale_id=sale["sale_id"])
    assert flash_orders.process_entries([message, message]) == {"duplicate_message": 1, "assigned": 1, "won": 1}
    assert len(list(orders.OrderRecord.scan())) == 1


def test_many_users_from_one_address_meet_the_per_ip_limit(client, admin, monkeypatch):
    from tests.conftest import reset_process_caches

    monkeypatch.setenv("FLASH_IP_BURST", "2")
    reset_process_caches()
    sale = _create(client, admin, quantity=10)
    tokens = [log_in(client, f"flashnat{n}-1")[0] for n in range(3)]
    with clock.frozen_at(clock.now()):
        answers = [_enter(client, token, sale["sale_id"])[0] for token in tokens]
    assert answers == [202, 202, 429]


def test_a_ticket_whose_message_was_lost_is_queued_again_by_a_later_replay(client, admin):
    import boto3

    from chalicelib import queues

    sale = _create(client, admin)
    token, _ = log_in(client, "flash_lostmsg-1")
    ticket = _enter(client, token, sale["sale_id"], request_id="lost-message-1")[1]
    sqs, url = boto3.client("sqs"), queues.queue_url(queues.FLASH_ENTRIES.name)
    for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])  # lost on the way
    assert _enter(client, token, sale["sale_id"], request_id="lost-message-1")[0] == 202
    assert drain_entries() == {}  # a replay right away sends nothing: the first message may be on its way
    with clock.frozen_at(clock.now() + timedelta(seconds=11)):
        assert _enter(client, token, sale["sale_id"], request_id="lost-message-1")[1]["ticket_id"] == \
            ticket["ticket_id"]
    assert drain_entries() == {"assigned": 1, "won": 1}
    assert _ticket(client, token, ticket["ticket_id"])["status"] == "won"


def test_a_stop_held_back_by_a_moving_shard_still_stops_selling_and_the_sweep_finishes_it(client, admin,
                                                                                         monkeypatch):
    from chalicelib.storage import flash_transactions

    sale = _create(client, admin, quantity=4, shards=2)
    real_drain = flash_transactions.drain_shard

    def always_moved(*args):
        raise flash_transactions.ShardsMoved()

    monkeypatch.setattr(flash_transactions, "drain_shard", always_moved)
    status, stopped, _ = call(client, "POST", f"/v1/admin/flash-sales/{sale['sale_id']}/stop", token=admin)
    assert status == 200 and stopped["status"] == "ended" and stopped["remaining"] == 4
    token, _ = log_in(client, "flash_afterstop-1")
    assert _enter(client, token, sale["sale_id"])[1]["Code"] == "ended"  # nothing sells meanwhile
    monkeypatch.setattr(flash_transactions, "drain_shard", real_drain)
    assert flash_sales.settle_due_sales() == {"settled": 1}
    view = _admin_sale(client, admin, sale["sale_id"])
    assert (view["remaining"], view["unsold_returned"], view["settled_at"] is not None) == (0, 4, True)
    assert counters(GIFT)["allocated"] == 0


def test_a_started_sale_past_its_end_cannot_be_reopened(client, admin):
    sale = _create(client, admin, minutes=10)
    later = (clock.now() + timedelta(hours=5)).isoformat()
    with clock.frozen_at(clock.now() + timedelta(minutes=11)):
        status, error, _ = call(client, "PATCH", f"/v1/admin/flash-sales/{sale['sale_id']}", {"ends_at": later},
                                token=admin)
    assert status == 409 and error["Code"] == "flash_sale_started"


def test_an_entry_sqs_refuses_is_withdrawn_and_answers_503(client, admin, monkeypatch):
    from chalicelib import queues

    sale = _create(client, admin)
    token, _ = log_in(client, "flash_nosqs-1")

    def refuse(*args, **kwargs):
        raise ConnectionError("SQS is down")

    with monkeypatch.context() as patched:
        patched.setattr(queues, "send_message", refuse)
        status, error, headers = _enter(client, token, sale["sale_id"], request_id="sqs-down-0001")
    assert status == 503 and error["Code"] == "queue_unavailable" and headers["Retry-After"] == "1"
    status, ticket, _ = _enter(client, token, sale["sale_id"], request_id="sqs-down-0001")
    assert status == 202  # the same request again: withdrawn before, so accepted now, within the limit
    assert drain_entries() == {"assigned": 1, "won": 1}


def test_a_request_racing_its_own_withdrawal_is_told_to_retry(client, admin, monkeypatch):
    from chalicelib.storage import flash_tickets

    sale = _create(client, admin)
    token, _ = log_in(client, "flash_racer-1")

    def exists(*args, **kwargs):
        raise flash_tickets.TicketExists()

    monkeypatch.setattr(flash_tickets, "accept_ticket", exists)
    status, error, _ = _enter(client, token, sale["sale_id"])
    assert status == 409 and error["Code"] == "entry_in_progress"


def test_the_sweep_sends_undecided_tickets_again_and_loses_those_of_ended_sales(client, admin):
    import boto3

    from chalicelib import queues
    from chalicelib.services import flash_orders

    running, stopped = _create(client, admin), _create(client, admin)
    token, _ = log_in(client, "flash_stale-1")
    waiting = _enter(client, token, running["sale_id"])[1]
    orphan = _enter(client, token, stopped["sale_id"])[1]
    sqs, url = boto3.client("sqs"), queues.queue_url(queues.FLASH_ENTRIES.name)
    for _ in range(3):  # both messages lost
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    call(client, "POST", f"/v1/admin/flash-sales/{stopped['sale_id']}/stop", token=admin)
    assert flash_orders.resend_stale_tickets() == {}  # not stale yet
    with clock.frozen_at(clock.now() + timedelta(minutes=4)):
        assert flash_orders.resend_stale_tickets() == {"resent": 1, "lost": 1}
    assert drain_entries() == {"assigned": 1, "won": 1}
    assert _ticket(client, token, waiting["ticket_id"])["status"] == "won"
    assert _ticket(client, token, orphan["ticket_id"])["status"] == "lost"
    with clock.frozen_at(clock.now() + timedelta(minutes=4)):
        assert flash_orders.resend_stale_tickets() == {}  # decided tickets leave the index


def test_a_repeated_create_with_one_request_id_carves_the_units_once(client, admin):
    body = {**sale_body(quantity=6), "request_id": "create-sale-0001"}
    first = call(client, "POST", "/v1/admin/flash-sales", body, token=admin)
    again = call(client, "POST", "/v1/admin/flash-sales", body, token=admin)
    assert (first[0], again[0]) == (201, 200) and first[1]["sale_id"] == again[1]["sale_id"]
    assert counters(GIFT)["allocated"] == 6
    status, error, _ = call(client, "POST", "/v1/admin/flash-sales", {**body, "quantity": 7}, token=admin)
    assert status == 409 and error["Code"] == "request_id_reused"
