"""Favorites: add (idempotent, capped), remove (idempotent), list newest first with each
product's card. storage/favorites.py says how the cap holds under concurrent adds."""
from __future__ import annotations

from chalicelib import clock
from chalicelib.domain.cursors import decode_cursor, encode_cursor
from chalicelib.errors import Conflict, NotFound
from chalicelib.schemas.favorites import FavoriteOut, FavoritePage, FavoriteRemoved
from chalicelib.services.catalog import find_product
from chalicelib.settings import get_settings
from chalicelib.storage import favorites
from chalicelib.storage.favorites import AlreadyFavorite, Favorite, FavoritesFull, ProductCard
from chalicelib.storage.products import Product

MAX_FAVORITES = 500


class FavoritesFullError(Conflict):
    code = "favorites_full"
    message = f"At most {MAX_FAVORITES} favorites; remove some first"


def add_favorite(user_id: str, product_id: str) -> tuple[FavoriteOut, bool]:
    """(the favorite, whether it is new). A product that is not on sale (its page is 404) is
    404 product_not_found; one already favorited answers as it was (still when the list is full)."""
    product = find_product(product_id)  # GetItem: 404 for an unknown product
    if not product.on_sale:
        raise NotFound("No such product", code="product_not_found")
    for _ in range(2):  # a second time only when it was removed between the add and the read
        try:
            return _out(favorites.add(user_id, product_id, clock.now(), MAX_FAVORITES), _card_of(product)), True
        except AlreadyFavorite:
            favorite = favorites.get(user_id, product_id)
        except FavoritesFull:
            raise FavoritesFullError() from None
        if favorite is not None:
            return _out(favorite, _card_of(product)), False
    raise Conflict("The favorite changed while it was added; try again", code="favorite_conflict")


def _card_of(product: Product) -> ProductCard:
    cheapest = product.cheapest_sku
    return ProductCard(product_id=product.product_id, name=product.name,
                       cover_image=product.images[0] if product.images else None,
                       min_price_fen=cheapest.price_fen if cheapest else None, on_sale=product.is_listed)


def remove_favorite(user_id: str, product_id: str) -> FavoriteRemoved:
    return FavoriteRemoved(product_id=product_id, removed=favorites.remove(user_id, product_id))


def list_favorites(user_id: str, limit: int, cursor: str | None) -> FavoritePage:
    """One Query of the index + one BatchGetItem of the page's products. A product deleted since
    is left out (the page may be short; the cursor still goes on)."""
    scope = f"favorites:{user_id}"
    secret = get_settings().auth_token_secret
    page, last_key = favorites.list_page(user_id, limit, decode_cursor(cursor, secret, scope))
    cards = favorites.product_cards([favorite.product_id for favorite in page])
    items = [_out(favorite, cards[favorite.product_id]) for favorite in page if favorite.product_id in cards]
    return FavoritePage(items=items, next_cursor=encode_cursor(last_key, secret, scope))


def _out(favorite: Favorite, card: ProductCard) -> FavoriteOut:
    return FavoriteOut(product_id=card.product_id, name=card.name, cover_image=card.cover_image,
                       min_price_fen=card.min_price_fen, on_sale=card.on_sale,
                       added_at=clock.to_iso(clock.from_epoch(favorite.added_at_ms / 1000)))
