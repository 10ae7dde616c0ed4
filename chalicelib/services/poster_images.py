"""Fetching a product's picture for its poster, safely.

The URL is the merchant's (the product's first image), but a poster request must never make the
server fetch whatever a URL names (SSRF: cloud metadata, internal services, a huge or endless
answer). So a picture is fetched only when:

- its host (and port, if any) is one of POSTER_IMAGE_HOSTS, exactly (no suffix matching), over
  https; plain http only from 127.0.0.1 or localhost (the local stack's image server);
- the URL has no user info; redirects are not followed (a 3xx is a failure);
- it answers 200 within FETCH_TIMEOUT_SECONDS with at most MAX_IMAGE_BYTES.

Anything else, or a failure, gives None: the poster then shows a drawn placeholder (logged).
Decoding limits (pixels, formats) are the renderer's (services/poster_render.py).
"""
from __future__ import annotations

import time
from urllib.parse import urlsplit

import urllib3

from chalicelib import poster_settings
from chalicelib.log import get_logger

log = get_logger(__name__)

MAX_IMAGE_BYTES = 3 * 1024 * 1024
FETCH_TIMEOUT_SECONDS = 3.0
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})

_pool = urllib3.PoolManager(num_pools=4, maxsize=4, retries=False)


def allowed(url: str, hosts: frozenset[str]) -> bool:
    """Whether `url` may be fetched given the allowed hosts."""
    try:
        parts = urlsplit(url)
        hostname, port = parts.hostname, parts.port  # port: ValueError when not a number
    except ValueError:
        return False
    if not hostname or parts.username is not None or parts.password is not None:
        return False
    host = hostname.lower() + (f":{port}" if port is not None else "")
    if host not in hosts:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and hostname.lower() in LOOPBACK_HOSTS)


def fetch(url: str | None) -> bytes | None:
    """The picture's bytes, or None (not allowed, or the fetch failed)."""
    if not url:
        return None
    if not allowed(url, poster_settings.image_hosts()):
        log.info("product picture not fetched: its host is not in POSTER_IMAGE_HOSTS")
        return None
    try:
        response = _pool.request("GET", url, redirect=False, preload_content=False,
                                 timeout=urllib3.Timeout(connect=1.0, read=FETCH_TIMEOUT_SECONDS),
                                 headers={"Accept": "image/png, image/jpeg, image/webp"})
        try:
            if response.status != 200:
                log.warning("product picture not fetched", status=response.status)
                return None
            data = _read_bounded(response)
        finally:
            response.close()  # never reused: what was not read stays unread
    except urllib3.exceptions.HTTPError as error:
        log.warning("product picture not fetched", error=type(error).__name__)
        return None
    if data is None:
        log.warning("product picture not used: too large or too slow", limit_bytes=MAX_IMAGE_BYTES)
    return data


def _read_bounded(response: urllib3.BaseHTTPResponse) -> bytes | None:
    """The body, or None past MAX_IMAGE_BYTES or FETCH_TIMEOUT_SECONDS in all (a server that
    drips a byte at a time passes every per-read timeout)."""
    deadline = time.monotonic() + FETCH_TIMEOUT_SECONDS
    chunks, size = [], 0
    while True:  # bounded: each pass reads >= 1 byte or ends, and the deadline and size cap hold
        chunk = response.read1(64 * 1024)  # whatever arrived, not a full 64 KiB
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_IMAGE_BYTES or time.monotonic() > deadline:
            return None
