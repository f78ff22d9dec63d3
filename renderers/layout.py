"""Lay a chat turn out into drawn lines, independently of where they land on a page: :func:`layout_turn`.

A turn becomes a lazy sequence of :class:`Line` objects (its bold role label first, then one or more lines
per Markdown block); pages only stack lines, so a page break inside a turn is just a line index. Lines are
made as they are consumed, and wrapping keeps only the current line's characters, so a 10 MB paragraph is
laid out in bounded memory.

Wrapping is greedy. Latin text breaks after spaces, hyphens and dashes; CJK text breaks between any two
characters, except that no line starts with closing punctuation (，。、）」』！？ ...) and none ends with
opening punctuation (（「『 ...), following the line-start and line-end rules of JIS X 4051 (kinsoku shori)
and the Chinese layout requirements (W3C clreq). A token wider than the line (a URL, a hash, 10 MB without a
space) breaks at the line width. Wrapped code lines continue after a visible ``↪`` mark, which is part of
the page text (``"↪ "`` followed by the continued code).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from PIL import ImageFont

from optical_memory.renderers.fontchain import MONO, SANS, SANS_BOLD, FontChain, Glyph, chain
from optical_memory.renderers.markdown import Block, blocks
from optical_memory.renderers.style import RenderStyle
from optical_memory.types import Turn

CONTINUATION = "↪ "
"""Drawn (and kept in the page text) at the start of a wrapped code line's continuation."""
CONTINUED = " (cont.)"
"""Appended to the role label when a turn continues from the previous page."""
ROLE_LABELS = {
    "system": "System",
    "user": "User",
    "assistant": "Assistant",
    "tool": "Tool",
    "developer": "Developer",
}

NO_START = frozenset(
    ",.:;!?)]}%'\"、。，．：；！？）］｝」』】〕〉》〙〗〟’”»›‐゠–〜～‼⁇⁈⁉・…‥％ー々〻ヽヾゝゞ"
    "ァィゥェォッャュョヮヵヶぁぃぅぇぉっゃゅょゎゕゖㇰㇱㇲㇳㇴㇵㇶㇷㇸㇹㇺㇻㇼㇽㇾㇿ"
)
"""Characters a wrapped line may not start with (closing punctuation, small kana, iteration marks)."""
NO_END = frozenset("([{（［｛「『【〔〈《〘〖〝‘“｟«‹")
"""Characters a wrapped line may not end with (opening punctuation)."""
_BREAK_AFTER = frozenset("-‐–—/")

Item = tuple[int, str, Glyph]  # (source index, source character, how it is drawn)
Run = tuple[int, ImageFont.FreeTypeFont, str]  # (x, font, drawn text)


@dataclass(frozen=True, slots=True)
class Line:
    """One drawn line (or spacer) of a turn, positioned horizontally; pages stack them vertically.

    Attributes:
        height: Vertical advance of the line.
        baseline: Distance from the line's top to its text baseline.
        runs: ``(x, font, text)`` pieces drawn on the baseline, one ``ImageDraw.text`` call each.
        text: The characters drawn, for the page text; None for spacers and rules, which add no text.
        src_start: Offset in the turn's content where the line's characters begin.
        src_end: Offset just after the last character the line consumed.
        missing: Characters on the line drawn as a replacement.
        fill: Gray level of a background across the text column (code lines), or None.
        bars: x positions of block-quote bars.
        rule: Draw a thin horizontal rule across the middle of the line.
        gap: A blank spacer; a page never starts with one.
    """

    height: int
    baseline: int
    runs: tuple[Run, ...]
    text: str | None
    src_start: int
    src_end: int
    missing: int = 0
    fill: int | None = None
    bars: tuple[int, ...] = ()
    rule: bool = False
    gap: bool = False


@dataclass(frozen=True, slots=True)
class Fonts:
    """The font chains one style draws with."""

    body: FontChain
    bold: FontChain
    code: FontChain
    inline_code: FontChain
    body_bold: FontChain
    headings: tuple[FontChain, FontChain, FontChain]


@lru_cache(maxsize=16)
def fonts_for(style: RenderStyle) -> Fonts:
    """The (shared, cached) font chains of a style."""
    return Fonts(
        body=chain(SANS, style.body_size),
        bold=chain(SANS_BOLD, style.label_size),
        code=chain(MONO, style.code_size),
        inline_code=chain(MONO, max(4, style.body_size - 2)),
        body_bold=chain(SANS_BOLD, style.body_size),
        headings=(
            chain(SANS_BOLD, style.heading_sizes[0]),
            chain(SANS_BOLD, style.heading_sizes[1]),
            chain(SANS_BOLD, style.heading_sizes[2]),
        ),
    )


def is_cjk(ch: str) -> bool:
    """Whether ``ch`` is a CJK character that may break from its neighbours (Han, kana, Hangul, fullwidth)."""
    cp = ord(ch)
    if cp < 0x1100:
        return False
    return (
        0x1100 <= cp <= 0x11FF
        or 0x2E80 <= cp <= 0x9FFF
        or 0xA960 <= cp <= 0xA97F
        or 0xAC00 <= cp <= 0xD7FF
        or 0xF900 <= cp <= 0xFAFF
        or 0xFE30 <= cp <= 0xFE4F
        or 0xFF00 <= cp <= 0xFFEF
        or 0x20000 <= cp <= 0x3FFFF
    )


