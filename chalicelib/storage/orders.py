"""Table `orders`: one item per order, with its lines, adjustments and address snapshot.

Indexes (all keys only: an index that copies the whole order is rewritten, and paid for, on
every change of the order, paying a notify included; lists read the keys, then the orders in
one BatchGetItem: storage/order_lists.py):
- `by_user` (user_id, created_at): a user's orders, newest first;
- `by_status` (status, created_at): the merchant's order list by status and time;
- `all_by_time` ("all", created_at): the merchant's list without a status filter;
- `by_timer` (timer_kind, timer_at), sparse: only orders waiting on a deadline carry it
  (`auto_confirm` while shipped), so the safety-net sweep Queries the few due orders instead
  of scanning. Unpaid orders do not carry a timer: `by_status` already holds them by creation
  time, and their deadline follows from it (overdue_unpaid_order_ids), so placing an order
  writes three index entries, not four, and paying or closing one removes none.

Stock moves in the same TransactWrite as the status change that causes it (storage/stock.py).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from pynamodb.attributes import (BooleanAttribute, ListAttribute, MapAttribute, NumberAttribute,
                                 UnicodeAttribute, UnicodeSetAttribute, UTCDateTimeAttribute)
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection
from pynamodb.models import Model

from chalicelib.domain.pricing import QuoteLine as OrderLine  # an order keeps its quote's lines
from chalicelib.storage.base import ConditionFailed, KeysOnlyIndex, TableMeta, condition_failure_as, table_name


ALL_ORDERS = "all"


class ByUser(KeysOnlyIndex):
    class Meta(KeysOnlyIndex.Meta):
        index_name = "by_user"

    user_id = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class ByStatus(GlobalSecondaryIndex):
    """Keys plus `pay_deadline` (a few bytes, never changed): the pay-deadline sweep filters the
    unpaid orders on the index itself, without reading the orders that are not due yet."""
    class Meta:
        index_name = "by_status"
        projection = IncludeProjection(["pay_deadline"])

    status = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class AllByTime(KeysOnlyIndex):
    """Every order by creation time, for the merchant's unfiltered list. One partition: fine for
    a store's order rate (a partition takes ~1,000 writes/s); shard the key if that ever binds."""
    class Meta(KeysOnlyIndex.Meta):
        index_name = "all_by_time"

    all_orders = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class ByTimer(KeysOnlyIndex):
    """Sparse: only orders waiting on a deadline carry its keys; the sweeps need just the ids."""
    class Meta(KeysOnlyIndex.Meta):
        index_name = "by_timer"

    timer_kind = UnicodeAttribute(hash_key=True)
    timer_at = UTCDateTimeAttribute(range_key=True)


class LineAttribute(MapAttribute):
    sku_id = UnicodeAttribute()
    product_id = UnicodeAttribute()
    name = UnicodeAttribute()
    specs = MapAttribute(default=dict)
    price_fen = NumberAttribute()
    quantity = NumberAttribute()
    subtotal_fen = NumberAttribute()
    discount_fen = NumberAttribute()
    payable_fen = NumberAttribute()
    virtual = BooleanAttribute(default=False)


class AdjustmentAttribute(MapAttribute):
    kind = UnicodeAttribute()
    code = UnicodeAttribute()
    amount_fen = NumberAttribute()
    description = UnicodeAttribute()


class ShippingUploadAttribute(MapAttribute):
    """The order's shipping-info upload to WeChat (services/shipping_info.py)."""
    status = UnicodeAttribute()  # pending | uploaded | failed
    logistics_type = NumberAttribute()  # WeChat's: 1 express, 3 virtual goods, 4 user pickup
    attempts = NumberAttribute(default=0)
    updated_at = UTCDateTimeAttribute()  # last queued or tried: the sweep re-queues a pending one idle 15 min
    uploaded_at = UTCDateTimeAttribute(null=True)
    errcode = NumberAttribute(null=True)  # WeChat's last refusal
    errmsg = UnicodeAttribute(null=True)


class OrderRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("orders")
        stream_view_type = "NEW_AND_OLD_IMAGES"  # the analytics consumer (services/analytics.py)

    order_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    out_trade_no = UnicodeAttribute()
    status = UnicodeAttribute()
    request_fingerprint = UnicodeAttribute()  # what the checkout_token was first used for
    created_at = UTCDateTimeAttribute()
    pay_deadline = UTCDateTimeAttribute()
    paid_at = UTCDateTimeAttribute(null=True)
    transaction_id = UnicodeAttribute(null=True)  # WeChat Pay's, once paid
    prepay = MapAttribute(null=True)  # {"prepay_id", "version", "created_at"}: reused while the order is unpaid
    cancelled_at = UTCDateTimeAttribute(null=True)
    cancel_reason = UnicodeAttribute(null=True)  # "user" or "timeout"
    shipped_at = UTCDateTimeAttribute(null=True)
    completed_at = UTCDateTimeAttribute(null=True)
    delivery_method = UnicodeAttribute()
    address = MapAttribute(null=True)  # snapshot at order time
    store_id = UnicodeAttribute(null=True)
    shipment = MapAttribute(null=True)  # {carrier, tracking_no, shipped_at}
    shipping_upload = ShippingUploadAttribute(null=True)
    flash_sale = MapAttribute(null=True)  # {sale_id, shard, ticket_id}: a flash-sale order returns its unit there
    offer = MapAttribute(null=True)  # {kind: group_buy|bargain, id: group_id|bargain_id, activity_id}
    awaiting_group = BooleanAttribute(null=True)  # a group order whose group has not succeeded: cannot ship
    lines = ListAttribute(of=LineAttribute)
    adjustments = ListAttribute(of=AdjustmentAttribute, default=list)
    goods_fen = NumberAttribute()
    discount_fen = NumberAttribute()
    delivery_fee_fen = NumberAttribute()
    payable_fen = NumberAttribute()
    # Money back on the order's own payment, moved in each refund's completion transaction (never
    # above payable_fen): the order becomes `refunded` from this figure, never from an index read.
    refunded_fen = NumberAttribute(null=True)
    # out_refund_nos of refunds of unshipped units still in flight: shipping waits for them
    # (else the buyer would get the goods and the money). DynamoDB drops the set when it empties.
    refunds_in_flight = UnicodeSetAttribute(null=True)
    sales_counted = BooleanAttribute(null=True)  # the sales job counted its units (services/sales_counts.py)
    # The points it redeemed, by the lot (expiry day, ISO) each came from: a cancel or refund puts
    # back exactly those (domain/points.py). Absent: no points.
    points_parts = MapAttribute(null=True)
    timer_kind = UnicodeAttribute(null=True)
    timer_at = UTCDateTimeAttribute(null=True)
    all_orders = UnicodeAttribute(default=ALL_ORDERS)
    # Split shipments (storage/order_ops.py): units shipped per sku_id, each package, and a version
    # every shipment bumps (buyer refund requests of a paid order are conditioned on it).
    shipped_units = MapAttribute(null=True)
    shipments = ListAttribute(null=True)  # [{shipment_id, carrier, tracking_no, lines, shipped_at, by}]
    ship_version = NumberAttribute(null=True)
    remarks = ListAttribute(null=True)  # the merchant's notes: [{at, by, text}]
    address_version = NumberAttribute(null=True)  # bumped by each merchant address change

    by_user = ByUser()
    all_by_time = AllByTime()
    by_status = ByStatus()
    by_timer = ByTimer()


TIMER_AUTO_CONFIRM = "auto_confirm"


@dataclass(frozen=True)
class Order:
    order_id: str
    user_id: str
    out_trade_no: str
    status: str
    request_fingerprint: str
    created_at: datetime
    pay_deadline: datetime
    delivery_method: str
    lines: tuple[OrderLine, ...]
    adjustments: tuple[dict[str, Any], ...]
    goods_fen: int
    discount_fen: int
    delivery_fee_fen: int
    payable_fen: int
    address: dict[str, Any] | None = None
    store_id: str | None = None
    shipment: dict[str, Any] | None = None
    paid_at: datetime | None = None
    transaction_id: str | None = None
    prepay: dict[str, Any] | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    shipped_at: datetime | None = None
    completed_at: datetime | None = None
    shipping_upload: dict[str, Any] | None = None
    flash_sale: dict[str, Any] | None = None
    refunded_fen: int = 0
    refunds_in_flight: frozenset[str] = frozenset()
    sales_counted: bool = False
    points_parts: dict[date, int] | None = None
    offer: dict[str, Any] | None = None
    awaiting_group: bool = False
    shipped_units: dict[str, int] | None = None
    shipments: tuple[dict[str, Any], ...] = ()
    ship_version: int = 0
    remarks: tuple[dict[str, Any], ...] = ()
    address_version: int = 0

    @property
    def points_used(self) -> int:
        return sum((self.points_parts or {}).values())

    @property
    def coupon_ids(self) -> tuple[str, ...]:
        """The coupons this order applied (each is one `coupon` adjustment, code = coupon_id)."""
        return tuple(adjustment["code"] for adjustment in self.adjustments if adjustment["kind"] == "coupon")


