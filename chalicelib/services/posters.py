"""Share posters: `GET /v1/products/{product_id}/poster` for the logged-in user (the sharer).

A poster is a PNG of the product's picture, name and price with a mini-program code whose scene
is the sharer's referral code and the product (domain/posters.py): whoever scans it opens the
product page and can bind to the sharer (POST /v1/referrals/bind).

    1. the product (GetItem): unknown, off sale, or with no SKU on sale -> 404 product_not_found;
    2. its content (name, the on-sale SKUs' lowest price, picture URL, scene, page) and its key;
    3. the S3 cache by that key: a hit is answered as it is (no WeChat call, no drawing);
    4. a miss: the code from wxacode.getUnlimited (cached access token, refreshed once if WeChat
       says it is stale), the picture (services/poster_images.py, allowed hosts only, or a
       placeholder), drawn (services/poster_render.py), stored, answered.

Two requests missing at once both make the poster (and both call WeChat, which has no count
limit on this API): they write the same bytes under the same key. WeChat refusing or failing is
502 wechat_unavailable (429 wechat_rate_limited for its daily quota): services/wechat_errors.py.
"""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib import poster_settings
from chalicelib.domain import posters as rules
from chalicelib.domain.identity import referral_code_for
from chalicelib.errors import Conflict, NotFound, UpstreamError
from chalicelib.log import get_logger
from chalicelib.services.access_token import call_with_access_token
from chalicelib.services.catalog import find_product
from chalicelib.services.wechat_errors import wechat_failures_as_app_errors
from chalicelib.settings import get_settings
from chalicelib.storage import poster_cache
from chalicelib.storage.products import Product
from chalicelib.wechat import wxacode

log = get_logger(__name__)


@dataclass(frozen=True)
class Poster:
    content_key: str
    png: bytes
    cached: bool  # answered from the S3 cache


def poster_for(user_id: str, product_id: str) -> Poster:
    bucket = poster_settings.bucket()
    content = poster_content(user_id, find_product(product_id))
    cached = poster_cache.get_poster(bucket, content.key)
    if cached is not None:
        return Poster(content.key, cached, cached=True)
    png = _make(content)
    poster_cache.put_poster(bucket, content.key, png)
    log.info("poster made", product_id=product_id, content_key=content.key)
    return Poster(content.key, png, cached=False)


def poster_content(user_id: str, product: Product) -> rules.PosterContent:
    prices = [sku.price_fen for sku in product.skus if sku.on_sale]
    if not product.on_sale or not prices:
        raise NotFound("No such product", code="product_not_found")
    referral_code = referral_code_for(user_id)
    if referral_code is None:
        raise Conflict("This account has no referral code to share", code="poster_unavailable")
    try:
        scene = rules.encode_scene(referral_code, product.product_id)
    except rules.SceneError:
        raise Conflict("This product's id cannot be put in a mini-program code", code="poster_unavailable") from None
    return rules.PosterContent(product_id=product.product_id, name=product.name, price=rules.price_text(prices),
                               image_url=product.images[0] if product.images else None, scene=scene,
                               page=poster_settings.page(), env_version=poster_settings.env_version())


def _make(content: rules.PosterContent) -> bytes:
    from chalicelib.services import poster_images, poster_render  # Pillow: only when a poster is drawn

    poster_render.font_file()  # a missing font is 409 before WeChat is asked (its quota is daily)
    code = mini_program_code(content)
    picture = poster_images.fetch(content.image_url)
    try:
        return poster_render.render(content, picture, code)
    except poster_render.UnusableImage:
        log.warning("the mini-program code WeChat sent is not an image we can draw")
        raise UpstreamError("WeChat's mini-program code could not be read; try again later") from None


def mini_program_code(content: rules.PosterContent) -> bytes:
    settings = get_settings()
    with wechat_failures_as_app_errors("mini-program code"):
        return call_with_access_token(lambda token: wxacode.get_unlimited(
            settings.wechat_api_base, token, scene=content.scene, page=content.page,
            env_version=content.env_version, timeout=settings.wechat_http_timeout_seconds))
