"""How a context is priced in one provider's tokens: :class:`CostModel`, and what text pieces cost.

Accounting, in the target provider's own tokens:

- a text turn costs its content's tokens plus its tool calls' names and arguments (the provider's
  encoding; o200k_base unless it says otherwise) plus the provider's per-message overhead (3 for OpenAI
  chat, 0 elsewhere); the few words some formats wrap around a tool turn are not counted;
- a page sent as an image costs the provider's price of the image at its rung (its render profile's size
  and detail at that rung, ``Provider.image_tokens``), times the calibration ratio learned from the
  provider's reported usage, plus the tokens of its caption: its label (``page 3, turns 10-14``), which
  the formats send as a text part before it, and its verbatim spans (``page 3 · exact: ...``), sent after
  it;
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
from types import MappingProxyType

from optical_memory import ladder
from optical_memory.formats import intro_text, page_label
from optical_memory.ladder import Rung
from optical_memory.pricing.profiles import RenderProfile
from optical_memory.pricing.providers import Provider
from optical_memory.tokens import DEFAULT_ENCODING, count_tokens
from optical_memory.types import ToolCall, TurnImage


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
        self._captions: dict[tuple[int, tuple[int, int], str], int] = {}
        self._page_costs: dict[tuple[int, tuple[int, int], int | None, str], Mapping[Rung, int]] = {}
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
        return tokens_in(tokens, self.encoding) + self.overhead

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

    def page_history(self, text_cost: Mapping[str, int], text_tokens: int) -> int:
        """What a sealed page counts for in the history's cost: its turn pieces' cost as text, or its
        ``text_tokens`` when that cost is not known."""
        text = self.page_text(text_cost)
        return text_tokens if text is None else text

    def caption(self, page_id: int, turns: tuple[int, int], exact: str = "") -> int:
        """Tokens of the text sent with a page's image: its label, and ``exact``, its verbatim spans' line."""
        key = (page_id, turns, exact)
        n = self._captions.get(key)
        if n is None:
            if len(self._captions) > 200_000:
                self._captions.clear()
            n = count_tokens(page_label(page_id, turns), self.encoding)
            n = self._captions[key] = n + (count_tokens(exact, self.encoding) if exact else 0)
        return n

    def page(self, page_id: int, turns: tuple[int, int], rung: Rung, exact: str = "") -> int:
        """A page's cost as an image at a rung: its image plus its caption (0 when forgotten)."""
        if rung is Rung.FORGOTTEN:
            return 0
        return self.images[rung] + self.caption(page_id, turns, exact)

    def page_costs(
        self, page_id: int, turns: tuple[int, int], text: int | None = None, exact: str = ""
    ) -> Mapping[Rung, int]:
        """A page's cost at every rung: as an image, or as ``text`` when that is no dearer (the ``costs`` a
        policy's PageState takes; kept, read-only, since every context asks again)."""
        key = (page_id, turns, text, exact)
        costs = self._page_costs.get(key)
        if costs is None:
            if len(self._page_costs) > 200_000:
                self._page_costs.clear()
            image = {rung: self.page(page_id, turns, rung, exact) for rung in ladder.ORDER}
            if text is not None:
                image = {rung: c if rung is Rung.FORGOTTEN else min(c, text) for rung, c in image.items()}
            costs = self._page_costs[key] = MappingProxyType(image)
        return costs

    def intro(self, count: int) -> int:
        """Cost of presenting ``count`` page images at all: the introduction plus one message overhead."""
        return self._intro if count > 0 else 0


def tokens_in(tokens: Mapping[str, int], encoding: str) -> int:
    """A turn's tokens in ``encoding`` from its per-encoding counts (o200k's when that one is missing)."""
    return tokens.get(encoding, tokens.get(DEFAULT_ENCODING, 0))


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
