"""The shopping cart: add (quantities add up), change, select, switch spec, remove, and view
with each line's problem flagged (never silently dropped)."""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib import clock
from chalicelib.domain.pricing import MAX_LINE_QUANTITY
from chalicelib.errors import BadRequest, Conflict, NotFound
from chalicelib.storage import carts, catalog_batch
from chalicelib.storage.base import ConditionFailed

MAX_CART_LINES = 50


@dataclass(frozen=True)
class CartLineView:
    sku_id: str
    product_id: str | None
    name: str | None
    specs: dict[str, str]
    price_fen: int
    quantity: int
    selected: bool
    subtotal_fen: int
    problem: str | None  # None, "off_sale", "out_of_stock" or "over_limit"
    available: int


@dataclass(frozen=True)
class CartView:
    lines: list[CartLineView]
    goods_fen: int  # selected lines without a problem: what checkout would charge for goods


def view_cart(user_id: str) -> CartView:
    """One Query of the lines, one BatchGetItem of their SKUs and products (lines keep their
    product_id; a line written before they did costs a second BatchGetItem)."""
    lines = carts.list_lines(user_id)
    return _cart_view(lines, _catalog(lines))


def _catalog(lines: list[carts.CartLine], *more_sku_ids: str,
             product_of: dict[str, str] | None = None) -> dict[str, catalog_batch.SellableSku]:
    known = {line.sku_id: line.product_id for line in lines if line.product_id}
    return catalog_batch.get_sellable_skus_with_products([line.sku_id for line in lines] + list(more_sku_ids),
                                                         {**known, **(product_of or {})})


def _cart_view(lines: list[carts.CartLine], skus: dict[str, catalog_batch.SellableSku]) -> CartView:
    views = [_view(line, skus.get(line.sku_id)) for line in lines]
    return CartView(lines=views, goods_fen=sum(v.subtotal_fen for v in views if v.selected and not v.problem))


def _view(line: carts.CartLine, sku: catalog_batch.SellableSku | None) -> CartLineView:
    if sku is None:  # deleted from the catalog: show the line so the user can remove it
        return CartLineView(line.sku_id, None, None, {}, 0, line.quantity, line.selected, 0, "off_sale", 0)
    problem = None
    if not sku.on_sale:
        problem = "off_sale"
    elif line.quantity > MAX_LINE_QUANTITY:
        problem = "over_limit"
    elif sku.available < line.quantity:
        problem = "out_of_stock"
    return CartLineView(sku.sku_id, sku.product_id, sku.name, sku.specs, sku.price_fen, line.quantity,
                        line.selected, sku.price_fen * line.quantity, problem, max(0, sku.available))


def _sellable(sku_id: str, sku: catalog_batch.SellableSku | None) -> catalog_batch.SellableSku:
    if sku is None:
        raise NotFound("No such SKU", code="sku_not_found", details=[{"sku_id": sku_id}])
    if not sku.on_sale:
        raise Conflict("This SKU is off sale", code="sku_unavailable", details=[{"sku_id": sku_id}])
    return sku


def _line_limit_error(sku_id: str) -> Conflict:
    return Conflict(f"At most {MAX_LINE_QUANTITY} of one SKU per cart", code="cart_line_limit",
                    details=[{"sku_id": sku_id, "max_quantity": MAX_LINE_QUANTITY}])


def add_item(user_id: str, sku_id: str, quantity: int) -> CartView:
    """The cart's lines (Query) and every SKU with its product, the added one included (one
    BatchGetItem; a second one for the added SKU's product when it has no line yet, since only
    the SKU names its product), the checks in today's order (unknown SKU 404, off sale 409,
    cart full 409), then one conditional UpdateItem (per-line limit) whose answer is the line
    as stored: the cart view needs no read after the write."""
    lines = carts.list_lines(user_id)
    skus = _catalog(lines, sku_id)
    sku = _sellable(sku_id, skus.get(sku_id))
    if all(line.sku_id != sku_id for line in lines) and len(lines) >= MAX_CART_LINES:
        raise Conflict(f"A cart holds at most {MAX_CART_LINES} lines", code="cart_full")
    try:
        added = carts.add_quantity(user_id, sku_id, quantity, MAX_LINE_QUANTITY, clock.now(),
                                   product_id=sku.product_id)
    except ConditionFailed:
        raise _line_limit_error(sku_id) from None
    return _cart_view(carts.in_cart_order([line for line in lines if line.sku_id != sku_id] + [added]), skus)


def change_line(user_id: str, sku_id: str, *, quantity: int | None, selected: bool | None,
                sku_id_new: str | None) -> CartView:
    line = next((line for line in carts.list_lines(user_id) if line.sku_id == sku_id), None)
    if line is None:
        raise NotFound("This SKU is not in the cart", code="cart_line_not_found")
    if quantity is not None or selected is not None:
        try:
            carts.update_line(user_id, sku_id, clock.now(), quantity=quantity, selected=selected)
        except ConditionFailed:
            raise NotFound("This SKU is not in the cart", code="cart_line_not_found") from None
    if sku_id_new is not None and sku_id_new != sku_id:
        _switch_spec(user_id, line, sku_id_new, quantity if quantity is not None else line.quantity)
    return view_cart(user_id)


def _switch_spec(user_id: str, line: carts.CartLine, sku_id_new: str, quantity: int) -> None:
    # Another spec of the same product: the line's product_id names the new SKU's product too
    # (one BatchGetItem for both SKUs and the product; a wrong guess costs a second one).
    hint = {sku_id_new: line.product_id} if line.product_id else {}
    skus = _catalog([line], sku_id_new, product_of=hint)
    new_sku = _sellable(sku_id_new, skus.get(sku_id_new))
    old_sku = skus.get(line.sku_id)
    if old_sku is not None and old_sku.product_id != new_sku.product_id:
        raise BadRequest("sku_id_new must be another spec of the same product", code="different_product",
                         details=[{"field": "sku_id_new", "message": "not a spec of this product"}])
    try:
        carts.switch_sku(user_id, line.sku_id, sku_id_new, quantity, MAX_LINE_QUANTITY, clock.now(),
                         product_id=new_sku.product_id)
    except ConditionFailed:
        raise _line_limit_error(sku_id_new) from None


def remove_item(user_id: str, sku_id: str) -> CartView:
    carts.remove_line(user_id, sku_id)  # removing a line that is gone already is fine
    return view_cart(user_id)


def selected_lines(user_id: str) -> list[carts.CartLine]:
    """What checkout takes when the request names no items: the selected lines (the order's
    transaction deletes them)."""
    return [line for line in carts.list_lines(user_id) if line.selected]
