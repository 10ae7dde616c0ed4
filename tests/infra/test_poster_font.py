"""The posters' font in the deployment package (infra/poster_font.py): Noto Sans CJK SC cut to
GB2312's characters, still variable, and drawing with it (services/poster_render.py).

Builds vendor/poster_fonts/ as `make package` does (~40-70 s the first time; then its stamp
keeps it) and draws posters with it.
"""
from __future__ import annotations

import io

import pytest
from fontTools.ttLib import TTFont
from PIL import Image, ImageFont

from chalicelib.domain import posters as layout
from chalicelib.services import poster_render
from infra import poster_font


@pytest.fixture(scope="module")
def subset_path():
    return poster_font.build()


@pytest.fixture
def drawing_with_the_subset(subset_path, monkeypatch):
    """poster_render as on Lambda: the subset beside chalicelib/, no POSTER_FONT."""
    monkeypatch.delenv("POSTER_FONT", raising=False)
    # where the package puts it is where the renderer looks (the fixture then points at this build)
    assert (poster_render.SUBSET_FONT.name, poster_render.SUBSET_FONT.parent.name) == (subset_path.name,
                                                                                    subset_path.parent.name)
    monkeypatch.setattr(poster_render, "SUBSET_FONT", subset_path)
    poster_render.font_file.cache_clear()
    poster_render._font.cache_clear()
    yield subset_path
    poster_render.font_file.cache_clear()
    poster_render._font.cache_clear()


def _code_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (430, 430), "black").save(out, "PNG")
    return out.getvalue()


def _content(name: str) -> layout.PosterContent:
    return layout.PosterContent("p-fuji", name, "¥39.90起", None, "S" * 28, "pages/product/index", "release")


def test_gb2312_is_decoded_from_its_code_space_682_symbols_and_6763_hanzi():
    characters = poster_font.gb2312_characters()
    hanzi = {c for c in characters if "\u4e00" <= c <= "\u9fff"}
    assert (len(characters), len(hanzi)) == (7445, 6763)
    assert {"鲜", "苹", "果", "￥", "，", "。", "（", "）"} <= characters
    assert {"¥", "…", "A", "z", "0", " "} <= poster_font.poster_characters()


def test_the_subset_has_every_poster_character_the_full_font_has_and_little_more(subset_path):
    source, index = poster_font.source_font()
    full = set(TTFont(str(source), fontNumber=index, lazy=True).getBestCmap())
    wanted = {ord(c) for c in poster_font.poster_characters()}
    subset = TTFont(str(subset_path))
    covered = set(subset.getBestCmap())
    assert covered >= full & wanted
    assert len(covered - wanted) < 20  # fontTools keeps a character whose glyph it keeps anyway (∋ ≅)
    assert len(subset.getGlyphOrder()) < 8000  # no vertical or localized alternates
    assert subset_path.stat().st_size < 4_000_000
    # Still the variable SC face: Regular and Bold are named instances; the licence travels with it.
    names = subset["name"]
    assert names.getDebugName(1) == poster_render.FONT_FAMILY
    assert {"Regular", "Bold"} <= {names.getDebugName(i.subfamilyNameID) for i in subset["fvar"].instances}
    assert "SIL Open Font License" in (names.getDebugName(13) or "")


def test_rebuilding_an_up_to_date_font_keeps_the_file(subset_path):
    before = subset_path.stat().st_mtime_ns
    assert poster_font.build() == subset_path
    assert subset_path.stat().st_mtime_ns == before
    assert subset_path.stat().st_mode & 0o444 == 0o444  # Lambda's user reads what the zip carries


def test_the_renderer_prefers_the_packaged_subset_and_draws_chinese_with_it(drawing_with_the_subset):
    assert poster_render.font_file() == (str(drawing_with_the_subset), 0)
    png = poster_render.render(_content("烟台红富士苹果 5斤装 新鲜水果（当季）"), None, _code_png())
    assert Image.open(io.BytesIO(png)).size == (layout.WIDTH, layout.HEIGHT)
    # Bold is the font's own Bold instance, not the Regular outlines.
    regular, bold = poster_render._font(40, "Regular"), poster_render._font(40, "Bold")
    assert bold.getmask("鲜").getbbox() and bytes(bold.getmask("鲜")) != bytes(regular.getmask("鲜"))


def test_a_character_outside_the_subset_is_drawn_as_the_notdef_box_not_an_error(drawing_with_the_subset):
    font = poster_render._font(40, "Regular")
    rare, emoji, other_rare = "\U0002a6a5", "\U0001f34e", "\u5803"  # 𪚥, 🍎, 堃 (not in GB2312)
    box = bytes(font.getmask(rare))
    assert font.getmask(rare).getbbox()  # something visible, not nothing
    assert bytes(font.getmask(emoji)) == box == bytes(font.getmask(other_rare))
    assert bytes(font.getmask("苹")) != box
    # A whole poster with them, and with one as the placeholder's first character.
    png = poster_render.render(_content("\U0002a6a5\U0001f34e 堃 苹果"), None, _code_png())
    assert Image.open(io.BytesIO(png)).size == (layout.WIDTH, layout.HEIGHT)


def test_without_the_subset_the_renderer_uses_the_full_font(monkeypatch, tmp_path):
    monkeypatch.delenv("POSTER_FONT", raising=False)
    monkeypatch.setattr(poster_render, "SUBSET_FONT", tmp_path / "absent.otf")
    poster_render.font_file.cache_clear()
    try:
        path, index = poster_render.font_file()
        assert path.endswith("NotoSansCJK-VF.otf.ttc")
        assert ImageFont.truetype(path, 12, index=index).getname()[0] == poster_render.FONT_FAMILY
    finally:
        poster_render.font_file.cache_clear()