def to_record(order: Order) -> OrderRecord:
    """A new order's item (the pay-deadline sweep finds it through `by_status`)."""
    return OrderRecord(
        order.order_id, user_id=order.user_id, out_trade_no=order.out_trade_no, status=order.status,
        request_fingerprint=order.request_fingerprint, created_at=order.created_at,
        pay_deadline=order.pay_deadline, delivery_method=order.delivery_method,
        address=order.address, store_id=order.store_id,
        lines=[LineAttribute(**asdict(line)) for line in order.lines],
        adjustments=[AdjustmentAttribute(**adjustment) for adjustment in order.adjustments],
        goods_fen=order.goods_fen, discount_fen=order.discount_fen, delivery_fee_fen=order.delivery_fee_fen,
        payable_fen=order.payable_fen, flash_sale=order.flash_sale, offer=order.offer,
        awaiting_group=True if order.awaiting_group else None,
        points_parts={day.isoformat(): points for day, points in order.points_parts.items()} if order.points_parts else None,
    )


def from_record(record: OrderRecord) -> Order:
    return Order(
        order_id=record.order_id, user_id=record.user_id, out_trade_no=record.out_trade_no, status=record.status,
        request_fingerprint=record.request_fingerprint, created_at=record.created_at,
        pay_deadline=record.pay_deadline, delivery_method=record.delivery_method,
        lines=tuple(OrderLine(sku_id=line.sku_id, product_id=line.product_id, name=line.name,
                              specs=dict(line.specs.as_dict() if line.specs else {}), price_fen=int(line.price_fen),
                              quantity=int(line.quantity), subtotal_fen=int(line.subtotal_fen),
                              discount_fen=int(line.discount_fen), payable_fen=int(line.payable_fen),
                              virtual=bool(line.virtual)) for line in record.lines),
        adjustments=tuple({"kind": a.kind, "code": a.code, "amount_fen": int(a.amount_fen),
                           "description": a.description} for a in record.adjustments or []),
        goods_fen=int(record.goods_fen), discount_fen=int(record.discount_fen),
        delivery_fee_fen=int(record.delivery_fee_fen), payable_fen=int(record.payable_fen),
        address=record.address.as_dict() if record.address else None, store_id=record.store_id,
        shipment=record.shipment.as_dict() if record.shipment else None, paid_at=record.paid_at,
        transaction_id=record.transaction_id, prepay=record.prepay.as_dict() if record.prepay else None,
        cancelled_at=record.cancelled_at, cancel_reason=record.cancel_reason, shipped_at=record.shipped_at,
        completed_at=record.completed_at,
        shipping_upload=record.shipping_upload.as_dict() if record.shipping_upload else None,
        flash_sale=_flash_sale(record.flash_sale), refunded_fen=int(record.refunded_fen or 0),
        refunds_in_flight=frozenset(record.refunds_in_flight or ()), sales_counted=bool(record.sales_counted),
        points_parts={date.fromisoformat(day): int(points) for day, points in record.points_parts.as_dict().items()}
        if record.points_parts else None,
        offer=record.offer.as_dict() if record.offer else None, awaiting_group=bool(record.awaiting_group),
        shipped_units={sku_id: int(units) for sku_id, units in record.shipped_units.as_dict().items()}
        if record.shipped_units else None,
        shipments=tuple(_plain(item) for item in record.shipments or ()),
        ship_version=int(record.ship_version or 0),
        remarks=tuple(_plain(item) for item in record.remarks or ()),
        address_version=int(record.address_version or 0),
    )


def _plain(value: Any) -> Any:
    """A list element read back from DynamoDB as plain JSON-like data (numbers as int)."""
    if isinstance(value, MapAttribute):
        value = value.as_dict()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _flash_sale(value: MapAttribute | None) -> dict[str, Any] | None:
    if not value:
        return None
    fields = value.as_dict()
    return {**fields, "shard": int(fields["shard"])}


def get_order(order_id: str) -> Order | None:
    try:
        return from_record(OrderRecord.get(order_id, consistent_read=True))
    except OrderRecord.DoesNotExist:
        return None


def overdue_unpaid_order_ids(created_before: datetime, due_at: datetime, limit: int) -> list[str]:
    """Ids of unpaid orders created before `created_before` whose pay_deadline is at or before
    `due_at`, oldest first (the pay-deadline sweep's index Query, filtered on the index). The
    index is eventually consistent: callers re-read each order and decide from the order."""
    return [record.order_id for record in
            OrderRecord.by_status.query("pending_payment", OrderRecord.created_at < created_before,
                                        filter_condition=OrderRecord.pay_deadline <= due_at, limit=limit)]