def can_break(before: str, after: str) -> bool:
    """Whether a line may end after ``before`` and the next start with ``after`` (both non-space here)."""
    if after in NO_START or after == " ":
        return False
    if before == " ":
        return True
    if before in NO_END:
        return False
    if before in _BREAK_AFTER:
        return after.isalnum()
    return is_cjk(before) or is_cjk(after)


def _baseline(height: int, size: int) -> int:
    return round((height - size) / 2 + 0.8 * size)


def _runs(items: list[Item], x: int) -> tuple[list[Run], str, int]:
    """Runs, drawn text and missing count of ``items`` placed from ``x`` (trailing spaces dropped)."""
    n = len(items)
    while n and items[n - 1][1] == " ":
        n -= 1
    runs: list[Run] = []
    drawn: list[str] = []
    missing = 0
    font = None
    run_x = x
    buf: list[str] = []
    for i in range(n):
        g = items[i][2]
        if g.font is not font:
            if buf:
                runs.append((run_x, font, "".join(buf)))  # type: ignore[arg-type]
            font, run_x, buf = g.font, x, []
        buf.append(g.drawn)
        drawn.append(g.drawn)
        x += g.advance
        missing += g.missing
    if buf:
        runs.append((run_x, font, "".join(buf)))  # type: ignore[arg-type]
    return runs, "".join(drawn), missing


class _Block:
    """How one block's lines look: fonts, indents, prefixes and decorations."""

    def __init__(
        self,
        *,
        font: FontChain,
        inline: FontChain | None,
        bold: FontChain | None = None,
        x_first: int,
        x_cont: int,
        right: int,
        height: int,
        prefix: tuple[int, str] | None = None,
        cont_prefix: tuple[int, str] | None = None,
        fill: int | None = None,
        bars: tuple[int, ...] = (),
        tab: int = 4,
    ) -> None:
        self.font, self.inline, self.bold = font, inline, bold
        self.x_first, self.x_cont, self.right = x_first, x_cont, right
        self.height, self.baseline = height, _baseline(height, font.size)
        self.prefix, self.cont_prefix = prefix, cont_prefix
        self.fill, self.bars, self.tab = fill, bars, tab

    def items(self, text: str, start: int, end: int) -> Iterator[Item]:
        """The characters of ``text[start:end]`` with their glyphs.

        Inline code spans (between backticks) switch to mono and ``**strong**`` spans to bold; their
        markers are not drawn. Unmatched markers are drawn as typed. Each search for a closing marker
        remembers its failure, so a long paragraph is scanned in linear time.
        """
        base = self.font.glyph
        code_glyph = self.inline.glyph if self.inline is not None else None
        bold_glyph = self.bold.glyph if self.bold is not None else None
        glyph = base
        tab = " " * self.tab
        no_tick = no_star = end  # no closing marker exists at or after these offsets
        code_end = bold_end = -1
        pos = start
        while pos < end:
            ch = text[pos]
            if code_end >= 0:
                if pos == code_end:
                    code_end = -1
                    glyph = bold_glyph if bold_end >= 0 and bold_glyph is not None else base
                    pos += 1
                    continue
            elif ch == "`" and code_glyph is not None and pos < no_tick:
                close = text.find("`", pos + 1, end)
                if close < 0:
                    no_tick = pos
                else:
                    code_end, glyph = close, code_glyph
                    pos += 1
                    continue
            elif ch == "*" and bold_glyph is not None and text.startswith("*", pos + 1):
                if pos == bold_end:
                    bold_end, glyph = -1, base
                    pos += 2
                    continue
                if bold_end < 0 and pos < no_star and pos + 2 < end and text[pos + 2] not in " *":
                    close = text.find("**", pos + 3, end)
                    if close < 0:
                        no_star = pos
                    elif text[close - 1] != " ":
                        bold_end, glyph = close, bold_glyph
                        pos += 2
                        continue
            if ch == "\t":
                g = glyph(" ")
                for sp in tab:
                    yield pos, sp, g
            else:
                yield pos, ch, glyph(ch)
            pos += 1

    def lines(self, text: str, start: int, end: int) -> Iterator[Line]:
        """Greedy-wrap ``text[start:end]`` into lines."""
        first = True
        avail = self.right - self.x_first
        used = 0
        cur: list[Item] = []
        brk = 0
        line_start = start
        for item in self.items(text, start, end):
            pos, ch, g = item
            if ch == " ":
                if not cur and not first:
                    line_start = pos + 1
                    continue
                if used <= avail:
                    cur.append(item)
                    used += g.advance
                continue
            if cur:
                if can_break(cur[-1][1], ch):
                    brk = len(cur)
                if used + g.advance > avail:
                    k = brk if brk > 0 else _forced_break(cur, ch)
                    rest = cur[k:]
                    while rest and rest[0][1] == " ":
                        del rest[0]
                    next_start = rest[0][0] if rest else pos
                    yield self._line(cur[:k], first, line_start, next_start)
                    first, line_start, cur, brk = False, next_start, rest, 0
                    avail = self.right - self.x_cont
                    used = sum(it[2].advance for it in rest)
            cur.append(item)
            used += g.advance
        yield self._line(cur, first, line_start, end)

    def _line(self, items: list[Item], first: bool, src_start: int, src_end: int) -> Line:
        prefix = self.prefix if first else self.cont_prefix
        runs: list[Run] = []
        text = ""
        missing = 0
        if prefix is not None:
            px, text = prefix
            runs, _, missing = _runs([(src_start, ch, self.font.glyph(ch)) for ch in text], px)
        body_runs, body_text, body_missing = _runs(items, self.x_first if first else self.x_cont)
        text = text + body_text if body_text else text.rstrip(" ")
        return Line(
            height=self.height,
            baseline=self.baseline,
            runs=tuple(runs + body_runs),
            text=text,
            src_start=src_start,
            src_end=src_end,
            missing=missing + body_missing,
            fill=self.fill,
            bars=self.bars,
        )


