"""Pack laid-out turns onto square pages, one turn at a time: :class:`PagePacker`.

A memory hands turns over as they leave its recent window. Each turn is laid out on its own
(:func:`~optical_memory.renderers.layout.layout_turn`) and its lines are stacked onto the open page; when a
line no longer fits, the page is sealed and drawn, and a fresh page continues the turn under a
``Role (cont.)`` label. Earlier turns are never laid out again, so the cost of adding a turn does not grow
with the history. Because a turn's lines do not depend on where it lands, the open page is fully described
by the ids of the turns on it and the index of the line it starts at (:meth:`PagePacker.state`), and can be
rebuilt from those turns' texts (:meth:`PagePacker.restore`).

Layout rules: a role label standing on its own line is kept with the first line of its turn; two turns on
a page are separated by a small gap with a thin rule, except that a tool result follows its call with no
gap; a page never starts with a blank spacer. A tool call and its result stay together: a one-line result
joins the call's line (:func:`~optical_memory.renderers.layout.join_line`), and when a result does not
start on the page that holds its call, the call's turn moves with it to the next page (when that turn
began on this page and is not all the page holds). Both rules depend only on the turns on the open page,
so :meth:`PagePacker.restore` and a replay from an earlier state make the same pages.

:func:`page_capacity` is how many o200k tokens of plain English prose a page of a style holds: the
yardstick of page fill (``text_tokens / capacity``).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping
from functools import lru_cache
from itertools import chain as chained
from itertools import islice
from typing import Any

from optical_memory.errors import InputError
from optical_memory.renderers.draw import draw_lines
from optical_memory.renderers.layout import Line, join_line, label_line, layout_turn, merge_lines, run_on_x
from optical_memory.renderers.style import RenderStyle
from optical_memory.tokens import DEFAULT_ENCODING, count_tokens
from optical_memory.types import RenderedPage, Turn, TurnSpan, as_turn

STATE_VERSION = 2
REFERENCE_PROSE = (
    "A page of memory holds the older part of a conversation, drawn as text so that a vision model can "
    "read it back. Each line runs from margin to margin, and the words wrap where they must, the way a "
    "printed book sets its paragraphs. Nothing on such a page is code, a table or a list; it is ordinary "
    "running prose, which makes it a fair measure of how much a page can hold when it is full. "
)
"""Plain English prose that fills a page in :func:`page_capacity` (written for this purpose)."""


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
        self._bottom = self.style.height - self.style.margin
        flow = self.style.flow
        self._separator = Line(self.style.turn_gap // (2 if flow else 1), 0, (), None, 0, 0, rule=not flow)
        self._reset()

    def _reset(self) -> None:
        self._placed: list[tuple[int, Line]] = []
        self._pieces: list[list[int]] = []  # [turn_id, start, end, index of its first placed line]
        self._call: tuple[str, int] | None = (
            None  # (call id, turn id) of the open page's last line, if a call
        )
        self._y = self._top
        self._first_line = 0
        self._first_x = 0  # where the open page's first turn started, when it ran on mid-line

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
        answers = self._call is not None and turn.tool_call_id == self._call[0]
        if answers and self._join(turn, turn_id):
            return
        x = self._run_on(turn)
        if x is not None:
            lines = layout_turn(turn, self.style, x_start=x)
            head = next(lines)
            if head.start == x:
                y, last = self._placed[-1]
                if self._fits(max(head.height - last.height, 0)):
                    self._placed[-1] = (y, merge_lines(last, head))
                    self._y = y + self._placed[-1][1].height
                    self._pieces.append([turn_id, 0, head.src_end, len(self._placed) - 1])
                    yield from self._flow(turn, turn_id, lines, 1, x)
                    return
        lines = layout_turn(turn, self.style)
        head = next(lines)
        first = next(lines, None) if head.label_only else None
        need = head.height + (first.height if first else 0)
        separated = bool(self._placed) and turn.role != "tool"
        while self._placed and not self._fits(need + (self._separator.height if separated else 0)):
            moved = yield from self._seal_before(answers)
            if moved and self._join(turn, turn_id):
                return
            answers, separated = moved, False
        if separated:
            self._place(self._separator)
        if not self._placed:
            self._first_line = 0
        self._pieces.append([turn_id, 0, 0, len(self._placed)])
        self._place(head)
        rest = lines if first is None else chained((first,), lines)
        yield from self._flow(turn, turn_id, rest, 1, 0)

    def pending(self) -> RenderedPage | None:
        """A render of the open page (None while it is empty); the page stays open."""
        return self._render() if self._placed else None

    def pending_turn_ids(self) -> list[int]:
        """Ids of the turns with lines on the open page, in order."""
        return [piece[0] for piece in self._pieces]

    def pending_spans(self) -> tuple[TurnSpan, ...]:
        """The turn pieces on the open page, in order (what :meth:`pending` would report, without drawing)."""
        return tuple(TurnSpan(*piece[:3]) for piece in self._pieces)

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
            "first_x": self._first_x,
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
            first_x = int(state.get("first_x", 0))
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
                lines = layout_turn(turn, packer.style, x_start=first_x or None)
                line = next(islice(lines, first_line, None), None)
                if line is None:
                    raise InputError(f"turn {turn_id} has fewer than {first_line + 1} lines: state mismatch")
                packer._continue_page(turn, turn_id, first_line, line)
                packer._first_x = first_x
                sealed = list(packer._flow(turn, turn_id, lines, first_line + 1, first_x))
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
        self._call = None if line.call_id is None else (line.call_id, self._pieces[-1][0])

    def _run_on(self, turn: Turn) -> int | None:
        """Where a prose turn may start on the open page's last line (flowed layout), or None."""
        if not self.style.flow or not self._placed or turn.role == "tool" or turn.tool_calls:
            return None
        return run_on_x(self._placed[-1][1], self.style)

    def _join(self, turn: Turn, turn_id: int) -> bool:
        """Append a one-line tool result to its call's line; False when it does not fit there."""
        y, call_line = self._placed[-1]
        joined = join_line(call_line, turn, self.style)
        if joined is None or not self._fits(joined.height - call_line.height):
            return False
        self._placed[-1] = (y, joined)
        self._y += joined.height - call_line.height
        self._call = None
        self._pieces.append([turn_id, 0, len(turn.content), len(self._placed) - 1])
        return True

    def _seal_before(self, answers: bool) -> Generator[RenderedPage, None, bool]:
        """Seal the open page before a turn starts; the call turn of a result moves along when it may.

        Returns:
            True when the call's turn moved to the new page.
        """
        call_piece = self._pieces[-1] if answers and self._call is not None else None
        moving = (
            call_piece is not None
            and call_piece[0] == self._call[1]  # type: ignore[index]
            and call_piece[1] == 0
            and len(self._pieces) > 1
        )
        if not moving:
            yield self._seal()
            return False
        assert call_piece is not None
        index = call_piece[3]
        moved = [line for _, line in self._placed[index:]]
        del self._placed[index:]
        if self._placed and self._placed[-1][1] is self._separator:
            self._placed.pop()
        self._pieces.pop()
        self._y = self._placed[-1][0] + self._placed[-1][1].height if self._placed else self._top
        yield self._seal()
        self._pieces.append([call_piece[0], 0, call_piece[2], 0])
        for line in moved:
            self._place(line)
        return True

    def _flow(
        self, turn: Turn, turn_id: int, lines: Iterator[Line], index: int, x_start: int
    ) -> Iterator[RenderedPage]:
        """Place the lines of a turn from line ``index`` on, sealing pages as they fill.

        ``x_start`` is where the turn started when it ran on after the previous turn (0 otherwise).
        """
        piece = self._pieces[-1]
        for line in lines:
            if self._fits(line.height):
                self._place(line)
                piece[2] = line.src_end
            else:
                piece[2] = line.src_start
                yield self._seal()
                self._continue_page(turn, turn_id, index, line)
                self._first_x = x_start
                piece = self._pieces[-1]
            index += 1
        piece[2] = len(turn.content)

    def _continue_page(self, turn: Turn, turn_id: int, index: int, line: Line) -> None:
        """Start an empty page with line ``index`` of a turn, under a ``(cont.)`` label."""
        self._first_line = index
        self._pieces.append([turn_id, line.src_start, line.src_start, 0])
        self._place(label_line(turn, self.style, continued=True, src=line.src_start))
        if not line.gap:
            self._place(line)
            self._pieces[-1][2] = line.src_end

    def _render(self) -> RenderedPage:
        text = "\n".join(line.text for _, line in self._placed if line.text is not None)
        return RenderedPage(
            image=draw_lines(self._placed, self.style),
            spans=self.pending_spans(),
            text=text,
            text_tokens=count_tokens(text, self.encoding),
            missing_glyphs=sum(line.missing for _, line in self._placed),
        )

    def _seal(self) -> RenderedPage:
        page = self._render()
        self._reset()
        return page


@lru_cache(maxsize=32)
def page_capacity(style: RenderStyle, encoding: str = DEFAULT_ENCODING) -> int:
    """Tokens of plain English prose (:data:`REFERENCE_PROSE`) one full page of ``style`` holds.

    The yardstick of page fill: a sealed page's ``text_tokens / page_capacity(style)`` is 1.0 when it
    is as full as running prose makes it (CJK and code pages can go above it; blank space, short lines
    and labels take it below).
    """
    packer = PagePacker(style, encoding=encoding)
    turn = Turn("user", REFERENCE_PROSE * 4)
    for i in range(10_000):
        for page in packer.iter_add(turn, i):
            return page.text_tokens
    raise AssertionError("reference prose never filled a page")  # pragma: no cover
