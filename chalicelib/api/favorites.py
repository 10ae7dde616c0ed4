"""The user's favorites and browsing history (a view is recorded by the product page itself)."""
from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest, Reply
from chalicelib.lazy import lazy_module, lazy_names
(FavoriteBody, FavoriteOut, FavoritePage, FavoriteRemoved, HistoryPage, MemberListQuery) = lazy_names(
    "chalicelib.schemas.favorites",
    "FavoriteBody", "FavoriteOut", "FavoritePage", "FavoriteRemoved", "HistoryPage", "MemberListQuery")

favorites = lazy_module("chalicelib.services.favorites")
history = lazy_module("chalicelib.services.history")

api = ApiBlueprint(__name__, tag="members")


@api.route("GET", "/v1/me/favorites", query=MemberListQuery, response=FavoritePage, errors=(400, 401, 403),
           summary="Favorites, newest first, each with the product's name, cover, lowest price and on_sale")
def list_favorites(request: ApiRequest) -> FavoritePage:
    return favorites.list_favorites(request.user_id, request.query.limit, request.query.cursor)


@api.route("POST", "/v1/me/favorites", body=FavoriteBody, response=FavoriteOut, status=201, also=(200,),
           errors=(400, 401, 403, 404, 409),
           summary="Favorite a product (200 when it is one already; 409 favorites_full at 500)")
def add_favorite(request: ApiRequest) -> Reply:
    favorite, created = favorites.add_favorite(request.user_id, request.body.product_id)
    return Reply(favorite, 201 if created else 200)


@api.route("DELETE", "/v1/me/favorites/{product_id}", response=FavoriteRemoved, errors=(401, 403),
           summary="Unfavorite a product (200 with removed=false when it was not one)")
def remove_favorite(request: ApiRequest) -> FavoriteRemoved:
    return favorites.remove_favorite(request.user_id, request.params["product_id"])


@api.route("GET", "/v1/me/history", query=MemberListQuery, response=HistoryPage, errors=(400, 401, 403),
           summary="Recently viewed products, last viewed first: the latest 100 views of the last 90 days")
def list_history(request: ApiRequest) -> HistoryPage:
    return history.list_history(request.user_id, request.query.limit, request.query.cursor)
