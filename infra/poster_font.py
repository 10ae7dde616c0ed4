"""The posters' font in the deployment package: Noto Sans CJK SC cut down to what posters need.

    python -m infra.poster_font            # writes vendor/poster_fonts/ (run by `make package`)

The full font (`manimgx-fonts-cjk`, a dev requirement: the local stack and the tests draw with
it) is one 32 MB collection of five variable faces (JP, KR, SC, TC, HK) sharing 65,535 glyphs.
Every function of the app shares one deployment zip, and a bigger zip slows every cold start, so
the package carries only the SC face, still variable (Regular and Bold are named instances of
it), without its vertical and localized forms, and only the characters of GB2312 (the 6,763
hanzi of everyday Simplified Chinese and its symbols, decoded from its code space by Python's
own codec, so the list is not typed by hand) plus ASCII, Latin-1, general punctuation, CJK
punctuation and the full-width forms: 3.2 MB instead of 32.7 (2.3 MB zipped instead of 19.7).

Chalice copies `vendor/` into the root of the zip, so the font lands in `poster_fonts/` beside
`chalicelib/`, where services/poster_render.py looks first. A character outside the subset
(a rare hanzi, Traditional, emoji) is drawn as the font's .notdef box (kept, with its outline),
never an error: FreeType maps a character the font lacks to glyph 0.

The output depends only on the source font, this module and fontTools' version; it is
rewritten only when one of them changes (a stamp beside it), atomically (tests and `make
package` may run at once).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
# `vendor/<dir>` is `<dir>` at the root of the deployment zip (/var/task/poster_fonts on Lambda).
VENDOR_DIR = PROJECT_DIR / "vendor" / "poster_fonts"
# services/poster_render.py SUBSET_FONT names the same file.
FILE_NAME = "NotoSansCJKsc-VF-GB2312.otf"
FACE = "Noto Sans CJK SC"
# The name records kept: family, style, unique id, full name, version, PostScript name (1-6),
# copyright (0), and the licence (13, 14: SIL OFL 1.1 asks that it travel with the font).
NAME_IDS = (0, 1, 2, 3, 4, 5, 6, 13, 14)
# OpenType features not kept: the vertical ones (posters set text horizontally only) and `locl`
# (mostly Japanese, Korean and Traditional forms of hanzi; Pillow names no language, so the SC
# face draws its own). Kept, they would double the glyphs (13,483 instead of 7,680) and the file
# (6.0 MB, not 3.2). Chinese text draws pixel for pixel as with the full font; a Latin run such as
# "ABC-123" may differ by a few antialiased pixels (same shapes, same widths), where HarfBuzz
# applies the full font's Latin `locl` for the process's default language.
DROPPED_FEATURES = frozenset({"valt", "vatu", "vchw", "vert", "vhal", "vjmo", "vkrn", "vpal", "vrt2", "locl"})


def gb2312_characters() -> set[str]:
    """Every character GB2312 encodes: rows 0xA1-0xA9 (symbols, kana, Greek, Cyrillic, box
    drawing, full-width ASCII) and 0xB0-0xF7 (level 1 and 2 hanzi), decoded by Python's codec."""
    characters = set()
    for high in [*range(0xA1, 0xAA), *range(0xB0, 0xF8)]:
        for low in range(0xA1, 0xFF):
            try:
                characters.add(bytes((high, low)).decode("gb2312"))
            except UnicodeDecodeError:
                pass  # an unassigned cell
    return characters


def poster_characters() -> set[str]:
    """What the packaged font covers (see the module's docstring)."""
    ranges = [
        (0x20, 0x7E),      # ASCII
        (0xA0, 0xFF),      # Latin-1: ¥ (prices), ×, ·, ®, accented letters
        (0x2010, 0x2027),  # general punctuation: dashes, quotes, … (the wrapped name's ellipsis)
        (0x3000, 0x303F),  # CJK symbols and punctuation
        (0xFF01, 0xFF5E),  # full-width ASCII forms
        (0xFFE0, 0xFFE6),  # full-width ￠￡￢￣￤￥￦
    ]
    characters = gb2312_characters()
    for first, last in ranges:
        characters.update(chr(code) for code in range(first, last + 1))
    return characters


def source_font() -> tuple[Path, int]:
    """(path, face index) of Noto Sans CJK SC in the `manimgx-fonts-cjk` collection."""
    from fontTools.ttLib import TTCollection

    try:
        import manimgx_fonts_cjk
    except ImportError:
        raise SystemExit("infra.poster_font: install the dev requirements (manimgx-fonts-cjk is one)") from None
    path = Path(manimgx_fonts_cjk.__file__).with_name("NotoSansCJK-VF.otf.ttc")
    collection = TTCollection(str(path), lazy=True)
    for index, face in enumerate(collection.fonts):
        if face["name"].getDebugName(1) == FACE:
            return path, index
    raise SystemExit(f"infra.poster_font: {path} has no {FACE} face")


def _stamp(path: Path, index: int, characters: set[str]) -> str:
    import fontTools

    digest = hashlib.sha256()
    stat = path.stat()
    digest.update(f"{path.name}:{stat.st_size}:{index}:{fontTools.version}\n".encode())
    digest.update(Path(__file__).read_bytes())  # this module: its options and features
    digest.update("".join(sorted(characters)).encode("utf-8"))
    return digest.hexdigest()


def subset(path: Path, index: int, characters: set[str], out: Path) -> None:
    from fontTools import subset as ft_subset
    from fontTools.ttLib import TTFont

    options = ft_subset.Options()
    options.font_number = index
    # fontTools' default features (those HarfBuzz/raqm may apply: ccmp, liga, kern, palt, ...)
    options.layout_features = [tag for tag in options.layout_features if tag not in DROPPED_FEATURES]
    options.name_IDs = list(NAME_IDS)
    options.name_languages = ["*"]
    options.notdef_outline = True     # a missing character shows a box, not nothing
    options.recalc_timestamp = False  # the same input gives the same bytes
    options.drop_tables += ["DSIG"]   # a signature of the whole font, void once cut
    font = TTFont(str(path), fontNumber=index, lazy=False, recalcTimestamp=False)
    subsetter = ft_subset.Subsetter(options)
    subsetter.populate(unicodes=[ord(character) for character in characters])
    subsetter.subset(font)
    font.save(str(out))


def build(out_dir: Path = VENDOR_DIR) -> Path:
    """The subset font in out_dir (written only when its stamp changed); its path."""
    path, index = source_font()
    characters = poster_characters()
    target, stamp_file = out_dir / FILE_NAME, out_dir / (FILE_NAME + ".stamp")
    stamp = _stamp(path, index, characters)
    if target.is_file() and stamp_file.is_file() and stamp_file.read_text().strip() == stamp:
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=out_dir, suffix=".tmp")
    os.close(descriptor)
    try:
        subset(path, index, characters, Path(temporary))
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would travel into the zip: Lambda's user must read it
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    stamp_file.write_text(stamp + "\n")  # after the font: a stamp never vouches for a partial file
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.poster_font", description=__doc__.split("\n")[0])
    parser.add_argument("--out-dir", type=Path, default=VENDOR_DIR,
                        help="where to write the font (default vendor/poster_fonts, packaged by chalice)")
    args = parser.parse_args(argv)
    target = build(args.out_dir)
    print(f"poster font: {target} ({target.stat().st_size / 1e6:.1f} MB, {len(poster_characters())} characters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
