"""Lay a chat turn out into drawn lines, independently of where they land on a page: :func:`layout_turn`.

A turn becomes a lazy sequence of :class:`Line` objects (its first line carries the bold role label, then
one or more lines per Markdown block, then one per tool call); pages only stack lines, so a page break
inside a turn is just a line index. Lines are made as they are consumed, and wrapping keeps only the
current line's characters, so a 10 MB paragraph is laid out in bounded memory.

Wrapping is greedy. Latin text breaks after spaces, hyphens and dashes; CJK text breaks between any two
characters, except that no line starts with closing punctuation (，。、）」』！？ ...) and none ends with
opening punctuation (（「『 ...), following the line-start and line-end rules of JIS X 4051 (kinsoku shori)
and the Chinese layout requirements (W3C clreq). A token wider than the line (a URL, a hash, 10 MB without
a space) breaks at the line width. Wrapped code lines continue after a visible ``↪`` mark, which is part
of the page text (``"↪ "`` followed by the continued code).

Pages are kept dense:

- the role label (``User:``, ``Assistant:``, ``← bash:`` for a tool result) opens the turn's first line
  when the turn starts with prose or is a tool result, and stands on a line of its own otherwise;
- what carries no information is not drawn: trailing spaces, runs of spaces inside prose (one is drawn)
  and inside code (at most two; leading indentation is kept), tabs in prose (one space); runs of blank
  code lines, hex dumps and over-long lines are folded by :func:`~.markdown.blocks`, and a run of base64
  or hex of at least :data:`BLOB_MIN` characters, or a data URL, becomes one marker such as
  ``⟨base64 · 12,480 chars⟩``;
- with a flowed style (``RenderStyle.flow``, the render profiles' default) the lines of a paragraph, a
  list, a quote or a code block run on: where a source line ends, ``↵`` is drawn and the next line
  continues on the same drawn line (``¶`` where blank lines were), so short lines and gaps leave no blank
  space; code keeps its indentation after the mark;
- an assistant turn's tool calls follow its text, one compact line each (``→ name({"minified":"json"})``),
  and tool results are drawn in monospace under their call's name; :func:`join_line` lets a one-line
  result join the line of the call it answers (``→ f({}) ⇒ 42``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache

from PIL import Image, ImageFont

from optical_memory.renderers.fontchain import MONO, SANS, SANS_BOLD, FontChain, Glyph, chain
from optical_memory.renderers.markdown import Block, blocks
from optical_memory.renderers.style import RenderStyle
from optical_memory.types import ToolCall, Turn, TurnImage

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
CALL_MARK = "→ "
"""Opens the line of a tool call: ``→ name({"arg":1})``."""
RESULT_MARK = "← "
"""Opens the label of a tool result: ``← name:``."""
RESULT_JOIN = " ⇒ "
"""Joins a one-line tool result onto the line of the call it answers."""
BLOB_MIN = 200
"""A run of base64 or hex characters at least this long (or a data URL) is drawn as one marker."""
RUN_MIN = 8
"""A run of one punctuation character at least this long (``=====`` rules in logs) is drawn as ``===×35``."""
LINE_MARK = "↵"
"""In flowed layout, drawn where a source line ends and the next one continues on the same drawn line."""
PARAGRAPH_MARK = "¶"
"""In flowed layout, drawn where blank lines separated two paragraphs (or two parts of a code block)."""

NO_START = frozenset(
    ",.:;!?)]}%'\"、。，．：；！？）］｝」』】〕〉》〙〗〟’”»›‐゠–〜～‼⁇⁈⁉・…‥％ー々〻ヽヾゝゞ"
    "ァィゥェォッャュョヮヵヶぁぃぅぇぉっゃゅょゎゕゖㇰㇱㇲㇳㇴㇵㇶㇷㇸㇹㇺㇻㇼㇽㇾㇿ"
)
"""Characters a wrapped line may not start with (closing punctuation, small kana, iteration marks)."""
NO_END = frozenset("([{（［｛「『【〔〈《〘〖〝‘“｟«‹")
"""Characters a wrapped line may not end with (opening punctuation)."""
_BREAK_AFTER = frozenset("-‐–—/")
_BLOB = re.compile(rf"(data:[\w/+.-]+;base64,)?[A-Za-z0-9+/_-]{{{BLOB_MIN},}}=*")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_BLOB_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-d")
_NBSP = "\u00a0"
_MARKS = frozenset(LINE_MARK + PARAGRAPH_MARK)
_RULE_CHARS = frozenset("=-_*#~.+<>|/\\─━═")

Item = tuple[int, str, Glyph]  # (source index, source character, how it is drawn)
Segment = tuple[str, int, int]  # (lead drawn first, source start, source end)
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
        end: x just after the last glyph drawn (0 for spacers).
        label_only: The line holds the role label and nothing else (it is kept with the next line).
        call_id: The tool call this line draws, if it draws one.
        start: x of the first glyph drawn (0 for spacers).
        picture: A thumbnail of an image the turn carries, drawn at the left margin (the line is as tall
            as the thumbnail and adds no text).
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
    end: int = 0
    label_only: bool = False
    call_id: str | None = None
    start: int = 0
    picture: Image.Image | None = field(default=None, compare=False, repr=False)


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
    if after in NO_START or after == " " or after in _MARKS:
        return False
    if before in _MARKS:
        return True
    if before == " ":
        return True
    if before in NO_END:
        return False
    if before in _BREAK_AFTER:
        return after.isalnum()
    return is_cjk(before) or is_cjk(after)


def is_blob(run: str) -> bool:
    """Whether a long run of base64-alphabet characters is a blob (hex, base64, a data URL), not a path.

    Paths and URLs use the same alphabet but separate short words with ``/``, ``-`` or ``_``; base64 has
    about one of those in 64 characters.
    """
    if run.startswith("data:") or _HEX.fullmatch(run):
        return True
    separators = run.count("/") + run.count("-") + run.count("_")
    return separators * 16 <= len(run) and any(c.isdigit() for c in run) and run.lower() != run != run.upper()


def blob_marker(run: str) -> str:
    """The marker drawn for a folded blob: what it was and how long (no break opportunity inside)."""
    if run.startswith("data:"):
        kind = run[5 : run.index(";")] + " data URL"
    elif _HEX.fullmatch(run):
        kind = "hex"
    else:
        kind = "base64"
    return f"⟨{kind} · {len(run):,} chars⟩".replace(" ", _NBSP)


def _baseline(height: int, size: int) -> int:
    return round((height - size) / 2 + 0.8 * size)


def _runs(items: list[Item], x: int) -> tuple[list[Run], str, int, int]:
    """Runs, drawn text, missing count and end x of ``items`` placed from ``x`` (trailing spaces dropped)."""
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
    return runs, "".join(drawn), missing, x


@dataclass(frozen=True, slots=True)
class _Prefix:
    """Text drawn before a block's first line (a label or a list marker), or before its continuations."""

    x: int
    text: str
    font: FontChain


