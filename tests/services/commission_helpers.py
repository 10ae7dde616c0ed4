"""Building blocks for commission tests: users bound in a referral chain, paid orders, refunds
completed as the refund path leaves them (the refund item and the order's refunded total)."""
from __future__ import annotations

from chalicelib import clock
from chalicelib.domain.commissions import Rate
from chalicelib.storage import commissions as store
from chalicelib.storage import orders, payments, transactions, users
from chalicelib.storage.orders import OrderRecord
from chalicelib.storage.payments import SUCCESS, Refund
from tests.storage.order_fixtures import make_order, make_product, pay


def make_user(user_id: str) -> None:
    users.upsert_on_login(user_id, f"o{user_id}", None, clock.now())


def referral_chain(buyer: str = "buyer", level1: str = "dist1", level2: str | None = "dist2") -> None:
    """`level2` referred `level1`, who referred `buyer` (bindings before any order)."""
    for user_id in filter(None, (buyer, level1, level2)):
        make_user(user_id)
    if level2:
        users.bind_referrer(level1, level2, clock.now())
    users.bind_referrer(buyer, level1, clock.now())


def store_with_rates(level1: int = 100, level2: int = 30) -> None:
    make_product("p1", {"s1": 100, "s2": 100})
    store.put_rate("p1", Rate(level1, level2), clock.now())


def paid_order(order_id: str, buyer: str = "buyer", lines: dict[str, int] | None = None,
               price_fen: int = 1000) -> orders.Order:
    order = make_order(order_id, lines or {"s1": 2, "s2": 1}, user_id=buyer, price_fen=price_fen)
    transactions.place_order_reserving_stock(order)
    pay(order)
    return orders.get_order(order_id)


def complete(order_id: str) -> orders.Order:
    return orders.change_status(order_id, "paid", "completed", completed_at=clock.now())


def refund(order_id: str, out_refund_no: str, lines: tuple[tuple[str, int], ...], amount_fen: int,
           whole: bool = False) -> None:
    """A refund WeChat confirmed: its item (success) and the order's refunded total (and status)."""
    order = orders.get_order(order_id)
    now = clock.now()
    payments.create_refund(Refund(out_refund_no=out_refund_no, order_id=order_id,
                                  transaction_id=order.transaction_id, amount_fen=amount_fen, status=SUCCESS,
                                  reason="test", refund_id=f"50{out_refund_no}", request_id=None, lines=lines,
                                  restock="no", created_at=now, completed_at=now))
    actions = [OrderRecord.refunded_fen.set(order.refunded_fen + amount_fen)]
    if whole:
        actions.append(OrderRecord.status.set("refunded"))
    OrderRecord(order_id).update(actions=actions)


def figures(user_id: str) -> dict[str, int]:
    """The account's figures, asserted equal to the sum of its ledger entries."""
    from chalicelib.domain.commissions import balance

    account = store.get_account(user_id)
    assert account == balance((e.kind, e.amount_fen) for e in store.all_entries(user_id))
    return account