def due_order_ids(timer_kind: str, now: datetime, limit: int) -> list[str]:
    """Ids of orders whose `timer_kind` deadline has passed (the sweeps' index Query)."""
    return [record.order_id for record in
            OrderRecord.by_timer.query(timer_kind, OrderRecord.timer_at <= now, limit=limit)]


_SETTABLE = ("paid_at", "shipped_at", "completed_at", "shipment")


def change_status(order_id: str, expected: str, new: str, *, timer: tuple[str, datetime] | None = None,
                  **fields: Any) -> Order:
    """Move an order `expected` -> `new` (condition: status == expected), setting `fields` and
    replacing its sweep timer (None removes it). Raises ConditionFailed when the status differs."""
    unknown = set(fields) - set(_SETTABLE)
    if unknown:
        raise ValueError(f"not settable here: {sorted(unknown)}")
    actions = [OrderRecord.status.set(new)]
    actions += [getattr(OrderRecord, name).set(value) for name, value in fields.items()]
    if timer is None:
        actions += [OrderRecord.timer_kind.remove(), OrderRecord.timer_at.remove()]
    else:
        actions += [OrderRecord.timer_kind.set(timer[0]), OrderRecord.timer_at.set(timer[1])]
    record = OrderRecord(order_id)
    with condition_failure_as(ConditionFailed):
        record.update(actions=actions, condition=OrderRecord.status == expected)
    return from_record(record)


class RefundInFlight(Exception):
    """The order has a refund of unshipped units in flight: it cannot ship until that ends."""


def ship(order_id: str, shipped_at: datetime, shipment: dict[str, Any], timer: tuple[str, datetime]) -> Order:
    """paid -> shipped, on condition that no refund of unshipped units is in flight. Raises
    ConditionFailed (not paid any more) or RefundInFlight (it is, but a refund is under way)."""
    record = OrderRecord(order_id)
    try:
        with condition_failure_as(ConditionFailed):
            record.update(actions=[OrderRecord.status.set("shipped"), OrderRecord.shipped_at.set(shipped_at),
                                   OrderRecord.shipment.set(shipment), OrderRecord.timer_kind.set(timer[0]),
                                   OrderRecord.timer_at.set(timer[1])],
                          condition=(OrderRecord.status == "paid") & OrderRecord.refunds_in_flight.does_not_exist()
                          & OrderRecord.awaiting_group.does_not_exist())  # a group order: its group succeeded
    except ConditionFailed:
        current = get_order(order_id)
        if current is not None and current.status == "paid" and current.refunds_in_flight:
            raise RefundInFlight(sorted(current.refunds_in_flight)) from None
        raise
    return from_record(record)


SHIPPING_UPLOAD_PENDING = "pending"


def update_shipping_upload(order_id: str, upload: dict[str, Any], *, expected_status: str | None,
                           expected_updated_at: datetime | None = None) -> bool:
    """Replace the order's `shipping_upload` map. Condition: the order exists and its upload is
    absent (expected_status None) or in `expected_status` (and last updated at `expected_updated_at`,
    when given: the sweep's compare-and-set). False when the condition failed."""
    current = OrderRecord.shipping_upload
    if expected_status is None:
        condition = OrderRecord.order_id.exists() & current.does_not_exist()
    else:
        condition = OrderRecord.order_id.exists() & (current.status == expected_status)
        if expected_updated_at is not None:
            condition &= current.updated_at == expected_updated_at
    try:
        with condition_failure_as(ConditionFailed):
            OrderRecord(order_id).update(actions=[current.set(ShippingUploadAttribute(**upload))],
                                         condition=condition)
    except ConditionFailed:
        return False
    return True


def remember_prepay(order_id: str, prepay_id: str, version: str, now: datetime,
                    profit_sharing: bool = False) -> None:
    """Keep the prepay for reuse while the order is unpaid (condition: still pending_payment).

    Losing the race to a payment or a close is harmless: the caller's answer is still valid
    for the prepay it got, and WeChat refuses to pay a closed order.
    """
    try:
        with condition_failure_as(ConditionFailed):
            OrderRecord(order_id).update(
                actions=[OrderRecord.prepay.set({"prepay_id": prepay_id, "version": version,
                                                 "created_at": now.isoformat(),
                                                 **({"profit_sharing": True} if profit_sharing else {})})],
                condition=OrderRecord.status == "pending_payment")
    except ConditionFailed:
        pass


def mark_sales_counted(order_id: str) -> None:
    """Every product of the order has its units counted (each once, by its own marker)."""
    OrderRecord(order_id).update(actions=[OrderRecord.sales_counted.set(True)],
                                 condition=OrderRecord.order_id.exists())
