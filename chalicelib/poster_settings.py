"""Settings of the share posters (`GET /v1/products/{product_id}/poster`).

Read from the environment on each call (a handful of lookups; a test or an operator changing one
needs no cache reset), validated: a value that is not valid raises PosterSettingsError, a 409
`poster_not_configured` wherever it surfaces (never a 500, never a silent default).

    POSTER_BUCKET          the S3 bucket posters are cached in (the package creates it and sets
                           this on the API function); unset: every poster request is 409
    POSTER_PAGE            the mini-program page the code opens, e.g. pages/product/index
                           (default); it reads the scene (domain/posters.py)
    POSTER_ENV_VERSION     release (default), trial or develop: which version of the
                           mini-program the code opens (WeChat checks the page only on release)
    POSTER_IMAGE_HOSTS     comma-separated hosts (`name` or `name:port`, exact) product pictures
                           may be fetched from, over https (http only from 127.0.0.1 or
                           localhost: the local stack); unset: posters show a drawn placeholder
    POSTER_FONT            a TrueType/OpenType font file with CJK glyphs, instead of Noto Sans CJK
                           SC (the package's, cut to GB2312's characters by infra/poster_font.py;
                           in a checkout the `manimgx-fonts-cjk` dev requirement's)
"""
from __future__ import annotations

import os
import re

from chalicelib.errors import Conflict


class PosterSettingsError(Conflict):
    """A poster setting is missing or not valid (the message names it)."""
    code = "poster_not_configured"


ENV_VERSIONS = ("release", "trial", "develop")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_PAGE = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$")
_HOST = re.compile(r"^[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?)*(:[0-9]{1,5})?$")


def _value(name: str) -> str:
    return (os.environ.get(name) or "").strip()


def bucket() -> str:
    value = _value("POSTER_BUCKET")
    if not value:
        raise PosterSettingsError("POSTER_BUCKET is not set: posters are cached in S3")
    if not _BUCKET.match(value):
        raise PosterSettingsError("POSTER_BUCKET is not an S3 bucket name")
    return value


def page() -> str:
    value = _value("POSTER_PAGE") or "pages/product/index"
    if not _PAGE.match(value) or len(value) > 128:  # WeChat: no leading slash, no query
        raise PosterSettingsError("POSTER_PAGE must be a page path such as pages/product/index")
    return value


def env_version() -> str:
    value = _value("POSTER_ENV_VERSION") or "release"
    if value not in ENV_VERSIONS:
        raise PosterSettingsError(f"POSTER_ENV_VERSION must be one of {', '.join(ENV_VERSIONS)}")
    return value


def image_hosts() -> frozenset[str]:
    hosts = {host.strip().lower() for host in _value("POSTER_IMAGE_HOSTS").split(",") if host.strip()}
    bad = sorted(host for host in hosts if not _HOST.match(host))
    if bad:
        raise PosterSettingsError("POSTER_IMAGE_HOSTS must be host names (with an optional :port) "
                                  "separated by commas")
    return frozenset(hosts)


def font_path() -> str | None:
    return _value("POSTER_FONT") or None
