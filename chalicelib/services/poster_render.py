"""Drawing a share poster with Pillow (imported only when a poster is made, never at cold start).

The layout's numbers are domain/posters.py's; this draws them: the product picture (or a
placeholder) square at the top, the name on at most two lines, the price, and the mini-program
code with its caption at the bottom. Text is set in Noto Sans CJK SC (in the deployment package
cut to GB2312's characters, infra/poster_font.py; in a checkout the full `manimgx-fonts-cjk`) or
POSTER_FONT, so Chinese names render as Chinese, not boxes.

Untrusted pictures are decoded within limits: PNG, JPEG, WebP or GIF only, at most
MAX_SOURCE_PIXELS (checked from the header before decoding: a small file can claim a huge
image). The code image is WeChat's (or the simulator's): PNG or JPEG, at most 1280 wide.
"""
from __future__ import annotations

import functools
import hashlib
import io
import threading
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from chalicelib import poster_settings
from chalicelib.domain import posters as layout
from chalicelib.log import get_logger

log = get_logger(__name__)

MAX_SOURCE_PIXELS = 25_000_000
PICTURE_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "GIF"})
CODE_FORMATS = frozenset({"PNG", "JPEG"})
MAX_CODE_SIDE = 1600
INK, MUTED, PRICE_RED, LINE = (34, 34, 34), (136, 136, 136), (230, 38, 38), (235, 235, 235)
FONT_FAMILY = "Noto Sans CJK SC"
# Written by `make package` (infra/poster_font.py) into vendor/, which Chalice puts at the zip's
# root: beside chalicelib/ on Lambda, absent in a checkout. A character it lacks (outside GB2312:
# rare or Traditional hanzi, emoji) is drawn as the font's .notdef box: FreeType maps it to glyph 0.
SUBSET_FONT = Path(__file__).resolve().parents[2] / "poster_fonts" / "NotoSansCJKsc-VF-GB2312.otf"
# FreeType faces (the cached fonts) are not safe to use from two threads at once; a Lambda runs
# one request at a time, chalice local several.
_drawing = threading.Lock()


class UnusableImage(ValueError):
    """Bytes that are not an image we draw."""


def render(content: layout.PosterContent, picture: bytes | None, code: bytes) -> bytes:
    """The poster as PNG bytes. UnusableImage when `code` is not an image; a picture that is not
    one is replaced by the placeholder."""
    with _drawing:
        return _render(content, picture, code)