class _Block:
    """How one block's lines look: fonts, indents, prefixes and decorations.

    ``code`` blocks keep leading indentation, turn tabs into ``tab`` spaces and draw at most two spaces of
    any other run; prose turns tabs and space runs into one space and reads inline code and strong text.
    """

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
        prefix: _Prefix | None = None,
        cont_prefix: _Prefix | None = None,
        fill: int | None = None,
        bars: tuple[int, ...] = (),
        tab: int = 4,
        code: bool = False,
        call_id: str | None = None,
    ) -> None:
        self.font, self.inline, self.bold = font, inline, bold
        self.x_first, self.x_cont, self.right = x_first, x_cont, right
        self.height, self.baseline = height, _baseline(height, font.size)
        self.prefix, self.cont_prefix = prefix, cont_prefix
        self.fill, self.bars, self.tab, self.code = fill, bars, tab, code
        self.call_id = call_id

    def items(self, text: str, segments: Sequence[Segment]) -> Iterator[Item]:
        """The characters of each segment (its lead, then ``text[start:end]``) with their glyphs, as drawn.

        Inline code spans (between backticks) switch to mono and ``**strong**`` spans to bold; their
        markers are not drawn. Unmatched markers are drawn as typed. Each search for a closing marker
        remembers its failure, so a long paragraph is scanned in linear time. Blobs become one marker.
        """
        for lead, start, end in segments:
            for c in lead:
                yield start, c, self.font.glyph(c)
            yield from self._source_items(text, start, end)

    def _source_items(self, text: str, start: int, end: int) -> Iterator[Item]:
        base = self.font.glyph
        code_glyph = self.inline.glyph if self.inline is not None else None
        bold_glyph = self.bold.glyph if self.bold is not None else None
        glyph = base
        no_tick = no_star = end  # no closing marker exists at or after these offsets
        code_end = bold_end = -1
        spaces = 0  # spaces drawn in the current run
        indent = self.code  # still in a code line's leading indentation
        pos = start
        while pos < end:
            ch = text[pos]
            if ch in " \t":
                if indent:
                    for _ in range(self.tab if ch == "\t" else 1):
                        yield pos, " ", glyph(" ")
                elif spaces < (2 if self.code else 1):
                    spaces += 1
                    yield pos, " ", glyph(" ")
                pos += 1
                continue
            indent, spaces = False, 0
            if ch in _BLOB_START and (pos == start or text[pos - 1] not in _BLOB_START):
                m = _BLOB.match(text, pos, end)
                if m is not None and is_blob(m.group()):
                    for c in blob_marker(m.group()):
                        yield pos, c, glyph(c)
                    pos = m.end()
                    continue
            if ch in _RULE_CHARS and text.startswith(ch * RUN_MIN, pos):
                run = pos + RUN_MIN
                while run < end and text[run] == ch:
                    run += 1
                for c in f"{ch * 3}×{run - pos}":
                    yield pos, c, glyph(c)
                pos = run
                continue
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
            yield pos, ch, glyph(ch)
            pos += 1

    def lines(self, text: str, start: int, end: int) -> Iterator[Line]:
        """Greedy-wrap ``text[start:end]`` into lines."""
        return self.flow_lines(text, [("", start, end)])

    def flow_lines(self, text: str, segments: Sequence[Segment]) -> Iterator[Line]:
        """Greedy-wrap segments drawn one after another (each lead, then its source range) into lines."""
        first = True
        avail = self.right - self.x_first
        used = 0
        cur: list[Item] = []
        brk = 0
        line_start = segments[0][1]
        end = segments[-1][2]
        for item in self.items(text, segments):
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
        end = 0
        if prefix is not None:
            glyphs = [(src_start, c, prefix.font.glyph(c)) for c in prefix.text]
            runs, text, missing, end = _runs(glyphs, prefix.x)
            text = prefix.text  # the prefix's trailing space belongs to it
        body_runs, body_text, body_missing, body_end = _runs(items, self.x_first if first else self.x_cont)
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
            end=body_end if body_text else end,
            call_id=self.call_id,
            start=runs[0][0] if runs else (body_runs[0][0] if body_runs else 0),
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
    """The role label that opens a turn: ``User:``, ``Assistant (Ann):``, ``← bash:`` for a tool result."""
    name = " ".join(turn.name.split()) if turn.name else ""
    if len(name) > 80:
        name = name[:80] + "…"
    if turn.role == "tool":
        return f"{RESULT_MARK}{name or ROLE_LABELS['tool']}:"
    role = ROLE_LABELS.get(turn.role, turn.role.title())
    return f"{role} ({name}):" if name else f"{role}:"