def _forced_break(cur: list[Item], nxt: str) -> int:
    """Where to cut a line that has no break opportunity: at the width, moved back to honour kinsoku."""
    k = len(cur)
    while k > 0:
        after = nxt if k == len(cur) else cur[k][1]
        if after not in NO_START and cur[k - 1][1] not in NO_END:
            return k
        k -= 1
    return len(cur)


def label_text(turn: Turn) -> str:
    """The role label drawn at the top of a turn: ``User``, ``Assistant``, ``Tool: name`` ..."""
    label = ROLE_LABELS.get(turn.role, turn.role.title())
    if turn.name:
        name = " ".join(turn.name.split())
        label = f"{label}: {name[:80]}{'…' if len(name) > 80 else ''}"
    return label


def label_line(turn: Turn, style: RenderStyle, *, continued: bool = False, src: int = 0) -> Line:
    """The bold role label line of a turn (``(cont.)`` appended on the pages it continues onto)."""
    fonts = fonts_for(style)
    text = label_text(turn) + (CONTINUED if continued else "")
    block = _Block(
        font=fonts.bold,
        inline=None,
        x_first=style.margin,
        x_cont=style.margin,
        right=style.size - style.margin,
        height=style.line_height,
    )
    line = next(block.lines(text, 0, len(text)))
    return Line(line.height, line.baseline, line.runs, line.text, src, src, line.missing)


def layout_turn(turn: Turn, style: RenderStyle) -> Iterator[Line]:
    """The lines of a turn: its label line, then its content's lines, made lazily."""
    yield label_line(turn, style)
    text = turn.content
    for block in blocks(text):
        yield from _block_lines(text, block, style)


def _block_lines(text: str, block: Block, style: RenderStyle) -> Iterator[Line]:
    fonts = fonts_for(style)
    left, right = style.margin, style.size - style.margin
    kind = block.kind
    if kind == "blank":
        yield Line(style.paragraph_gap, 0, (), "", block.start, block.end, gap=True)
        return
    if kind == "rule":
        yield Line(style.line_height // 2, 0, (), None, block.start, block.end, rule=True)
        return
    if kind == "code":
        pad = style.code_size // 3
        mark = fonts.code.length(CONTINUATION)
        shaper = _Block(
            font=fonts.code,
            inline=None,
            x_first=left + pad,
            x_cont=left + pad + mark,
            right=right - pad,
            height=style.code_line_height,
            cont_prefix=(left + pad, CONTINUATION),
            fill=style.code_paper,
            tab=style.tab_width,
        )
    elif kind == "heading":
        font = fonts.headings[min(block.level, 3) - 1]
        shaper = _Block(
            font=font,
            inline=fonts.inline_code,
            x_first=left,
            x_cont=left,
            right=right,
            height=round(font.size * 1.3),
            tab=style.tab_width,
        )
    else:
        x = left + _indent(block.level, style)
        bars: tuple[int, ...] = ()
        prefix = None
        x_first = x
        if kind == "quote":
            bars = tuple(left + i * style.indent + 2 for i in range(block.level))
        elif kind == "item":
            marker = block.marker
            hang = max(style.indent, fonts.body.length(marker + "  "))
            prefix = (x, marker + " ")
            x_first = x = x + hang
        shaper = _Block(
            font=fonts.body,
            inline=fonts.inline_code,
            bold=fonts.body_bold,
            x_first=x_first,
            x_cont=x,
            right=right,
            height=style.line_height,
            prefix=prefix,
            bars=bars,
            tab=style.tab_width,
        )
    yield from shaper.lines(text, block.start, block.end)


def _indent(level: int, style: RenderStyle) -> int:
    """Indent of a nesting level, capped so at least half the column stays for text."""
    return min(level * style.indent, style.width // 2)
