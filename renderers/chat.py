"""Chat transcripts as page images: the :class:`Renderer` contract and :class:`ChatRenderer`.

A renderer turns a sequence of chat turns into square grayscale pages at the top rung of the ladder
(DeepSeek-OCR's Large mode, 1280 px; lower rungs are made by downsampling, as the DeepSeek-OCR paper,
arXiv:2510.18234, sketches for optical forgetting). :class:`ChatRenderer` packs the turns in order with a
:class:`~optical_memory.renderers.packer.PagePacker`; each page's spans index the sequence it was given.

What ``RenderedPage.text`` holds (exactly the characters drawn, one drawn line per line, in reading order):

* each turn's role label line (``User``, ``Assistant``, ``Tool: name``; ``Assistant (cont.)`` at the top of a
  page a turn continues onto);
* drawn list markers (``• ``, ``1. ``) and the ``↪ `` mark that starts a wrapped code line's continuation;
* no Markdown syntax that is not drawn: ``#`` of headings, ``>`` of quotes, code fences, and the backticks
  and ``**`` around inline code and strong text;
* tabs as four spaces; C0 controls as their Control Pictures (␀ ... ␟, ␡); U+FFFD where a character is
  missing (C1 controls, lone surrogates, characters no bundled font covers; counted in ``missing_glyphs``);
* an empty line for each run of blank source lines; nothing for rules and the gaps between turns;
  no trailing spaces (a wrapped line's break replaces the space it broke at).

``TurnSpan(turn, start, end)`` ranges tile each turn: a turn's first span starts at 0, its last ends at
``len(content)``, and a turn split across pages continues exactly where its previous span ended.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from optical_memory.renderers.packer import PagePacker
from optical_memory.renderers.style import RenderStyle
from optical_memory.tokens import DEFAULT_ENCODING
from optical_memory.types import RenderedPage, Turn


@runtime_checkable
class Renderer(Protocol):
    """Anything that turns chat turns into pages."""

    def render(self, turns: Sequence[Turn]) -> list[RenderedPage]:
        """Render ``turns`` into pages; ``TurnSpan.turn`` is the index into ``turns``."""
        ...


class ChatRenderer:
    """Render a chat transcript: role labels, Markdown prose, lists, quotes and code blocks.

    Args:
        style: Page layout (defaults to :class:`RenderStyle`'s 1280 px page).
        encoding: tiktoken encoding for ``RenderedPage.text_tokens``.
    """

    def __init__(self, style: RenderStyle | None = None, *, encoding: str = DEFAULT_ENCODING) -> None:
        self.style = style or RenderStyle()
        self.encoding = encoding

    def __repr__(self) -> str:
        return f"ChatRenderer({self.style.width}x{self.style.height})"

    def render(self, turns: Sequence[Turn | Mapping[str, Any]]) -> list[RenderedPage]:
        """All pages of ``turns``, in order.

        Raises:
            InputError: If a turn is not a valid turn (see :func:`optical_memory.types.as_turn`).
        """
        return list(self.iter_pages(turns))

    def iter_pages(self, turns: Sequence[Turn | Mapping[str, Any]]) -> Iterator[RenderedPage]:
        """Yield pages as they fill, so huge inputs render in bounded memory.

        Raises:
            InputError: If a turn is not a valid turn.
        """
        packer = PagePacker(self.style, encoding=self.encoding)
        for index, turn in enumerate(turns):
            yield from packer.iter_add(turn, index)
        last = packer.seal()
        if last is not None:
            yield last


def render_turns(turns: Sequence[Turn | Mapping[str, Any]], *, size: int = 1280) -> list[RenderedPage]:
    """Render turns onto ``size`` px pages with the default style scaled to that size.

    Raises:
        ConfigError: If ``size`` is out of range.
        InputError: If a turn is not a valid turn.
    """
    return ChatRenderer(RenderStyle.for_size(size)).render(turns)
