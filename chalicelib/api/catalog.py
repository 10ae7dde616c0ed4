"""Public catalog reads (no token): categories, products and search, a product page, stores."""
from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.lazy import lazy_module, lazy_names
(CategoryTree, ProductDetail, ProductListQuery, ProductPage, StorePage, StoreQuery) = lazy_names(
    "chalicelib.schemas.catalog",
    "CategoryTree", "ProductDetail", "ProductListQuery", "ProductPage", "StorePage", "StoreQuery")

catalog = lazy_module("chalicelib.services.catalog")

api = ApiBlueprint(__name__, tag="catalog")


@api.route("GET", "/v1/categories", auth=None, response=CategoryTree,
           summary="The category tree, 3 levels, each level in display order")
def list_categories(request: ApiRequest) -> CategoryTree:
    return catalog.category_tree()


@api.route("GET", "/v1/products", auth=None, query=ProductListQuery, response=ProductPage, errors=(400,),
           summary="List or search on-sale products: category (with descendants), q, price range, sort, cursor")
def list_products(request: ApiRequest) -> ProductPage:
    return catalog.list_products(request.query)


@api.route("GET", "/v1/products/{product_id}", auth=None, response=ProductDetail, errors=(404,),
           summary="A product with its SKUs and their stock_status (in_stock / low / sold_out); "
                   "with a user's bearer token (optional) the view goes into GET /v1/me/history")
def get_product(request: ApiRequest) -> ProductDetail:
    return catalog.product_detail(request.params["product_id"], viewer_token=_optional_bearer(request))


def _optional_bearer(request: ApiRequest) -> str | None:
    """The bearer token a public route was sent, if any: not checked here (a bad one is ignored)."""
    scheme, _, token = ((request.raw.headers or {}).get("authorization") or "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


@api.route("GET", "/v1/stores", auth=None, query=StoreQuery, response=StorePage, errors=(400,),
           summary="Pickup stores: name, address, opening hours; nearest first from lat/lng, with a SKU's "
                   "units on each shelf")
def list_stores(request: ApiRequest) -> StorePage:
    query = request.query
    near = (query.lat, query.lng) if query.lat is not None else None
    return catalog.list_stores(query.limit, query.cursor, near, query.sku_id)
