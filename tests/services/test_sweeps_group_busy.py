"""A group order whose group kept moving (GroupBusy) while a sweep applied its payment is counted
as unavailable for that order and the sweep goes on (the next run applies it), instead of the
whole sweep aborting."""
from __future__ import annotations

from types import SimpleNamespace

from chalicelib.services import group_buys, payments


def test_group_busy_on_one_order_does_not_abort_the_unpaid_orders_sweep(monkeypatch):
    unpaid = {oid: SimpleNamespace(order_id=oid, status="pending_payment", prepay={"x": 1}, out_trade_no=f"t{oid}")
              for oid in ("o1", "o2")}
    monkeypatch.setattr(payments, "overdue_unpaid_order_ids", lambda due, limit: ["o1", "o2"])
    monkeypatch.setattr(payments.orders, "get_order", unpaid.get)
    monkeypatch.setattr(payments, "gateway", lambda: SimpleNamespace(query=lambda no: no, version="v3"))

    def apply(transaction, channel):
        if transaction == "to1":
            raise group_buys.GroupBusy("o1")
        return "paid"

    monkeypatch.setattr(payments, "apply_transaction", apply)
    assert payments.reconcile_unpaid_orders() == {"unavailable": 1, "paid": 1}
    order = unpaid["o1"]
    monkeypatch.setattr(payments, "gateway", lambda: SimpleNamespace(
        query=lambda no: SimpleNamespace(trade_state="SUCCESS"), version="v3"))
    monkeypatch.setattr(payments, "apply_transaction", lambda t, c: (_ for _ in ()).throw(group_buys.GroupBusy("o1")))
    assert payments.settle_with_wechat(order) == "unavailable"  # nothing closed; the next sweep asks again
