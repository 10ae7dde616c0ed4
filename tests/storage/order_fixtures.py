"""Building blocks for order tests: a product with SKUs, and an unpaid order for them."""
from __future__ import annotations

from datetime import timedelta

from chalicelib import clock
from chalicelib.storage import catalog
from chalicelib.storage.catalog import SkuRecord
from chalicelib.storage.orders import Order, OrderLine


def make_product(product_id: str = "p1", skus: dict[str, int] | None = None, price_fen: int = 1000) -> None:
    catalog.create_product(product_id, name="苹果", category_path=["c1"], description=None, images=[],
                           keywords=[], virtual=False, now=clock.now())
    for sku_id, stock in (skus or {"s1": 10}).items():
        catalog.create_sku(sku_id, product_id=product_id, specs={"重量": "5斤"}, price_fen=price_fen, stock=stock)


def make_order(order_id: str, lines: dict[str, int], user_id: str = "u1", product_id: str = "p1",
               price_fen: int = 1000, deadline_minutes: float = 15) -> Order:
    now = clock.now()  # created 15 minutes before its deadline (the default PAY_TIMEOUT_MINUTES)
    order_lines = tuple(OrderLine(sku_id=sku, product_id=product_id, name="苹果", specs={"重量": "5斤"},
                                  price_fen=price_fen, quantity=quantity, subtotal_fen=price_fen * quantity,
                                  discount_fen=0, payable_fen=price_fen * quantity)
                        for sku, quantity in lines.items())
    goods = sum(line.subtotal_fen for line in order_lines)
    return Order(order_id=order_id, user_id=user_id, out_trade_no=order_id, status="pending_payment",
                 request_fingerprint="f", created_at=now + timedelta(minutes=deadline_minutes - 15),
                 pay_deadline=now + timedelta(minutes=deadline_minutes),
                 delivery_method="pickup", lines=order_lines, adjustments=(), goods_fen=goods, discount_fen=0,
                 delivery_fee_fen=0, payable_fen=goods, store_id="st1")


def counters(sku_id: str) -> dict[str, int]:
    sku = SkuRecord.get(sku_id, consistent_read=True)
    values = {name: int(getattr(sku, name)) for name in ("available", "allocated", "reserved", "sold", "stock_in")}
    assert values["stock_in"] == values["available"] + values["allocated"] + values["reserved"] + values["sold"]
    return values


def pay(order: Order, transaction_id: str | None = None) -> None:
    """Apply a payment for the whole order, as a verified notify would."""
    from chalicelib.storage import transactions
    from chalicelib.storage.payments import APPLIED, Payment

    payment = Payment(transaction_id=transaction_id or f"4200{order.order_id}", order_id=order.order_id,
                      amount_fen=order.payable_fen, paid_at=clock.now(), channel="v3", outcome=APPLIED)
    transactions.pay_order(order, payment, clock.now())


def recorded_payments(order_id: str) -> list:
    """Every payment row recorded for the order (a Scan: tests only; the app has no index by order)."""
    from chalicelib.storage.payments import PaymentRecord, _to_payment

    return sorted((_to_payment(record) for record in PaymentRecord.scan(PaymentRecord.order_id == order_id,
                                                                        consistent_read=True)),
                  key=lambda payment: payment.paid_at)
