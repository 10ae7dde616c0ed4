"""The shopping cart. Every change answers the whole cart, as the mini-program redraws it."""
from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.lazy import lazy_module, lazy_names
AddToCartBody, CartLinePatch, CartOut = lazy_names(
    "chalicelib.schemas.cart", "AddToCartBody", "CartLinePatch", "CartOut")

if TYPE_CHECKING:
    from chalicelib.services.cart import CartView

cart = lazy_module("chalicelib.services.cart")

api = ApiBlueprint(__name__, tag="cart")


def _out(view: CartView) -> CartOut:
    return CartOut.model_validate(asdict(view))


@api.route("GET", "/v1/cart", response=CartOut, summary="The cart, each line with its problem flagged")
def get_cart(request: ApiRequest) -> CartOut:
    return _out(cart.view_cart(request.user_id))


@api.route("POST", "/v1/cart/items", body=AddToCartBody, response=CartOut, errors=(404, 409),
           summary="Add a SKU; quantities add up (at most 99 per line)")
def add_to_cart(request: ApiRequest) -> CartOut:
    return _out(cart.add_item(request.user_id, request.body.sku_id, request.body.quantity))


@api.route("PATCH", "/v1/cart/items/{sku_id}", body=CartLinePatch, response=CartOut, errors=(404, 409),
           summary="Change quantity, select or unselect, or switch to another spec (sku_id_new)")
def change_cart_line(request: ApiRequest) -> CartOut:
    body = request.body
    return _out(cart.change_line(request.user_id, request.params["sku_id"], quantity=body.quantity,
                                 selected=body.selected, sku_id_new=body.sku_id_new))


@api.route("DELETE", "/v1/cart/items/{sku_id}", response=CartOut, summary="Remove a line (again: no change)")
def remove_from_cart(request: ApiRequest) -> CartOut:
    return _out(cart.remove_item(request.user_id, request.params["sku_id"]))
