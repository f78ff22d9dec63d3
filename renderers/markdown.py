"""Line-level Markdown blocks of a chat turn, found lazily: :func:`blocks`.

Chat models write a small, line-oriented subset of Markdown (CommonMark, https://spec.commonmark.org):
ATX headings, bullet and numbered lists, block quotes, fenced code, thematic breaks and paragraphs. Each
source line is classified on its own, from offsets into the turn's text, so a 10 MB line costs one scan
and no copies. Unlike CommonMark, a single newline inside a paragraph is kept as a line break (the way chat
interfaces show messages): poems, logs and addresses keep their shape, and page text keeps its lines.
Consecutive blank lines collapse into one, and blank lines at the start or end of a turn are dropped.

Code (fenced blocks, and every line of a ``verbatim`` turn such as a tool result) keeps its lines and
indentation, but what carries no information is folded so pages stay dense: one or two blank lines become
a short ``gap``; a longer run of blank lines, a run of hex-dump lines, or a single line longer than
:data:`LONG_LINE` characters (minified code, a one-line JSON dump) becomes one ``fold`` line whose
``marker`` says what was folded and how long it was.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+|[ \t]*$)")
_RULE = re.compile(r" {0,3}([-*_])[ \t]*(?:\1[ \t]*){2,}$")
_QUOTE = re.compile(r" {0,3}((?:>[ \t]?)+)")
_ITEM = re.compile(r"([ \t]*)([-*+]|[0-9]{1,9}[.)])(?:[ \t]+|$)")
_BLANK = re.compile(r"[ \t]*$")
_LEAD = re.compile(r"[ \t]+")
_HEX_DUMP = re.compile(r"[ \t]*(?:0x)?[0-9A-Fa-f]{4,16}:?(?:[ \t]+[0-9A-Fa-f]{2,8}){4,}")

LONG_LINE = 2000
"""A code line longer than this (characters) is folded into a marker: minified code or a dumped blob."""
FOLD_BLANKS = 3
"""Blank code lines in a row from which on the run is folded into a marker (fewer leave one gap)."""
FOLD_HEX_LINES = 4
"""Hex-dump lines in a row from which on the run is folded into a marker."""

MAX_LEVEL = 8
"""Deepest list or quote nesting drawn with its own indent (deeper levels share it)."""


@dataclass(frozen=True, slots=True)
class Block:
    """One source line's role and the character range ``start:end`` of the text it draws.

    ``kind`` is one of ``para``, ``heading``, ``item``, ``quote``, ``code``, ``blank``, ``rule``, ``gap``
    (a blank code line) and ``fold`` (source lines drawn as one marker; ``start:end`` spans all of them).
    ``level`` is the heading level (1-6), or the list / quote nesting depth (0 at the margin).
    ``marker`` is the list marker to draw (``•`` for bullets, the number as written for ordered items),
    or the text a ``fold`` draws.
    """

    kind: str
    start: int
    end: int
    level: int = 0
    marker: str = ""


def _columns(text: str, start: int, end: int) -> int:
    """Width in columns of the whitespace ``text[start:end]`` (a tab counts four)."""
    return (end - start) + 3 * text.count("\t", start, end)


def _lines(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of every source line, without its newline (``\\r\\n`` counts as one)."""
    pos, n = 0, len(text)
    while pos <= n:
        nl = text.find("\n", pos)
        end = n if nl < 0 else nl
        stop = end - 1 if end > pos and text[end - 1] == "\r" else end
        yield pos, stop
        if nl < 0:
            return
        pos = nl + 1


