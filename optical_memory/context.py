"""What the memory hands back (:class:`AddResult`, :class:`Context`, :class:`Usage`, :class:`PageInfo`) and
how a context is priced in one provider's tokens (:class:`CostModel`).

Accounting, in the target provider's own tokens:

- a text turn costs its content's tokens plus its tool calls' names and arguments (the provider's
  encoding; o200k_base unless it says otherwise) plus the provider's per-message overhead (3 for OpenAI
  chat, 0 elsewhere); the few words some formats wrap around a tool turn are not counted;
- a page sent as an image costs the provider's price of the image at its rung (its render profile's size
  and detail at that rung, ``Provider.image_tokens``), times the calibration ratio learned from the
  provider's reported usage, plus the tokens of its label (``page 3, turns 10-14``), which the
  formats send as a text part before it;
- a page sent as text costs what its turn pieces cost as text turns (counted per encoding when it was
  sealed): a page whose image would cost at least as much goes as text, when its text is still kept;
- the sentence introducing the page images (:data:`optical_memory.formats.PAGES_INTRO`) and one message
  overhead are paid once when any image is shown;
- ``history_text_tokens`` is what the whole history would cost as plain text turns (each turn's tokens
  plus the overhead), counted when each turn was added, so it stays right after the text is forgotten.

Per-turn token counts are kept for every bundled encoding (o200k_base and cl100k_base), so a provider
with either encoding is priced exactly. Costs are additive, which lets a budget policy spend them page by
page; :class:`~optical_memory.memory.OpticalMemory` checks the sum it actually built against the budget.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from optical_memory import ladder
from optical_memory.formats import Item, intro_text, page_label
from optical_memory.ladder import Rung
from optical_memory.profiles import RenderProfile
from optical_memory.providers import Provider
from optical_memory.tokens import DEFAULT_ENCODING, count_tokens
from optical_memory.types import ToolCall, TurnImage, TurnSpan

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


def turn_range(spans: tuple[TurnSpan, ...]) -> tuple[int, int]:
    """The first and last turn ids of a page's spans ((-1, -1) for an empty page)."""
    if not spans:
        return (-1, -1)
    return (spans[0].turn, spans[-1].turn)


class CostModel:
    """Prices text, and pages as images or as text, for one provider and one render profile.

    Rungs a profile does not have cost what the rung they clamp to costs. A rung's image detail (OpenAI
    ``low``, a Gemini 3 level) applies only when the provider uses the formula the profile was made for.

    Args:
        provider: The target.
        profile: The profile the pages were made with.
        ratio: Billed over predicted image tokens, learned from reported usage (1.0: the formula as is).
    """

    def __init__(self, provider: Provider, profile: RenderProfile, ratio: float = 1.0) -> None:
        self.provider = provider
        self.profile = profile
        self.ratio = ratio
        self.encoding = provider.text_encoding
        self.overhead = provider.message_overhead
        images = {}
        for spec in ladder.LADDER:
            shape = profile.shape(spec.rung)
            price = provider.image_tokens(shape.width, shape.height, self.detail(spec.rung))
            images[spec.rung] = math.ceil(price * ratio - 1e-9)
        images[Rung.FORGOTTEN] = 0
        self.images: Mapping[Rung, int] = MappingProxyType(images)
        self._labels: dict[tuple[int, tuple[int, int]], int] = {}
        self._intro = count_tokens(intro_text(), self.encoding) + self.overhead

    def detail(self, rung: Rung) -> str | None:
        """The detail images at ``rung`` are sent with (None: the model's default)."""
        if self.provider.detail is not None:
            return self.provider.detail
        if rung is Rung.FORGOTTEN or self.profile.formula != self.provider.formula:
            return None
        return self.profile.shape(rung).detail

    def text(self, tokens: Mapping[str, int]) -> int:
        """Cost of one text turn whose per-encoding token counts are ``tokens``."""
        n = tokens.get(self.encoding, tokens.get(DEFAULT_ENCODING, 0))
        return n + self.overhead

    def pictures(self, images: Sequence[TurnImage]) -> int:
        """What the images a turn carries cost, sent as they are (at the model's default detail)."""
        return sum(
            math.ceil(self.provider.image_tokens(i.width, i.height) * self.ratio - 1e-9) for i in images
        )

    def turn(self, tokens: Mapping[str, int], images: Sequence[TurnImage] = ()) -> int:
        """Cost of one whole turn sent as it is: its text and its images."""
        return self.text(tokens) + self.pictures(images)

    def page_text(self, text_cost: Mapping[str, int]) -> int | None:
        """Cost of a page sent as its turn pieces' text (None when the page's text cost is not known)."""
        if not text_cost:
            return None
        n = text_cost.get(self.encoding, text_cost.get(DEFAULT_ENCODING, 0))
        return n + self.overhead * text_cost.get("messages", 1)

    def label(self, page_id: int, turns: tuple[int, int]) -> int:
        """Tokens of a page's label."""
        key = (page_id, turns)
        n = self._labels.get(key)
        if n is None:
            if len(self._labels) > 200_000:
                self._labels.clear()
            n = self._labels[key] = count_tokens(page_label(page_id, turns), self.encoding)
        return n

    def page(self, page_id: int, turns: tuple[int, int], rung: Rung) -> int:
        """A page's cost as an image at a rung: its image plus its label (0 when forgotten)."""
        if rung is Rung.FORGOTTEN:
            return 0
        return self.images[rung] + self.label(page_id, turns)

    def page_costs(self, page_id: int, turns: tuple[int, int], text: int | None = None) -> dict[Rung, int]:
        """A page's cost at every rung: as an image, or as ``text`` when that is no dearer (the ``costs`` a
        policy's PageState takes)."""
        costs = {rung: self.page(page_id, turns, rung) for rung in ladder.ORDER}
        if text is not None:
            costs = {rung: c if rung is Rung.FORGOTTEN else min(c, text) for rung, c in costs.items()}
        return costs

    def intro(self, count: int) -> int:
        """Cost of presenting ``count`` page images at all: the introduction plus one message overhead."""
        return self._intro if count > 0 else 0


def text_cost(pieces: Sequence[tuple[str, Sequence[ToolCall]]], encodings: Sequence[str]) -> dict[str, int]:
    """What text pieces cost per encoding, plus how many messages they make (``"messages"``).

    Args:
        pieces: ``(text, tool calls)`` per piece; a piece's calls are counted when it ends its turn.
        encodings: The encodings to count in.
    """
    out = {enc: sum(turn_text_tokens(text, calls, enc) for text, calls in pieces) for enc in encodings}
    out["messages"] = len(pieces)
    return out


def turn_text_tokens(content: str, calls: Sequence[ToolCall], encoding: str) -> int:
    """Tokens of a turn's text as a provider reads it: its content, then each call's name and arguments."""
    n = count_tokens(content, encoding)
    for call in calls:
        n += count_tokens(call.name, encoding) + count_tokens(call.arguments, encoding)
    return n
