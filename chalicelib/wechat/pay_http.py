"""What Pay v2 and v3 share: the raw HTTP exchange, nonces, China time, and key material from env.

The raw exchange returns the exact bytes received, because both versions verify a signature over
them before reading anything. Request URLs carry no secret here, but, as in `http.py`, only the
API name is logged.
"""
from __future__ import annotations

import os
import re
import secrets
import ssl
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Mapping

import urllib3
from urllib3.util.ssl_ import create_urllib3_context

from chalicelib.clock import CHINA_TZ
from chalicelib.log import get_logger
from chalicelib.wechat.pay_types import PayUnavailable

log = get_logger(__name__)

_pool = urllib3.PoolManager(num_pools=4, maxsize=8, retries=False)

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.S)


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: Mapping[str, str]  # urllib3's HTTPHeaderDict: case-insensitive
    data: bytes


def send(method: str, url: str, *, body: bytes | None, headers: Mapping[str, str], timeout: float, api: str,
         pool: urllib3.PoolManager | None = None) -> RawResponse:
    """One request, no retries and no redirects (a payment call must not be repeated behind our back).

    Transport failures and 5xx are `PayUnavailable`; every other status is the caller's to read.
    """
    try:
        response = (pool or _pool).request(
            method, url, body=body, headers=dict(headers), redirect=False,
            timeout=urllib3.Timeout(connect=min(timeout, 2.0), read=timeout),
        )
    except urllib3.exceptions.HTTPError as error:
        log.warning("wechat pay request failed", api=api, error=type(error).__name__)
        raise PayUnavailable(f"{api}: {type(error).__name__}") from None
    if response.status >= 500:
        log.warning("wechat pay answered a server error", api=api, status=response.status)
        raise PayUnavailable(f"{api}: HTTP {response.status}")
    return RawResponse(response.status, response.headers, response.data)


def new_nonce() -> str:
    """32 random hex characters: unguessable, and within v2's 32-character nonce_str limit."""
    return secrets.token_hex(16)


def to_china_time(moment: datetime) -> datetime:
    """WeChat Pay reads times in China Standard Time. A naive datetime is refused: guessing its zone
    would silently shift an order's expiry by hours."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a timezone-aware datetime is required")
    return moment.astimezone(CHINA_TZ)


def load_pem_or_path(value: str) -> str:
    """PEM text as given in the environment, or the contents of the file(s) it names.

    Several files may be listed, separated by commas or newlines (several platform certificates
    during a rotation); their contents are concatenated. PEM pasted into a one-line env variable
    often has literal `\\n` sequences; they are turned back into newlines.
    """
    text = value.strip()
    if not text:
        raise ValueError("empty PEM value")
    if "-----BEGIN" in text:
        if "\n" not in text:
            text = text.replace("\\n", "\n")
        return text + "\n"
    contents = []
    for name in (part.strip() for part in re.split(r"[,\n]", text)):
        if not name:
            continue
        try:
            contents.append(Path(name).read_text(encoding="ascii").strip())
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"cannot read PEM file {name}: {type(error).__name__}") from None
    return "\n".join(contents) + "\n"


def split_pem(text: str) -> list[str]:
    """The PEM blocks in `text`, in order (a bundle of certificates becomes one string each)."""
    blocks = [match.group(0) + "\n" for match in _PEM_BLOCK.finditer(text)]
    if not blocks:
        raise ValueError("no PEM block found")
    return blocks


def client_tls_pool(cert_pem: str, key_pem: str) -> urllib3.PoolManager:
    """A pool presenting the merchant's TLS client certificate (v2 refunds require it).

    `ssl` only loads a certificate chain from files, so the PEM goes to a private temporary
    directory (mode 0700) that is removed as soon as the context has read it.
    """
    context = create_urllib3_context()
    context.load_default_certs()
    with tempfile.TemporaryDirectory(prefix="wxpay-") as directory:
        cert_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
        for path, content in ((cert_path, cert_pem), (key_path, key_pem)):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="ascii") as handle:
                handle.write(content)
        try:
            context.load_cert_chain(cert_path, key_path)
        except ssl.SSLError:
            raise ValueError("the client certificate and key are unreadable or do not match") from None
    return urllib3.PoolManager(num_pools=2, maxsize=4, retries=False, ssl_context=context)