def blocks(text: str, *, verbatim: bool = False) -> Iterator[Block]:
    """The blocks of a turn's content, one per drawn source line, in order.

    Args:
        text: The turn's content.
        verbatim: Treat every line as code (no Markdown), as for tool output.
    """
    fence: str | None = None
    code = _CodeRun()
    list_level: int | None = None  # nesting of the open list, for indented continuation lines
    blank: Block | None = None
    started = False
    for start, end in _lines(text):
        if verbatim or fence is not None:
            m = None if verbatim else _FENCE.match(text, start, end)
            closes = (
                m is not None
                and fence is not None
                and m.group(1)[0] == fence[0]
                and len(m.group(1)) >= len(fence)
            )
            if closes and _BLANK.match(text, m.end(), end):  # type: ignore[union-attr]
                yield from code.flush(text, trailing=True)
                fence = None
                continue
            if not started and _BLANK.match(text, start, end):
                continue  # a verbatim turn's leading blank lines
            started = True
            yield from code.add(text, start, end)
            continue
        if _BLANK.match(text, start, end):
            if started and blank is None:
                blank = Block("blank", start, start)
            continue
        found, fence, list_level = _classify(text, start, end, list_level)
        if blank is not None:
            yield blank
            blank = None
        started = True
        if found is not None:  # an opening fence draws nothing itself
            yield found
    yield from code.flush(text, trailing=True)


class _CodeRun:
    """Code lines with runs of blank and hex-dump lines held back until it is known how long they are."""

    def __init__(self) -> None:
        self.blanks: list[tuple[int, int]] = []
        self.hex: list[tuple[int, int]] = []

    def add(self, text: str, start: int, end: int) -> Iterator[Block]:
        if _BLANK.match(text, start, end):
            yield from self._flush_hex()
            self.blanks.append((start, end))
            return
        yield from self._flush_blanks()
        if end - start <= 200 and _HEX_DUMP.match(text, start, end):
            self.hex.append((start, end))
            return
        yield from self._flush_hex()
        if end - start > LONG_LINE:
            yield Block("fold", start, end, marker=f"⟨long line · {end - start:,} chars⟩")
        else:
            yield Block("code", start, end)

    def flush(self, text: str, *, trailing: bool) -> Iterator[Block]:
        """Emit what is held back; blank lines at the end of a code block are dropped."""
        if trailing:
            self.blanks.clear()
        yield from self._flush_blanks()
        yield from self._flush_hex()

    def _flush_blanks(self) -> Iterator[Block]:
        run, self.blanks = self.blanks, []
        if len(run) >= FOLD_BLANKS:
            yield Block("fold", run[0][0], run[-1][1], marker=f"⟨{len(run):,} blank lines⟩")
        elif run:
            yield Block("gap", run[0][0], run[-1][1])

    def _flush_hex(self) -> Iterator[Block]:
        run, self.hex = self.hex, []
        if len(run) >= FOLD_HEX_LINES:
            yield Block("fold", run[0][0], run[-1][1], marker=f"⟨hex dump · {len(run):,} lines⟩")
        else:
            yield from (Block("code", s, e) for s, e in run)


def _classify(
    text: str, start: int, end: int, list_level: int | None
) -> tuple[Block | None, str | None, int | None]:
    """Classify a non-blank line outside code; returns the block, an opened fence, the list level."""
    m = _FENCE.match(text, start, end)
    if m and not (m.group(1)[0] == "`" and "`" in text[m.end() : min(end, m.end() + 200)]):
        return None, m.group(1), None
    m = _HEADING.match(text, start, end)
    if m:
        return Block("heading", m.end(), end, level=len(m.group(1))), None, None
    if end - start <= 256 and _RULE.match(text, start, end):  # a long line is never a rule: skip backtracking
        return Block("rule", start, end), None, None
    m = _QUOTE.match(text, start, end)
    if m:
        depth = min(m.group(1).count(">"), MAX_LEVEL)
        return Block("quote", m.end(), end, level=depth), None, None
    m = _ITEM.match(text, start, end)
    if m:
        level = min(_columns(text, m.start(1), m.end(1)) // 2, MAX_LEVEL)
        raw = m.group(2)
        marker = "•" if raw in "-*+" else raw
        return Block("item", m.end(), end, level=level, marker=marker), None, level
    lead = _LEAD.match(text, start, end)
    if lead and list_level is not None:
        return Block("para", lead.end(), end, level=min(list_level + 1, MAX_LEVEL)), None, list_level
    return Block("para", start, end), None, None
