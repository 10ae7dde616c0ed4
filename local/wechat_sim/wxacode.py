"""wxacode.getUnlimited on the simulator, and a dev view of the codes it made.

  POST /wxa/getwxacodeunlimit?access_token=   endpoint name "getwxacodeunlimit"
  GET  /__sim/wxacodes[?scene=]                codes made (dev only)

Checked in this order, answering as WeChat does (HTTP 200 + errcode JSON; the image on success):
  - the access token (41001 missing, 40001 invalid or expired);
  - the body: a JSON object (47001 otherwise, by the router);
  - scene: a string of 1-32 characters, else 40169 "invalid length for scene, or the data is
    not json string"; only digits, letters and !#$&'()*+,/:;=?@-._~, else 40129 "invalid scene";
  - page: optional (the home page); a path without a leading slash or a query, else 41030
    "invalid page" (WeChat's answer for a page the released mini-program does not have);
  - env_version: release (default), trial or develop; check_path and is_hyaline booleans; width
    an integer (clamped to 280-1280, as WeChat does); anything else 40097 "invalid args".
On success the answer is a PNG (image/png): a real QR code
of `wxasim://<appid>/<page>?scene=<scene>&env_version=<...>`, `width` pixels wide,
deterministic for the same arguments; transparent around the modules with is_hyaline.
"""

from __future__ import annotations

import io
import re
from typing import Any

from .open_api import _token_appid
from .server import Request, Response, Router, json_response, wx_error

SCENE_MAX = 32
SCENE_CHARS = re.compile(r"^[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]+$")
PAGE = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$")
ENV_VERSIONS = ("release", "trial", "develop")
WIDTH_MIN, WIDTH_MAX, WIDTH_DEFAULT = 280, 1280, 430


def register(router: Router) -> None:
    router.add("POST", "/wxa/getwxacodeunlimit", get_unlimited, name="getwxacodeunlimit")
    router.add("GET", "/__sim/wxacodes", codes)


def _made(state: Any) -> list[dict[str, Any]]:
    return state.namespace("wxacodes", list)


def _is(value: Any, kind: type) -> bool:
    return isinstance(value, kind) and not (kind is int and isinstance(value, bool))


def _check(body: dict[str, Any]) -> Response | None:
    scene = body.get("scene")
    if not isinstance(scene, str) or not 1 <= len(scene) <= SCENE_MAX:
        return wx_error(40169, "invalid length for scene, or the data is not json string")
    if not SCENE_CHARS.match(scene):
        return wx_error(40129, "invalid scene")
    page = body.get("page", "")
    if not isinstance(page, str) or (page and not PAGE.match(page)):
        return wx_error(41030, "invalid page")
    if body.get("env_version", "release") not in ENV_VERSIONS:
        return wx_error(40097, "invalid args: env_version")
    for flag in ("check_path", "is_hyaline", "auto_color"):
        if flag in body and not _is(body[flag], bool):
            return wx_error(40097, f"invalid args: {flag}")
    if "width" in body and not _is(body["width"], int):
        return wx_error(40097, "invalid args: width")
    return None


def get_unlimited(req: Request) -> Response:
    appid = _token_appid(req)
    if isinstance(appid, Response):
        return appid
    body = req.json_object()
    problem = _check(body)
    if problem is not None:
        return problem
    width = min(WIDTH_MAX, max(WIDTH_MIN, body.get("width", WIDTH_DEFAULT)))
    record = {"appid": appid, "scene": body["scene"], "page": body.get("page", ""),
              "env_version": body.get("env_version", "release"), "check_path": body.get("check_path", True),
              "width": width, "is_hyaline": body.get("is_hyaline", False)}
    png = _qr_png(record)
    with req.state.lock:
        _made(req.state).append({**record, "bytes": len(png), "made_at": req.state.now()})
    return Response(status=200, body=png, content_type="image/png")


def _qr_png(record: dict[str, Any]) -> bytes:
    import qrcode  # the simulator's own dependency (requirements-dev.txt), with Pillow

    text = (f"wxasim://{record['appid']}/{record['page']}?scene={record['scene']}"
            f"&env_version={record['env_version']}")
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=2)
    code.add_data(text)
    code.make(fit=True)
    image = code.make_image(fill_color="black", back_color="white").get_image().convert("RGBA")
    image = image.resize((record["width"], record["width"]), resample=0)  # nearest: modules stay sharp
    if record["is_hyaline"]:
        image.putdata([(0, 0, 0, 0) if pixel[0] > 128 else pixel for pixel in image.getdata()])
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def codes(req: Request) -> Response:
    scene = req.query.get("scene")
    with req.state.lock:
        items = [dict(item) for item in _made(req.state) if scene is None or item["scene"] == scene]
    return json_response({"items": items})
