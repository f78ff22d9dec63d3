"""Line-level Markdown blocks of a chat turn, found lazily: :func:`blocks`.

Chat models write a small, line-oriented subset of Markdown (CommonMark, https://spec.commonmark.org):
ATX headings, bullet and numbered lists, block quotes, fenced code, thematic breaks and paragraphs. Each
source line is classified on its own, from offsets into the turn's text, so a 10 MB line costs one scan
and no copies. Unlike CommonMark, a single newline inside a paragraph is kept as a line break (the way chat
interfaces show messages): poems, logs and addresses keep their shape, and page text keeps its lines.
Consecutive blank lines collapse into one, and blank lines at the start or end of a turn are dropped.
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

MAX_LEVEL = 8
"""Deepest list or quote nesting drawn with its own indent (deeper levels share it)."""


@dataclass(frozen=True, slots=True)
class Block:
    """One source line's role and the character range ``start:end`` of the text it draws.

    ``kind`` is one of ``para``, ``heading``, ``item``, ``quote``, ``code``, ``blank``, ``rule``.
    ``level`` is the heading level (1-6), or the list / quote nesting depth (0 at the margin).
    ``marker`` is the list marker to draw (``•`` for bullets, the number as written for ordered items).
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


def blocks(text: str) -> Iterator[Block]:
    """The blocks of a turn's content, one per drawn source line, in order."""
    fence: str | None = None
    list_level: int | None = None  # nesting of the open list, for indented continuation lines
    blank: Block | None = None
    started = False
    for start, end in _lines(text):
        if fence is not None:
            m = _FENCE.match(text, start, end)
            closes = m is not None and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence)
            if closes and _BLANK.match(text, m.end(), end):  # type: ignore[union-attr]
                fence = None
                continue
            block = Block("code", start, end)
        elif _BLANK.match(text, start, end):
            if started and blank is None:
                blank = Block("blank", start, start)
            continue
        else:
            found, fence, list_level = _classify(text, start, end, list_level)
            if found is None:  # an opening fence draws nothing itself
                if blank is not None:
                    yield blank
                    blank = None
                started = True
                continue
            block = found
        if blank is not None:
            yield blank
            blank = None
        started = True
        yield block


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
