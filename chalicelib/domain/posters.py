"""Share posters (API.md `GET /v1/products/{product_id}/poster`): the rules, no I/O, no Pillow.

The scene of the mini-program code. WeChat's `wxacode.getUnlimited` takes a scene of at most 32
visible characters from digits, letters and `!#$&'()*+,/:;=?@-._~`; ours carries the sharer's
referral code (24 characters, 120 bits: domain/identity.py) and the product id, with no lookup
item behind it, so the mini-program (or `decode_scene`) reads both back:

- a product id of at most SLUG_MAX characters of [A-Za-z0-9_-] (the demo store's `p-cherry`):
  `<referral, 20 characters>` + the product id as it is: 21-31 characters;
- a generated id `p-` + 20 hex digits (services/catalog_admin.py): the referral and the id's
  80 bits packed into one number, written in exactly 32 characters.

Both write numbers in base 77: ALPHABET is WeChat's scene characters less `#&+=?`, which mean
something in a query string. The length tells the two forms apart (32: packed). A mini-program
decodes it with BigInt in a dozen lines (`decode_scene` is the reference). Any other product id
cannot be put in a scene: `SceneError`.

The poster's content key: a hash of everything drawn on it (LAYOUT_VERSION, name, price text,
image URL, scene, page and code version), so the same poster is made once and a change to any
of them makes a new one.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Callable

from chalicelib.domain.money import format_yuan

# Bump when the drawing changes: every cached poster is then made again (old ones expire).
LAYOUT_VERSION = 1
SCENE_MAX = 32
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!$'()*,/:;@-._~"
BASE = len(ALPHABET)  # 77
REFERRAL_CHARS = 20  # 77**20 > 2**120
SLUG_MAX = SCENE_MAX - REFERRAL_CHARS - 1  # 11: a slug scene is never 32 long
_SLUG = re.compile(r"[A-Za-z0-9_-]{1,%d}" % SLUG_MAX)
_GENERATED = re.compile(r"p-([0-9a-f]{20})")
_REFERRAL_CODE = re.compile(r"[A-Z2-7]{24}")
_PRODUCT_BITS = 80

# The poster's layout (pixels): a 750-wide card, the product picture square at the top.
WIDTH = 750
IMAGE_SIZE = 750
PADDING = 40
NAME_SIZE = 38
NAME_LINES = 2
PRICE_SIZE = 56
CODE_SIZE = 200
CAPTION_SIZE = 24
CAPTION = "长按识别小程序码 查看商品"
HEIGHT = IMAGE_SIZE + PADDING + NAME_LINES * (NAME_SIZE + 14) + 24 + PRICE_SIZE + PADDING + CODE_SIZE + PADDING


class SceneError(ValueError):
    """The referral code or the product id cannot be put in a scene."""


def _digits(number: int, length: int) -> str:
    out = []
    for _ in range(length):
        number, digit = divmod(number, BASE)
        out.append(ALPHABET[digit])
    if number:
        raise SceneError("number too large for its characters")
    return "".join(reversed(out))


def _number(text: str) -> int:
    number = 0
    for char in text:
        index = ALPHABET.find(char)
        if index < 0:
            raise SceneError(f"{char!r} is not a scene character")
        number = number * BASE + index
    return number


def _referral_bits(referral_code: str) -> int:
    if not _REFERRAL_CODE.fullmatch(referral_code):
        raise SceneError("not a referral code")
    return int.from_bytes(base64.b32decode(referral_code), "big")


def encode_scene(referral_code: str, product_id: str) -> str:
    """The scene for the sharer's code and the product (SceneError when it cannot be made)."""
    referral = _referral_bits(referral_code)
    generated = _GENERATED.fullmatch(product_id)
    if generated:
        return _digits((referral << _PRODUCT_BITS) | int(generated.group(1), 16), SCENE_MAX)
    if _SLUG.fullmatch(product_id):
        return _digits(referral, REFERRAL_CHARS) + product_id
    raise SceneError(f"product id {product_id!r} cannot be put in a scene")


def decode_scene(scene: str) -> tuple[str, str]:
    """(referral code, product id) of a scene made by encode_scene (SceneError otherwise)."""
    if len(scene) == SCENE_MAX:
        number = _number(scene)
        referral, product = number >> _PRODUCT_BITS, number & ((1 << _PRODUCT_BITS) - 1)
        product_id = f"p-{product:020x}"
    elif REFERRAL_CHARS < len(scene) < SCENE_MAX and _SLUG.fullmatch(scene[REFERRAL_CHARS:]):
        referral, product_id = _number(scene[:REFERRAL_CHARS]), scene[REFERRAL_CHARS:]
    else:
        raise SceneError("not a poster scene")
    if referral >= 1 << 120:
        raise SceneError("not a poster scene")
    return base64.b32encode(referral.to_bytes(15, "big")).decode("ascii"), product_id


def price_text(prices_fen: list[int]) -> str:
    """"¥39.90", or "¥39.90起" when the product's SKUs on sale differ in price."""
    low = min(prices_fen)
    return format_yuan(low) + ("起" if max(prices_fen) != low else "")


@dataclass(frozen=True)
class PosterContent:
    """Everything drawn on a poster; its key names it in the cache."""
    product_id: str
    name: str
    price: str
    image_url: str | None
    scene: str
    page: str
    env_version: str

    @property
    def key(self) -> str:
        fields = {"v": LAYOUT_VERSION, **self.__dict__}
        digest = hashlib.sha256(json.dumps(fields, ensure_ascii=False, sort_keys=True).encode("utf-8")).digest()
        return base64.b32encode(digest).decode("ascii").rstrip("=").lower()[:40]


def wrap(text: str, width: int, lines: int, measure: Callable[[str], int]) -> list[str]:
    """`text` broken into at most `lines` lines no wider than `width` by `measure` (pixels of a
    string), character by character (Chinese has no spaces); the last line ends in "…" when the
    text does not fit."""
    out: list[str] = []
    rest = " ".join(text.split())[:200]  # a name is far shorter; this bounds the measuring
    while rest and len(out) < lines:
        cut = len(rest)
        while cut > 1 and measure(rest[:cut]) > width:
            cut -= 1
        out.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest and out:
        last = out[-1]
        while last and measure(last + "…") > width:
            last = last[:-1]
        out[-1] = last.rstrip() + "…"
    return out
