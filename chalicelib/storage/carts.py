"""Table `carts`: one item per (user, SKU) line. A user's cart is one Query.

Adding adds atomically (`ADD quantity`), conditioned on the line staying within the per-line
limit, so two taps of "add" from two devices can never lose one or overshoot the limit.

Each line keeps its SKU's `product_id` (a SKU never changes product), so a cart view reads the
SKUs and their products in one BatchGetItem (catalog_batch.get_sellable_skus_with_products).
Lines written before it was kept have none; they get it on their next add or spec switch.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.storage.base import ConditionFailed, TableMeta, condition_failure_as, table_name


class CartLineRecord(Model):
    class Meta(TableMeta):
        table_name = table_name("carts")

    user_id = UnicodeAttribute(hash_key=True)
    sku_id = UnicodeAttribute(range_key=True)
    quantity = NumberAttribute()
    product_id = UnicodeAttribute(null=True)  # the SKU's product, for the cart view's one BatchGetItem
    selected = BooleanAttribute(default=True)
    added_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()


@dataclass(frozen=True)
class CartLine:
    sku_id: str
    quantity: int
    selected: bool
    added_at: datetime
    product_id: str | None = None  # None on lines written before lines kept it


def _to_line(record: CartLineRecord) -> CartLine:
    return CartLine(sku_id=record.sku_id, quantity=int(record.quantity), selected=bool(record.selected),
                    added_at=record.added_at, product_id=record.product_id)


def in_cart_order(lines: list[CartLine]) -> list[CartLine]:
    """Oldest first (the order they were added in), ties by SKU id."""
    return sorted(lines, key=lambda line: (line.added_at, line.sku_id))


def list_lines(user_id: str) -> list[CartLine]:
    """The user's lines, oldest first (the order they were added in)."""
    return in_cart_order([_to_line(record) for record in CartLineRecord.query(user_id, consistent_read=True)])


def add_quantity(user_id: str, sku_id: str, quantity: int, max_quantity: int, now: datetime,
                 product_id: str | None = None) -> CartLine:
    """Add `quantity` to the line (creating it, selected; keeping `product_id` when given) and
    answer the line as it is now (the UpdateItem's ALL_NEW: no read back). Condition: the total
    stays <= max; otherwise ConditionFailed and nothing is written."""
    if quantity > max_quantity:  # a new line's condition cannot see it: refuse before writing
        raise ConditionFailed()
    record = CartLineRecord(user_id, sku_id)
    actions = [CartLineRecord.quantity.add(quantity), CartLineRecord.selected.set(True),
               CartLineRecord.added_at.set(CartLineRecord.added_at | now), CartLineRecord.updated_at.set(now)]
    if product_id is not None:
        actions.append(CartLineRecord.product_id.set(product_id))
    with condition_failure_as(ConditionFailed):
        record.update(actions=actions, condition=CartLineRecord.quantity.does_not_exist()
                      | (CartLineRecord.quantity <= max_quantity - quantity))
    return _to_line(record)


def update_line(user_id: str, sku_id: str, now: datetime, *, quantity: int | None = None,
                selected: bool | None = None) -> None:
    """Set quantity and/or selection of an existing line. Condition: the line exists."""
    actions = [CartLineRecord.updated_at.set(now)]
    if quantity is not None:
        actions.append(CartLineRecord.quantity.set(quantity))
    if selected is not None:
        actions.append(CartLineRecord.selected.set(selected))
    with condition_failure_as(ConditionFailed):
        CartLineRecord(user_id, sku_id).update(actions=actions, condition=CartLineRecord.sku_id.exists())


def switch_sku(user_id: str, old_sku_id: str, new_sku_id: str, quantity: int, max_quantity: int,
               now: datetime, product_id: str | None = None) -> None:
    """Move a line to another SKU (another spec): delete the old line and add its quantity to the
    new one (keeping `product_id` when given), in one transaction. Conditions: the old line
    exists (with `quantity`); the new line stays within the limit. Raises ConditionFailed
    otherwise, writing nothing."""
    new_line = CartLineRecord(user_id, new_sku_id)
    actions = [CartLineRecord.quantity.add(quantity), CartLineRecord.selected.set(True),
               CartLineRecord.added_at.set(CartLineRecord.added_at | now), CartLineRecord.updated_at.set(now)]
    if product_id is not None:
        actions.append(CartLineRecord.product_id.set(product_id))
    try:
        with TransactWrite(connection=CartLineRecord._get_connection().connection) as transaction:
            transaction.delete(CartLineRecord(user_id, old_sku_id), condition=CartLineRecord.quantity == quantity)
            transaction.update(
                new_line, actions=actions,
                condition=CartLineRecord.quantity.does_not_exist()
                | (CartLineRecord.quantity <= max_quantity - quantity),
            )
    except TransactWriteError as error:
        if any(reason and reason.code == "ConditionalCheckFailed" for reason in error.cancellation_reasons or []):
            raise ConditionFailed() from error
        raise


def remove_line(user_id: str, sku_id: str) -> bool:
    """Delete a line; False when it was not there (removing twice is harmless)."""
    try:
        with condition_failure_as(ConditionFailed):
            CartLineRecord(user_id, sku_id).delete(condition=CartLineRecord.sku_id.exists())
    except ConditionFailed:
        return False
    return True
