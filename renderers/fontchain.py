"""Per-character font fallback over the bundled Noto fonts: :class:`FontChain`.

Pillow has no font fallback of its own, so a chain picks, for every character, the first bundled font
whose cmap (read once with fontTools and cached as a set of code points) covers it. Consecutive characters
that land in the same font form a run that is drawn with one ``ImageDraw.text`` call on a shared baseline
(``anchor="ls"``). Fonts load with Pillow's BASIC layout engine: it is faster than Raqm and correct for
Latin, Greek, Cyrillic and CJK text (scripts that need shaping, such as Arabic or Devanagari, are not
bundled). BASIC advances are hinted whole pixels and add up exactly, so a run's width is the sum of its
characters' advances, looked up once per character and cached.

What is drawn for characters that cannot be drawn as themselves (``Glyph.missing`` is set when the
character is lost, and pages count those):

* C0 controls other than newline and tab, and DEL: the matching U+2400 Control Picture (␀ ... ␟, ␡),
  from Noto Sans Symbols 2; not counted as missing, the control is still legible.
* C1 controls (U+0080-U+009F), lone surrogates, and any character no bundled font covers: U+FFFD
  REPLACEMENT CHARACTER (a visible diamond with a question mark), counted as missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache, lru_cache
from pathlib import Path
from typing import NamedTuple

from fontTools.ttLib import TTFont
from PIL import ImageFont

from optical_memory.errors import ConfigError

FONT_DIR = Path(__file__).resolve().parent / "fonts"
"""Folder of the bundled font files (SIL Open Font License 1.1)."""

_CJK = "NotoSansCJKsc-Regular.otf"
_FALLBACK = (
    "NotoSansMath-Regular.ttf",
    "NotoSansSymbols-Regular.ttf",
    "NotoSansSymbols2-Regular.ttf",
    _CJK,
    "NotoEmoji-VF.ttf",
)
SANS: tuple[str, ...] = ("NotoSans-Regular.ttf", *_FALLBACK, "NotoSansMono-Regular.ttf")
"""Prose: Noto Sans, then math, symbols, CJK (Chinese, Japanese, Korean), monochrome emoji."""
SANS_BOLD: tuple[str, ...] = ("NotoSans-Bold.ttf", *_FALLBACK, "NotoSansMono-Bold.ttf")
"""Role labels and headings."""
MONO: tuple[str, ...] = ("NotoSansMono-Regular.ttf", *_FALLBACK, "NotoSans-Regular.ttf")
"""Code blocks and inline code."""

REPLACEMENT = "\ufffd"
_VARIABLE_WEIGHT = (
    400  # Variable fonts load at their default instance; pin the weight so output never drifts.
)


class Glyph(NamedTuple):
    """How one character is drawn: the font, the character actually drawn, its advance in pixels."""

    font: ImageFont.FreeTypeFont
    drawn: str
    advance: int
    missing: bool


@cache
def coverage(name: str) -> frozenset[int]:
    """Code points a bundled font's cmap maps to a glyph.

    Raises:
        ConfigError: If the font file is not bundled.
    """
    path = FONT_DIR / name
    if not path.is_file():
        raise ConfigError(f"font {name!r} is not in {FONT_DIR}; reinstall optical-memory")
    with TTFont(path, lazy=True) as font:
        return frozenset(font.getBestCmap())


@lru_cache(maxsize=256)
def load_font(name: str, size: int) -> ImageFont.FreeTypeFont:
    """A bundled font at a pixel size, with the BASIC layout engine (cached: fonts are shared).

    Raises:
        ConfigError: If the font file is not bundled.
    """
    path = FONT_DIR / name
    if not path.is_file():
        raise ConfigError(f"font {name!r} is not in {FONT_DIR}; reinstall optical-memory")
    font = ImageFont.truetype(str(path), size, layout_engine=ImageFont.Layout.BASIC)
    try:
        axes = font.get_variation_axes()
    except OSError:  # not a variable font
        axes = []
    if axes:
        font.set_variation_by_axes(
            [float(_VARIABLE_WEIGHT if a["name"] == b"Weight" else a["default"] or 0) for a in axes]
        )
    return font


def _substitute(ch: str) -> tuple[str, bool]:
    """The character drawn in place of ``ch`` and whether ``ch`` itself is lost."""
    cp = ord(ch)
    if cp < 0x20:
        return (" ", False) if ch in "\t\n" else (chr(0x2400 + cp), False)
    if cp == 0x7F:
        return "\u2421", False
    if 0x80 <= cp <= 0x9F or 0xD800 <= cp <= 0xDFFF:
        return REPLACEMENT, True
    return ch, False


class FontChain:
    """An ordered list of bundled fonts at one size, with per-character fallback.

    Args:
        faces: Font file names in ``FONT_DIR``, most preferred first (e.g. :data:`SANS`).
        size: Font size in pixels.

    Raises:
        ConfigError: If a face is not bundled or the size is not positive.
    """

    def __init__(self, faces: Sequence[str] = SANS, size: int = 22) -> None:
        if size <= 0:
            raise ConfigError(f"font size must be positive; got {size}")
        if not faces:
            raise ConfigError("a font chain needs at least one font")
        self.faces = tuple(faces)
        self.size = size
        self.fonts = tuple(load_font(face, size) for face in self.faces)
        self._coverage = tuple(coverage(face) for face in self.faces)
        self._glyphs: dict[str, Glyph] = {}
        ascent, descent = self.fonts[0].getmetrics()
        self.ascent = ascent
        self.descent = descent

    def __repr__(self) -> str:
        return f"FontChain({self.faces[0]!r}, size={self.size})"

    def font_index(self, ch: str) -> int | None:
        """Index of the first font in the chain covering ``ch`` (None when none does)."""
        cp = ord(ch)
        for index, cover in enumerate(self._coverage):
            if cp in cover:
                return index
        return None

    def glyph(self, ch: str) -> Glyph:
        """How the single character ``ch`` is drawn (cached per character)."""
        hit = self._glyphs.get(ch)
        if hit is not None:
            return hit
        drawn, missing = _substitute(ch)
        index = self.font_index(drawn)
        if index is None:
            drawn, missing = REPLACEMENT, True
            index = self.font_index(REPLACEMENT)
        # A chain without U+FFFD borrows Noto Sans's.
        font = load_font(SANS[0], self.size) if index is None else self.fonts[index]
        glyph = Glyph(font, drawn, round(font.getlength(drawn)), missing)
        if len(self._glyphs) < 65536:  # bound the cache on adversarial input with huge alphabets
            self._glyphs[ch] = glyph
        return glyph

    def length(self, text: str) -> int:
        """Width of ``text`` in pixels when drawn through this chain."""
        glyph = self.glyph
        return sum(glyph(ch).advance for ch in text)

    def runs(self, text: str) -> list[tuple[ImageFont.FreeTypeFont, str]]:
        """Split ``text`` into maximal runs of characters drawn with the same font (drawn characters)."""
        out: list[tuple[ImageFont.FreeTypeFont, str]] = []
        font = None
        chars: list[str] = []
        for ch in text:
            g = self.glyph(ch)
            if g.font is not font:
                if chars:
                    out.append((font, "".join(chars)))  # type: ignore[arg-type]
                font, chars = g.font, []
            chars.append(g.drawn)
        if chars:
            out.append((font, "".join(chars)))  # type: ignore[arg-type]
        return out

    def missing(self, text: str) -> int:
        """How many characters of ``text`` are drawn as a replacement."""
        return sum(self.glyph(ch).missing for ch in text)


@lru_cache(maxsize=64)
def chain(faces: tuple[str, ...], size: int) -> FontChain:
    """A shared :class:`FontChain` (so glyph caches stay warm across renderers and pages)."""
    return FontChain(faces, size)
