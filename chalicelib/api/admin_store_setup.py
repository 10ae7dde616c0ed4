"""The merchant's catalog setup (issue 16): the product list with stock, the category tree
(rename, move, hide) and pickup stores."""
from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.lazy import lazy_module, lazy_names
(AdminCategoryNode, AdminCategoryTree, AdminProductList, AdminProductQuery, AdminStoreList, AdminStoreOut, CategoryPatch, StoreCreate, StorePatch) = lazy_names(
    "chalicelib.schemas.admin_ops",
    "AdminCategoryNode", "AdminCategoryTree", "AdminProductList", "AdminProductQuery", "AdminStoreList", "AdminStoreOut", "CategoryPatch", "StoreCreate", "StorePatch")

console = lazy_module("chalicelib.services.admin_console")
categories_admin = lazy_module("chalicelib.services.categories_admin")
stores_admin = lazy_module("chalicelib.services.stores_admin")

api = ApiBlueprint(__name__, tag="admin-catalog")


@api.route("GET", "/v1/admin/products", auth="admin", query=AdminProductQuery, response=AdminProductList,
           errors=(400, 401, 403), summary="Every product (off-sale too) with its SKUs' prices and stock counters, "
                                           "optionally by category and on_sale")
def list_products(request: ApiRequest) -> AdminProductList:
    query = request.query
    items, next_cursor = console.list_products(query.limit, query.cursor, query.category_id, query.on_sale)
    return AdminProductList(items=items, next_cursor=next_cursor)


@api.route("GET", "/v1/admin/categories", auth="admin", response=AdminCategoryTree, errors=(401, 403),
           summary="The whole category tree, hidden categories included")
def category_tree(request: ApiRequest) -> AdminCategoryTree:
    return AdminCategoryTree(**categories_admin.admin_tree())


@api.route("PATCH", "/v1/admin/categories/{category_id}", auth="admin", body=CategoryPatch,
           response=AdminCategoryNode, errors=(400, 401, 403, 404, 409),
           summary="Rename, move (at most 3 levels, no cycle; its products follow) or hide a category (buyers no "
                   "longer see it or list by it; its products stay)")
def edit_category(request: ApiRequest) -> AdminCategoryNode:
    body = request.body
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    return AdminCategoryNode(**categories_admin.edit_category(request.params["category_id"], changes))


@api.route("GET", "/v1/admin/stores", auth="admin", response=AdminStoreList, errors=(401, 403),
           summary="Every pickup store, hidden ones included")
def list_stores(request: ApiRequest) -> AdminStoreList:
    return AdminStoreList(items=stores_admin.list_stores())


@api.route("POST", "/v1/admin/stores", auth="admin", body=StoreCreate, response=AdminStoreOut, status=201,
           errors=(400, 401, 403, 409), summary="Create a pickup store with its coordinates and opening hours")
def create_store(request: ApiRequest) -> AdminStoreOut:
    return AdminStoreOut(**stores_admin.create_store(request.body.model_dump()))


@api.route("PATCH", "/v1/admin/stores/{store_id}", auth="admin", body=StorePatch, response=AdminStoreOut,
           errors=(400, 401, 403, 404, 409), summary="Edit or hide a pickup store")
def update_store(request: ApiRequest) -> AdminStoreOut:
    body = request.body
    return AdminStoreOut(**stores_admin.update_store(request.params["store_id"],
                                                     {name: getattr(body, name) for name in body.model_fields_set}))
