"""What the memory hands back (:class:`AddResult`, :class:`Context`, :class:`Usage`, :class:`PageInfo`) and
how a context is priced in one provider's tokens (:class:`CostModel`).

Accounting, in the target provider's own tokens:

- a text turn costs its content's tokens (the provider's encoding; o200k_base unless it says otherwise)
  plus the provider's per-message overhead (3 for OpenAI chat, 0 elsewhere); the few words some formats
  wrap around a tool turn (``Tool result (name):``) are not counted;
- a page costs the provider's price of a square image at its rung (``Provider.image_tokens``) plus the
  tokens of its label (``page 3 (turns 10-14, small)``), which the formats send as a text part before it;
- the sentence introducing the pages (:data:`optical_memory.formats.PAGES_INTRO`) and one message
  overhead are paid once when any page is shown;
- ``history_text_tokens`` is what the whole history would cost as plain text turns (each turn's tokens
  plus the overhead), counted when each turn was added, so it stays right after the text is forgotten.

Per-turn token counts are kept for every bundled encoding (o200k_base and cl100k_base), so a provider
with either encoding is priced exactly. Costs are additive, which lets a budget policy spend them page by
page; :class:`~optical_memory.memory.OpticalMemory` checks the sum it actually built against the budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from optical_memory import ladder
from optical_memory.formats import Item, intro_text, page_label
from optical_memory.ladder import Rung
from optical_memory.providers import Provider
from optical_memory.tokens import DEFAULT_ENCODING, count_tokens
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
        context_tokens: The context's cost now, for the config's provider, before any budget.
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
    """

    history_text_tokens: int
    text_tokens: int
    image_tokens: int
    context_tokens: int
    pages_per_rung: Mapping[str, int]
    ratio: float
    forgotten_for_budget: tuple[int, ...] = ()

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
    """

    messages: list[dict[str, Any]]
    system: str | None
    usage: Usage
    format: str
    provider: str
    items: tuple[Item, ...] = field(default=(), repr=False)
    embeddings: EmbeddingInputs | None = field(default=None, repr=False)


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
        cost: DeepSeek-OCR positions at its rung (0 when forgotten).
        sealed: False for the open page, which is still filling.
        pinned: The rung it is pinned at, if any.
        text_kept: True when the text of every turn on it is still stored.
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


def turn_range(spans: tuple[TurnSpan, ...]) -> tuple[int, int]:
    """The first and last turn ids of a page's spans ((-1, -1) for an empty page)."""
    if not spans:
        return (-1, -1)
    return (spans[0].turn, spans[-1].turn)


class CostModel:
    """Prices text and pages for one provider, for pages rendered at ``page_size``.

    Rungs sharper than the page size cost what the top rung costs (a page cannot be sharper than it
    was rendered). Label token counts are cached per (page, turns, rung).
    """

    def __init__(self, provider: Provider, page_size: int) -> None:
        self.provider = provider
        self.encoding = provider.text_encoding
        self.overhead = provider.message_overhead
        top = provider.image_tokens(page_size, page_size)
        images = {
            s.rung: (provider.image_tokens(s.size, s.size) if s.size <= page_size else top)
            for s in ladder.LADDER
        }
        images[Rung.FORGOTTEN] = 0
        self.images: Mapping[Rung, int] = MappingProxyType(images)
        self._labels: dict[tuple[int, tuple[int, int], Rung], int] = {}
        self._intro: dict[int, int] = {}

    def text(self, tokens: Mapping[str, int]) -> int:
        """Cost of one text turn whose per-encoding token counts are ``tokens``."""
        n = tokens.get(self.encoding, tokens.get(DEFAULT_ENCODING, 0))
        return n + self.overhead

    def label(self, page_id: int, turns: tuple[int, int], rung: Rung) -> int:
        """Tokens of a page's label at a rung."""
        key = (page_id, turns, rung)
        n = self._labels.get(key)
        if n is None:
            if len(self._labels) > 200_000:
                self._labels.clear()
            n = self._labels[key] = count_tokens(page_label(page_id, turns, rung), self.encoding)
        return n

    def page(self, page_id: int, turns: tuple[int, int], rung: Rung) -> int:
        """A page's cost at a rung: its image plus its label (0 when forgotten)."""
        if rung is Rung.FORGOTTEN:
            return 0
        return self.images[rung] + self.label(page_id, turns, rung)

    def page_costs(self, page_id: int, turns: tuple[int, int]) -> dict[Rung, int]:
        """A page's cost at every rung (the ``costs`` a policy's PageState takes)."""
        return {rung: self.page(page_id, turns, rung) for rung in ladder.ORDER}

    def intro(self, count: int) -> int:
        """Cost of presenting ``count`` pages at all: the introduction plus one message overhead."""
        if count <= 0:
            return 0
        n = self._intro.get(count)
        if n is None:
            n = self._intro[count] = count_tokens(intro_text(count), self.encoding) + self.overhead
        return n
