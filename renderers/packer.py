"""Pack laid-out turns onto square pages, one turn at a time: :class:`PagePacker`.

A memory hands turns over as they leave its recent window. Each turn is laid out on its own
(:func:`~optical_memory.renderers.layout.layout_turn`) and its lines are stacked onto the open page; when a
line no longer fits, the page is sealed and drawn, and a fresh page continues the turn under a
``Role (cont.)`` label. Earlier turns are never laid out again, so the cost of adding a turn does not grow
with the history. Because a turn's lines do not depend on where it lands, the open page is fully described
by the ids of the turns on it and the index of the line it starts at (:meth:`PagePacker.state`), and can be
rebuilt from those turns' texts (:meth:`PagePacker.restore`).

Layout rules: a role label is kept with the first line of its turn; two turns on a page are separated by a
gap with a thin rule; a page never starts with a blank spacer.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import chain as chained
from itertools import islice
from typing import Any

from optical_memory.errors import InputError
from optical_memory.renderers.draw import draw_lines
from optical_memory.renderers.layout import Line, label_line, layout_turn
from optical_memory.renderers.style import RenderStyle
from optical_memory.tokens import DEFAULT_ENCODING, count_tokens
from optical_memory.types import RenderedPage, Turn, TurnSpan, as_turn

STATE_VERSION = 1


class PagePacker:
    """Incrementally pack turns onto pages.

    Args:
        style: Page layout (defaults to :class:`RenderStyle`'s 1280 px page).
        encoding: tiktoken encoding for ``RenderedPage.text_tokens``.
    """

    def __init__(self, style: RenderStyle | None = None, *, encoding: str = DEFAULT_ENCODING) -> None:
        self.style = style or RenderStyle()
        self.encoding = encoding
        self._top = self.style.margin
        self._bottom = self.style.size - self.style.margin
        self._separator = Line(self.style.turn_gap, 0, (), None, 0, 0, rule=True)
        self._reset()

    def _reset(self) -> None:
        self._placed: list[tuple[int, Line]] = []
        self._pieces: list[list[int]] = []  # [turn_id, start, end] per turn piece on the open page
        self._y = self._top
        self._first_line = 0

    # -- public API ---------------------------------------------------------------------------------

    def add(self, turn: Turn | Mapping[str, Any], turn_id: int) -> list[RenderedPage]:
        """Lay out one turn, append it to the open page, and return the pages this sealed.

        Raises:
            InputError: If the turn is not a valid turn, or ``turn_id`` is already on the open page.
        """
        return list(self.iter_add(turn, turn_id))

    def iter_add(self, turn: Turn | Mapping[str, Any], turn_id: int) -> Iterator[RenderedPage]:
        """Like :meth:`add`, but yields sealed pages as they fill (bounded memory for huge turns).

        Raises:
            InputError: If the turn is not a valid turn, or ``turn_id`` is already on the open page.
        """
        turn = as_turn(turn)  # also accepts an OpenAI-style dict
        if not isinstance(turn_id, int) or isinstance(turn_id, bool):
            raise InputError(f"turn_id must be an int; got {type(turn_id).__name__}")
        if any(piece[0] == turn_id for piece in self._pieces):
            raise InputError(f"turn {turn_id} is already on the open page; turn ids must be unique")
        lines = layout_turn(turn, self.style)
        label = next(lines)
        first = next(lines, None)
        if self._placed:
            need = self._separator.height + label.height + (first.height if first else 0)
            if self._fits(need):
                self._place(self._separator)
            else:
                yield self._seal()
        if not self._placed:
            self._first_line = 0
        self._pieces.append([turn_id, 0, 0])
        self._place(label)
        rest = lines if first is None else chained((first,), lines)
        yield from self._flow(turn, turn_id, rest, 1)

    def pending(self) -> RenderedPage | None:
        """A render of the open page (None while it is empty); the page stays open."""
        return self._render() if self._placed else None

    def pending_turn_ids(self) -> list[int]:
        """Ids of the turns with lines on the open page, in order."""
        return [piece[0] for piece in self._pieces]

    def seal(self) -> RenderedPage | None:
        """Seal and return the open page (None when it is empty)."""
        return self._seal() if self._placed else None

    def state(self) -> dict[str, Any]:
        """A small JSON-serialisable description of the open page, for :meth:`restore`."""
        return {
            "version": STATE_VERSION,
            "style": self.style.digest(),
            "turn_ids": self.pending_turn_ids(),
            "first_line": self._first_line,
        }

    @classmethod
    def restore(
        cls,
        state: Mapping[str, Any],
        turns: Mapping[int, Turn],
        style: RenderStyle | None = None,
        *,
        encoding: str = DEFAULT_ENCODING,
    ) -> PagePacker:
        """Rebuild a packer whose open page is exactly the one ``state`` describes.

        Args:
            state: What :meth:`state` returned.
            turns: The full turns by id; must hold every id in ``state["turn_ids"]``.
            style: The style the state was made with.
            encoding: tiktoken encoding for page token counts.

        Raises:
            InputError: If the state is malformed, was made with another style, names a missing turn,
                or does not fit the turns given.
        """
        packer = cls(style, encoding=encoding)
        try:
            version, digest = state["version"], state["style"]
            ids = [int(i) for i in state["turn_ids"]]
            first_line = int(state["first_line"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed page packer state: {exc!r}") from exc
        if version != STATE_VERSION:
            raise InputError(f"page packer state version {version!r} is not {STATE_VERSION}")
        if digest != packer.style.digest():
            raise InputError("page packer state was made with a different RenderStyle; pass the same style")
        missing = [i for i in ids if i not in turns]
        if missing:
            raise InputError(f"cannot restore the open page: turns {missing} were not given")
        for k, turn_id in enumerate(ids):
            turn = as_turn(turns[turn_id])
            if k == 0 and first_line > 0:
                lines = layout_turn(turn, packer.style)
                line = next(islice(lines, first_line, None), None)
                if line is None:
                    raise InputError(f"turn {turn_id} has fewer than {first_line + 1} lines: state mismatch")
                packer._continue_page(turn, turn_id, first_line, line)
                sealed = list(packer._flow(turn, turn_id, lines, first_line + 1))
            else:
                sealed = list(packer.iter_add(turn, turn_id))
            if sealed:
                raise InputError("the turns given overflow the open page the state describes: state mismatch")
        return packer

    # -- internals ----------------------------------------------------------------------------------

    def _fits(self, height: int) -> bool:
        return self._y + height <= self._bottom

    def _place(self, line: Line) -> None:
        self._placed.append((self._y, line))
        self._y += line.height

    def _flow(self, turn: Turn, turn_id: int, lines: Iterator[Line], index: int) -> Iterator[RenderedPage]:
        """Place the lines of a turn from line ``index`` on, sealing pages as they fill."""
        piece = self._pieces[-1]
        for line in lines:
            if self._fits(line.height):
                self._place(line)
                piece[2] = line.src_end
            else:
                piece[2] = line.src_start
                yield self._seal()
                self._continue_page(turn, turn_id, index, line)
                piece = self._pieces[-1]
            index += 1
        piece[2] = len(turn.content)

    def _continue_page(self, turn: Turn, turn_id: int, index: int, line: Line) -> None:
        """Start an empty page with line ``index`` of a turn, under a ``(cont.)`` label."""
        self._first_line = index
        self._pieces.append([turn_id, line.src_start, line.src_start])
        self._place(label_line(turn, self.style, continued=True, src=line.src_start))
        if not line.gap:
            self._place(line)
            self._pieces[-1][2] = line.src_end

    def _render(self) -> RenderedPage:
        text = "\n".join(line.text for _, line in self._placed if line.text is not None)
        return RenderedPage(
            image=draw_lines(self._placed, self.style),
            spans=tuple(TurnSpan(*piece) for piece in self._pieces),
            text=text,
            text_tokens=count_tokens(text, self.encoding),
            missing_glyphs=sum(line.missing for _, line in self._placed),
        )

    def _seal(self) -> RenderedPage:
        page = self._render()
        self._reset()
        return page