def label_line(turn: Turn, style: RenderStyle, *, continued: bool = False, src: int = 0) -> Line:
    """The bold role label on a line of its own (``(cont.)`` on the pages a turn continues onto)."""
    fonts = fonts_for(style)
    label = label_text(turn)
    text = label[:-1] + CONTINUED + ":" if continued else label
    block = _Block(
        font=fonts.bold,
        inline=None,
        x_first=style.margin,
        x_cont=style.margin,
        right=style.width - style.margin,
        height=style.line_height,
    )
    line = next(block.lines(text, 0, len(text)))
    return replace(line, src_start=src, src_end=src, label_only=True)


def layout_turn(turn: Turn, style: RenderStyle, *, x_start: int | None = None) -> Iterator[Line]:
    """The lines of a turn, made lazily: the labelled first line, the content, then the tool calls.

    The first line yielded always carries the label: either the label alone (``label_only``) or the
    label followed by the start of the content or of the first tool call.

    Args:
        turn: The turn.
        style: The page style.
        x_start: Where the first line starts, for a turn that runs on after the previous turn's last
            line (flowed layout). It applies only when the turn opens with a prose paragraph that carries
            its label inline; the first line's :attr:`Line.start` tells whether it did.
    """
    fonts = fonts_for(style)
    text = turn.content
    verbatim = turn.role == "tool"
    parts = blocks(text, verbatim=verbatim)
    runs = _flow_runs(parts) if style.flow else ([b] for b in parts)
    first = next(runs, None)
    calls = iter(turn.tool_calls)
    head = None if first is None else first[0]
    inline_prose = head is not None and head.kind == "para" and head.level == 0 and not verbatim
    x = x_start if x_start is not None and inline_prose else style.margin
    label = _Prefix(x, label_text(turn) + " ", fonts.bold)
    if head is not None and (head.kind == "para" or (verbatim and head.kind in ("code", "fold"))):
        yield from _run_lines(text, first, style, label=label, verbatim=verbatim)  # type: ignore[arg-type]
    elif first is None and turn.tool_calls:
        yield from _call_lines(next(calls), len(text), style, label=label)
    else:
        yield label_line(turn, style)
        if first is not None:
            yield from _run_lines(text, first, style, verbatim=verbatim)
    for run in runs:
        yield from _run_lines(text, run, style, verbatim=verbatim)
    for call in calls:
        yield from _call_lines(call, len(text), style)
    for image in turn.images:
        yield picture_line(image, len(text), style)


