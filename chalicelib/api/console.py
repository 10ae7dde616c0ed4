"""The merchant console (后台): static files from chalicelib/console_static/, served under /console/.

A single-page app in plain ES modules (no build step); it calls the /v1/admin routes with the admin
token. Chalice has no greedy path parameter, so the folder is flat: `/console/` answers index.html
(`/console` redirects there), `/console/{name}` one file of the folder. Only names of the allowed shape and
suffix that are files of the folder are served (no path traversal: no slash or dot-dot can match).
Every answer revalidates (no hashed names without a build step): an ETag, 304 on If-None-Match.

The same folder can be served from S3 + CloudFront (infra/build_template.py, ConsoleBucket):
config.js there names the API's URL; here the app answers with the console's own origin.
"""
from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

from chalice import Blueprint, Response

STATIC_DIR = Path(__file__).resolve().parent.parent / "console_static"
NAME = re.compile(r"^[A-Za-z0-9_\-]{1,64}\.(html|js|css|svg)$")
CONTENT_TYPES = {"html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8",
                 "css": "text/css; charset=utf-8", "svg": "image/svg+xml"}
HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "X-Frame-Options": "DENY",
           # Only its own files and the API beside it (config.js may name another API: CloudFront then).
           "Content-Security-Policy": "default-src 'self'; img-src 'self' https: data:; object-src 'none'; "
                                      "base-uri 'self'; frame-ancestors 'none'; form-action 'self'"}

api_blueprint = Blueprint(__name__)


class _Api:  # app.py registers `module.api.blueprint`, as for the ApiBlueprint modules
    blueprint = api_blueprint


api = _Api()


def _load(name: str) -> tuple[str, str] | None:
    """(text, etag) of a file of the folder, or None."""
    if not NAME.match(name):
        return None
    path = STATIC_DIR / name
    try:
        stat = path.stat()
    except OSError:
        return None
    if path.parent != STATIC_DIR or not path.is_file():
        return None
    return _read(path, stat.st_mtime_ns)  # an edited file is read again (`make run` while editing)


@functools.lru_cache(maxsize=64)
def _read(path: Path, mtime_ns: int) -> tuple[str, str]:
    text = path.read_text(encoding="utf-8")
    return text, '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


def _serve(name: str) -> Response:
    found = _load(name)
    if found is None:
        return Response(body="Not found\n", status_code=404,
                        headers={"Content-Type": "text/plain; charset=utf-8", **HEADERS})
    text, etag = found
    headers = {"Content-Type": CONTENT_TYPES[name.rsplit(".", 1)[1]], "ETag": etag, **HEADERS}
    request = api_blueprint.current_request
    if (request.headers or {}).get("if-none-match") == etag:
        return Response(body="", status_code=304, headers=headers)
    return Response(body=text, status_code=200, headers=headers)


@api_blueprint.route("/console", methods=["GET"])
def console_index() -> Response:
    # API Gateway (and `chalice local`) route /console/ here too; the page's relative links need
    # the slash, so /console answers a redirect to it (relative: the stage prefix stays).
    path = str((api_blueprint.current_request.context or {}).get("path") or "")
    if path and not path.endswith("/"):
        return Response(body="", status_code=302, headers={"Location": "console/", **HEADERS})
    return _serve("index.html")


@api_blueprint.route("/console/{name}", methods=["GET"])
def console_file(name: str) -> Response:
    return _serve(name)
