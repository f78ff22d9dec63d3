"""What the memory hands back: :class:`AddResult`, :class:`Context`, :class:`Usage` and :class:`PageInfo`.

How those costs are counted is :mod:`optical_memory.pricing.costs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from optical_memory.formats import Item
from optical_memory.ladder import Rung
from optical_memory.types import TurnSpan

if TYPE_CHECKING:
    from optical_memory.embeddings import EmbeddingInputs


@dataclass(frozen=True, slots=True)
class AddResult:
    """What one :meth:`~optical_memory.memory.OpticalMemory.add` did.

    Attributes:
        turn_id: The new turn's id (0, 1, 2, ... in the session).
        sealed: Ids of the pages this add filled and sealed.
        demoted: Ids of the pages this add moved down the ladder (or forgot by age).
        context_tokens: The context's cost now, for the config's provider, before any budget (kept as
            running sums; it counts each page sent as text at its own cost, so where one turn's pieces on
            consecutive text pages are joined into one message the context costs a few tokens less).
    """

    turn_id: int
    sealed: tuple[int, ...]
    demoted: tuple[int, ...]
    context_tokens: int


@dataclass(frozen=True, slots=True)
class Usage:
    """What a context costs, in the target provider's tokens.

    Attributes:
        history_text_tokens: What the whole history would cost sent as plain text.
        text_tokens: Text actually sent: system prompt, recent turns, page labels and introduction.
        image_tokens: The provider's price of the page images sent.
        context_tokens: ``text_tokens + image_tokens``.
        pages_per_rung: Pages at each rung in this context, every rung name present (``forgotten``
            counts pages left out, by age, by ``forget()`` or to fit the budget; the open page counts
            at its rung).
        ratio: ``history_text_tokens / context_tokens`` (1.0 for an empty context).
        forgotten_for_budget: Ids of the pages left out of this context only to fit the budget (they are
            still stored).
        carried_text_tokens: What the part of the history this context still carries (as text or on
            pages shown) would cost as plain text: the history less the pages forgotten or left out.
        pages_as_text: Pages sent as their turns' text, because their image would cost more.
        budget: The budget the context was fitted to (None: unbounded).
        held_by_gate: Ids of the pages in this context that the fidelity gate holds above the rung their
            age asks, because its reader could not read them there (see :mod:`optical_memory.gate`).
    """

    history_text_tokens: int
    text_tokens: int
    image_tokens: int
    context_tokens: int
    pages_per_rung: Mapping[str, int]
    ratio: float
    forgotten_for_budget: tuple[int, ...] = ()
    carried_text_tokens: int = 0
    pages_as_text: int = 0
    budget: int | None = None
    held_by_gate: tuple[int, ...] = ()

    @property
    def carried_ratio(self) -> float:
        """``carried_text_tokens / context_tokens``: the ratio over what the context still carries."""
        return self.carried_text_tokens / self.context_tokens if self.context_tokens else 1.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of the usage."""
        return {
            "history_text_tokens": self.history_text_tokens,
            "text_tokens": self.text_tokens,
            "image_tokens": self.image_tokens,
            "context_tokens": self.context_tokens,
            "pages_per_rung": dict(self.pages_per_rung),
            "ratio": self.ratio,
            "forgotten_for_budget": list(self.forgotten_for_budget),
            "carried_text_tokens": self.carried_text_tokens,
            "carried_ratio": self.carried_ratio,
            "pages_as_text": self.pages_as_text,
            "budget": self.budget,
            "held_by_gate": list(self.held_by_gate),
        }


@dataclass(frozen=True, slots=True)
class Context:
    """A context ready to send.

    Attributes:
        messages: Messages in ``format`` (see :func:`optical_memory.formats.build_messages`).
        system: The system prompt apart, for the formats that take it so (Anthropic, Gemini), else None.
        usage: What it costs.
        format: The message format.
        provider: The canonical provider name it was priced for.
        items: The items the messages were built from (text turns and pages with their images).
        embeddings: For the ``embeddings`` format only: input ids and ``inputs_embeds`` for a self-hosted
            DeepSeek-OCR language model (:class:`~optical_memory.embeddings.EmbeddingInputs`); its
            ``messages`` are then empty. None for the message formats.
        image_ratio: The calibration ratio its image tokens were priced with (see
            :meth:`~optical_memory.memory.OpticalMemory.observe_usage`).
    """

    messages: list[dict[str, Any]]
    system: str | None
    usage: Usage
    format: str
    provider: str
    items: tuple[Item, ...] = field(default=(), repr=False)
    embeddings: EmbeddingInputs | None = field(default=None, repr=False)
    image_ratio: float = 1.0


@dataclass(frozen=True, slots=True)
class PageInfo:
    """One page of a memory, as :meth:`~optical_memory.memory.OpticalMemory.pages` lists it.

    Attributes:
        page_id: The page's id (0 = the oldest page of the session).
        rung: Its stored rung (the open page is at the top rung).
        age_pages: Sealed pages newer than it (the open page: -1).
        age_turns: Turns added after its last turn.
        turns: Ids of the first and last turn it holds.
        spans: The character ranges of each turn it holds.
        cost: What its image costs at its rung in the memory's provider's tokens (0 when forgotten).
        sealed: False for the open page, which is still filling.
        pinned: The rung it is pinned at, if any.
        text_kept: True when the text of every turn on it is still stored.
        width: Its width in pixels at its rung (0 when forgotten).
        height: Its height in pixels at its rung (0 when forgotten).
        text_tokens: o200k tokens of the text drawn on it.
        fill: ``text_tokens`` over the tokens of plain prose a full page holds (1.0: as full as prose).
        exact: Its verbatim spans, (kind, text, role of the turn it is from) in order of appearance, as a
            context carries them
            beside its image (see :mod:`optical_memory.spans`; none once it is forgotten).
        masked: How many credentials were masked on it (on the image, in the text kept and in ``exact``).
    """

    page_id: int
    rung: Rung
    age_pages: int
    age_turns: int
    turns: tuple[int, int]
    spans: tuple[TurnSpan, ...]
    cost: int
    sealed: bool
    pinned: Rung | None
    text_kept: bool
    width: int = 0
    height: int = 0
    text_tokens: int = 0
    fill: float = 0.0
    exact: tuple[tuple[str, str, str], ...] = ()
    masked: int = 0


def turn_range(spans: tuple[TurnSpan, ...]) -> tuple[int, int]:
    """The first and last turn ids of a page's spans ((-1, -1) for an empty page)."""
    if not spans:
        return (-1, -1)
    return (spans[0].turn, spans[-1].turn)
