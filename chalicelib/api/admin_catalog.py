"""Merchant catalog routes (admin token): categories, products, SKUs."""
from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.lazy import lazy_module, lazy_names
(AdminProductDetail, AdminSkuView, CategoryCreate, CategoryCreated, ProductCreate,
 ProductCreated, ProductPatch, SkuPatch) = lazy_names(
    "chalicelib.schemas.catalog",
    "AdminProductDetail", "AdminSkuView", "CategoryCreate", "CategoryCreated", "ProductCreate",
    "ProductCreated", "ProductPatch", "SkuPatch")

catalog_admin = lazy_module("chalicelib.services.catalog_admin")

api = ApiBlueprint(__name__, tag="admin-catalog")
_ERRORS = (400, 401, 403, 404)


@api.route("POST", "/v1/admin/categories", auth="admin", body=CategoryCreate, response=CategoryCreated, status=201,
           errors=_ERRORS, summary="Create a category under parent_id (3 levels at most)")
def admin_create_category(request: ApiRequest) -> CategoryCreated:
    return catalog_admin.create_category(request.body)


@api.route("POST", "/v1/admin/products", auth="admin", body=ProductCreate, response=ProductCreated, status=201,
           errors=_ERRORS + (409,), summary="Create a product with 1-50 SKUs; it is listed at once")
def admin_create_product(request: ApiRequest) -> ProductCreated:
    return catalog_admin.create_product(request.body)


@api.route("GET", "/v1/admin/products/{product_id}", auth="admin", response=AdminProductDetail, errors=_ERRORS,
           summary="A product, on sale or not, with each SKU's stock counters")
def admin_get_product(request: ApiRequest) -> AdminProductDetail:
    return catalog_admin.product_for_admin(request.params["product_id"])


@api.route("PATCH", "/v1/admin/products/{product_id}", auth="admin", body=ProductPatch, response=AdminProductDetail,
           errors=_ERRORS + (409,), summary="Change name, description, images, video, keywords, category, on_sale")
def admin_patch_product(request: ApiRequest) -> AdminProductDetail:
    return catalog_admin.update_product(request.params["product_id"], request.body)


@api.route("PATCH", "/v1/admin/skus/{sku_id}", auth="admin", body=SkuPatch, response=AdminSkuView,
           errors=_ERRORS + (409,), summary="Change price, market price (0 removes it), specs, threshold, on_sale")
def admin_patch_sku(request: ApiRequest) -> AdminSkuView:
    return catalog_admin.update_sku(request.params["sku_id"], request.body)


@api.route("GET", "/v1/admin/skus/{sku_id}", auth="admin", response=AdminSkuView, errors=_ERRORS,
           summary="A SKU with its stock counters: available, allocated, reserved, sold, stock_in")
def admin_get_sku(request: ApiRequest) -> AdminSkuView:
    return catalog_admin.admin_sku(request.params["sku_id"])