def _render(content: layout.PosterContent, picture: bytes | None, code: bytes) -> bytes:
    canvas = Image.new("RGB", (layout.WIDTH, layout.HEIGHT), "white")
    canvas.paste(_picture(picture, content), (0, 0))
    draw = ImageDraw.Draw(canvas)
    y = layout.IMAGE_SIZE + layout.PADDING
    name_font = _font(layout.NAME_SIZE, "Bold")
    width = layout.WIDTH - 2 * layout.PADDING
    for line in layout.wrap(content.name, width, layout.NAME_LINES, lambda text: int(draw.textlength(text, font=name_font))):
        draw.text((layout.PADDING, y), line, font=name_font, fill=INK)
        y += layout.NAME_SIZE + 14
    y = layout.IMAGE_SIZE + layout.PADDING + layout.NAME_LINES * (layout.NAME_SIZE + 14) + 24
    draw.text((layout.PADDING, y), content.price, font=_font(layout.PRICE_SIZE, "Bold"), fill=PRICE_RED)
    top = y + layout.PRICE_SIZE + layout.PADDING
    draw.line([(layout.PADDING, top - layout.PADDING // 2), (layout.WIDTH - layout.PADDING, top - layout.PADDING // 2)],
              fill=LINE, width=2)
    code_left = layout.WIDTH - layout.PADDING - layout.CODE_SIZE
    canvas.paste(_code(code), (code_left, top))
    caption_font = _font(layout.CAPTION_SIZE, "Regular")
    for index, line in enumerate(layout.wrap(layout.CAPTION, code_left - 2 * layout.PADDING, 2,
                                             lambda text: int(draw.textlength(text, font=caption_font)))):
        draw.text((layout.PADDING, top + layout.CODE_SIZE // 2 - layout.CAPTION_SIZE + index * (layout.CAPTION_SIZE + 12)),
                  line, font=caption_font, fill=MUTED)
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return out.getvalue()


def _open(data: bytes, formats: frozenset[str], max_side: int | None = None) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data), formats=sorted(formats))
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise UnusableImage(str(error)[:200]) from None
    width, height = image.size
    if width * height > MAX_SOURCE_PIXELS or (max_side is not None and max(width, height) > max_side):
        raise UnusableImage(f"{width}x{height} is too large")
    try:
        image.draft("RGB", (layout.IMAGE_SIZE, layout.IMAGE_SIZE))  # JPEG: decode scaled down
        image.load()
        # Other formats decode whole: shrink before any copy (RGBA, the flat canvas), so a large
        # PNG within the download limit cannot take the function's memory several times over.
        image.thumbnail((layout.IMAGE_SIZE * 2, layout.IMAGE_SIZE * 2))
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise UnusableImage(str(error)[:200]) from None
    return image


def _picture(data: bytes | None, content: layout.PosterContent) -> Image.Image:
    size = (layout.IMAGE_SIZE, layout.IMAGE_SIZE)
    if data:
        try:
            image = _open(data, PICTURE_FORMATS)
            flat = Image.new("RGB", image.size, "white")  # transparent parts on white
            converted = image.convert("RGBA")
            flat.paste(converted, mask=converted.getchannel("A"))
            return ImageOps.fit(flat, size, Image.Resampling.LANCZOS)
        except UnusableImage as error:
            log.warning("product picture not drawn; placeholder instead", product_id=content.product_id,
                        reason=str(error))
    return _placeholder(content, size)


def _placeholder(content: layout.PosterContent, size: tuple[int, int]) -> Image.Image:
    """A soft colour of the product's own (the same every time) and the name's first character."""
    hue = hashlib.sha256(content.product_id.encode("utf-8")).digest()[0]
    background = Image.new("HSV", size, (hue, 60, 235)).convert("RGB")
    draw = ImageDraw.Draw(background)
    first = (content.name.strip() or "?")[0]
    draw.text((size[0] // 2, size[1] // 2), first, font=_font(320, "Bold"), fill="white", anchor="mm")
    return background


def _code(data: bytes) -> Image.Image:
    image = _open(data, CODE_FORMATS, max_side=MAX_CODE_SIDE).convert("RGBA")
    flat = Image.new("RGB", image.size, "white")
    flat.paste(image, mask=image.getchannel("A"))
    return flat.resize((layout.CODE_SIZE, layout.CODE_SIZE), Image.Resampling.LANCZOS)


@functools.lru_cache(maxsize=16)
def _font(size: int, weight: str) -> ImageFont.FreeTypeFont:
    path, index = font_file()
    font = ImageFont.truetype(path, size, index=index)
    try:
        font.set_variation_by_name(weight)  # the bundled font is variable (Thin to Black)
    except (OSError, ValueError):
        pass  # a static POSTER_FONT: its one weight
    return font


@functools.lru_cache(maxsize=1)
def font_file() -> tuple[str, int]:
    """(path, face index) of the CJK font: POSTER_FONT; else the package's Noto Sans CJK SC cut to
    GB2312 (SUBSET_FONT, only in the deployment zip); else the full font (a dev requirement)."""
    configured = poster_settings.font_path()
    if configured:
        if not Path(configured).is_file():
            raise poster_settings.PosterSettingsError("POSTER_FONT names no file")
        return configured, 0
    if SUBSET_FONT.is_file():
        return str(SUBSET_FONT), 0
    try:
        import manimgx_fonts_cjk
    except ImportError:
        raise poster_settings.PosterSettingsError("No CJK font: neither the package's (make package) nor "
                                                  "manimgx-fonts-cjk (requirements-dev.txt); set POSTER_FONT") from None
    path = str(Path(manimgx_fonts_cjk.__file__).with_name("NotoSansCJK-VF.otf.ttc"))
    for index in range(8):  # a collection of JP, KR, SC, TC, HK faces
        try:
            if ImageFont.truetype(path, 12, index=index).getname()[0] == FONT_FAMILY:
                return path, index
        except OSError:
            break
    raise poster_settings.PosterSettingsError(f"The bundled font has no {FONT_FAMILY} face")
