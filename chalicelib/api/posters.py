"""Share posters (API.md, "Marketing, members and social commerce"): the PNG itself, from the route.

`GET /v1/products/{product_id}/poster` answers `image/png` (the poster's bytes; `ETag` is its
content key) to a request whose Accept names image/png (or */*); any other Accept is 406
`not_acceptable`, in the envelope. Behind API Gateway the PNG travels base64-encoded from Lambda
and is turned back into bytes only when the request's *first* Accept type is a binary media type
(Chalice declares image/png one): the mini-program downloads it with
`wx.downloadFile({url, header: {Authorization, Accept: "image/png"}})`.
"""
from __future__ import annotations

from chalice import Response

from chalicelib.api import cors
from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.errors import AppError
from chalicelib.lazy import lazy_module

posters = lazy_module("chalicelib.services.posters")

api = ApiBlueprint(__name__, tag="marketing")

PNG = "image/png"
_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}}
_ERRORS = {
    "401": "Not logged in, or the token is invalid",
    "403": "Wrong role",
    "404": "product_not_found: no such product, off sale, or no SKU on sale",
    "406": "not_acceptable: the request's Accept does not name image/png",
    "409": "poster_not_configured (no POSTER_BUCKET, ...), poster_unavailable",
    "429": "wechat_rate_limited: WeChat's daily quota of codes",
    "502": "wechat_unavailable: WeChat refused or failed to make the mini-program code",
    "503": "Temporarily unavailable; retry (see Retry-After)",
}
POSTER_DOC = {"responses": {
    "200": {"description": "The poster (PNG); ETag is its content key",
            "content": {PNG: {"schema": {"type": "string", "format": "binary"}}}},
    **{status: {"description": text, **_ERROR} for status, text in _ERRORS.items()},
}}


class NotAcceptable(AppError):
    status = 406
    code = "not_acceptable"


@api.route("GET", "/v1/products/{product_id}/poster", doc=POSTER_DOC, errors=(404, 406, 409, 429, 502, 503),
           summary="The logged-in user's share poster of a product: a PNG with its picture, name, price and a "
                   "mini-program code whose scene carries the user's referral code and the product "
                   "(send Accept: image/png)")
def product_poster(request: ApiRequest) -> Response:
    if not accepts_png(request.raw.headers.get("accept")):
        raise NotAcceptable("This route answers image/png: send Accept: image/png",
                            details=[{"field": "Accept", "message": "must name image/png"}])
    poster = posters.poster_for(request.user_id, request.params["product_id"])
    return Response(body=poster.png, status_code=200,
                    headers={"Content-Type": PNG, "Cache-Control": "private, max-age=3600",
                             "ETag": f'"{poster.content_key}"', **cors.origin_headers(request.raw)})


def accepts_png(accept: str | None) -> bool:
    """Whether an Accept header names image/png or */* (Chalice answers a binary body only then)."""
    types = {part.split(";", 1)[0].strip().lower() for part in (accept or "").split(",")}
    return bool(types & {PNG, "*/*"})