THUMBNAIL_LINES = 8
"""A pasted image's thumbnail is at most this many prose lines tall (and half the text column wide)."""


def picture_line(image: TurnImage, src: int, style: RenderStyle) -> Line:
    """A line holding the grayscale thumbnail of a pasted image (its label is in the turn's text)."""
    picture = image.open().convert("L")
    picture.thumbnail(((style.width - 2 * style.margin) // 2, THUMBNAIL_LINES * style.line_height))
    pad = style.line_height // 4
    return Line(picture.height + 2 * pad, pad, (), None, src, src, picture=picture)


def _family(block: Block) -> tuple[str, int] | None:
    """Blocks of one family run on in flowed layout (None: the block stands alone)."""
    if block.kind in ("para", "item"):
        return ("prose", block.level - (block.kind == "para" and block.level > 0))
    if block.kind == "quote":
        return ("quote", block.level)
    if block.kind in ("code", "fold"):
        return ("code", 0)
    return None


def _flow_runs(parts: Iterator[Block]) -> Iterator[list[Block]]:
    """Group blocks into runs drawn on shared lines; blank lines inside a run stay in it as joiners."""
    run: list[Block] = []
    blank: Block | None = None
    for block in parts:
        if block.kind in ("blank", "gap"):
            blank = block if run else None
            continue
        family = _family(block)
        if run and family is not None and family == _family(run[-1]):
            run += [blank, block] if blank is not None else [block]
        else:
            if run:
                yield run
            run = [block]
        blank = None
        if family is None:
            yield run
            run = []
    if run:
        yield run


def _run_lines(
    text: str, run: list[Block], style: RenderStyle, *, label: _Prefix | None = None, verbatim: bool = False
) -> Iterator[Line]:
    """The lines of one block, or of a flowed run of blocks joined by ``↵`` and ``¶``."""
    if len(run) == 1:
        yield from _block_lines(text, run[0], style, label=label, verbatim=verbatim)
        return
    segments: list[Segment] = []
    joiner = ""
    for block in run:
        if block.kind in ("blank", "gap"):
            joiner = PARAGRAPH_MARK
            continue
        lead = (joiner or LINE_MARK) if segments else ""
        joiner = ""
        if block.kind == "item":
            lead += block.marker + " "
        if block.kind == "fold":
            segments.append((lead + block.marker, block.start, block.start))
        else:
            segments.append((lead, block.start, block.end))
    head = run[0]
    if head.kind in ("code", "fold"):
        shaper = _code_shaper(style, label=label, fill=None if verbatim else style.code_paper)
    else:
        shaper = _prose_shaper(head, style, label=label, flowed=True)
    yield from shaper.flow_lines(text, segments)


def drawn_call(call: ToolCall) -> str:
    """How a tool call is written on a page: ``name({"minified":"arguments"})``."""
    return f"{call.name}({call.minified()})"


def _call_lines(
    call: ToolCall, src: int, style: RenderStyle, *, label: _Prefix | None = None
) -> Iterator[Line]:
    text = CALL_MARK + drawn_call(call)
    shaper = _code_shaper(style, label=label, fill=None, call_id=call.id)
    for line in shaper.lines(text, 0, len(text)):
        yield replace(line, src_start=src, src_end=src)


def join_line(call_line: Line, result: Turn, style: RenderStyle) -> Line | None:
    """The call's line with a one-line tool result appended (``→ f({}) ⇒ 42``), or None when it is too long.

    The result must fit, whole and on one line, on the rest of the call's line.
    """
    text = result.content
    start, end = len(text) - len(text.lstrip()), len(text.rstrip())
    if start >= end or "\n" in text[start:end]:
        return None
    fonts = fonts_for(style)
    x = call_line.end + fonts.code.glyph(" ").advance
    tail = _Prefix(x, RESULT_JOIN.lstrip(" "), fonts.code)
    shaper = _Block(
        font=fonts.code,
        inline=None,
        x_first=x + fonts.code.length(tail.text),
        x_cont=style.margin,
        right=style.width - style.margin,
        height=style.code_line_height,
        prefix=tail,
        tab=style.tab_width,
        code=True,
    )
    lines = shaper.lines(text, start, end)
    joined = next(lines)
    if next(lines, None) is not None:
        return None
    return merge_lines(call_line, joined)


def merge_lines(left: Line, right: Line) -> Line:
    """One drawn line holding ``left`` and then ``right`` (whose runs already start where they belong).

    The result keeps ``left``'s source range; it draws no tool call of its own.
    """
    return replace(
        left,
        height=max(left.height, right.height),
        baseline=max(left.baseline, right.baseline),
        runs=left.runs + right.runs,
        text=f"{left.text} {right.text}",
        missing=left.missing + right.missing,
        end=right.end,
        call_id=None,
    )


def run_on_x(line: Line, style: RenderStyle) -> int | None:
    """Where a turn may start on ``line`` after the text it holds (None when it may not: too little room
    is left, or the line is a label, a spacer, a code line or a tool call)."""
    if line.text is None or line.gap or line.label_only or line.call_id is not None or line.fill is not None:
        return None
    body = fonts_for(style).body
    x = line.end + 2 * body.glyph(" ").advance
    return x if x + 12 * body.glyph("n").advance <= style.width - style.margin else None


def _code_shaper(
    style: RenderStyle, *, label: _Prefix | None, fill: int | None, call_id: str | None = None
) -> _Block:
    """Monospace lines across the column (code blocks, tool calls and tool results), wrapped with ``↪``."""
    fonts = fonts_for(style)
    left, right = style.margin, style.width - style.margin
    pad = style.code_size // 3 if fill is not None else 0
    mark = fonts.code.length(CONTINUATION)
    x_first = left + pad + (label.font.length(label.text) if label is not None else 0)
    return _Block(
        font=fonts.code,
        inline=None,
        x_first=x_first,
        x_cont=left + pad + mark,
        right=right - pad,
        height=style.code_line_height,
        prefix=label,
        cont_prefix=_Prefix(left + pad, CONTINUATION, fonts.code),
        fill=fill,
        tab=style.tab_width,
        code=True,
        call_id=call_id,
    )


def _block_lines(
    text: str, block: Block, style: RenderStyle, *, label: _Prefix | None = None, verbatim: bool = False
) -> Iterator[Line]:
    fonts = fonts_for(style)
    left, right = style.margin, style.width - style.margin
    kind = block.kind
    if kind in ("blank", "gap"):
        yield Line(style.paragraph_gap, 0, (), "", block.start, block.end, gap=True)
        return
    if kind == "rule":
        yield Line(style.line_height // 2, 0, (), None, block.start, block.end, rule=True)
        return
    if kind == "fold":
        shaper = _code_shaper(style, label=label, fill=None if verbatim else style.code_paper)
        line = next(shaper.lines(block.marker, 0, len(block.marker)))
        yield replace(line, src_start=block.start, src_end=block.end)
        return
    if kind == "code":
        shaper = _code_shaper(style, label=label, fill=None if verbatim else style.code_paper)
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
        shaper = _prose_shaper(block, style, label=label)
    yield from shaper.lines(text, block.start, block.end)


def _prose_shaper(block: Block, style: RenderStyle, *, label: _Prefix | None, flowed: bool = False) -> _Block:
    """Prose lines of a paragraph, list item or quote: Noto Sans, indented by nesting level.

    A flowed run draws list markers inline (as segment leads), so its lines have no hanging indent.
    """
    fonts = fonts_for(style)
    left = style.margin
    x = left + _indent(block.level, style)
    bars: tuple[int, ...] = ()
    prefix = None
    x_first = x
    if block.kind == "quote":
        bars = tuple(left + i * style.indent + 2 for i in range(block.level))
    elif block.kind == "item" and not flowed:
        hang = max(style.indent, fonts.body.length(block.marker + "  "))
        prefix = _Prefix(x, block.marker + " ", fonts.body)
        x_first = x = x + hang
    elif label is not None:
        prefix = label
        x_first = label.x + label.font.length(label.text)
    return _Block(
        font=fonts.body,
        inline=fonts.inline_code,
        bold=fonts.body_bold,
        x_first=x_first,
        x_cont=x,
        right=style.width - style.margin,
        height=style.line_height,
        prefix=prefix,
        bars=bars,
        tab=style.tab_width,
    )


def _indent(level: int, style: RenderStyle) -> int:
    """Indent of a nesting level, capped so at least half the column stays for text."""
    return min(level * style.indent, style.text_width // 2)
