"""The needle benchmark: plant exact values in a real conversation, replay it, and ask what survived.

:func:`plant` spreads ``n`` needles over a conversation: user turns stating an id, a number with its unit,
a URL or a code name, each about a subject of its own, with the question an agent would later ask. Then
:func:`measure` replays the conversation into a memory with a provider's defaults and, at the end, for
every needle reports:

- ``where``: ``text`` (a recent turn, or a page sent as its text), ``page`` (on a page the context shows),
  ``left_out`` (its page is left out of this context by the budget) or ``forgotten``;
- ``in_context``: the value appears exactly in the context's text (the turn, or the page's verbatim spans);
- ``read``: the value is read from its page image at the rung the context shows it by the offline reader
  (spaces ignored; None when not read);
- ``found``: :meth:`~optical_memory.memory.OpticalMemory.search` with the needle's question puts its page in
  the top 3 (None for a needle still in the recent turns, which are not pages);
- ``truncation``: the value survives plain truncation (the newest turns, as text, that fit the same number
  of the provider's tokens as the optical context costs). The run also counts what truncation keeps when
  it may spend the whole budget (``truncation_at_budget``), which the optical context seldom needs.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from optical_memory.formats import PageItem, TextItem
from optical_memory.memory import OpticalMemory
from optical_memory.pricing.costs import CostModel, turn_text_tokens
from optical_memory.pricing.providers import get_provider
from optical_memory.recall.base import RecallBackend
from optical_memory.types import Turn

__all__ = ["AGE_BUCKETS", "Needle", "NeedleResult", "NeedleRun", "measure", "plant"]

TOP = 3
"""A needle is found when search puts its page among this many."""
AGE_BUCKETS = (10, 50, 100, 200, 400)
"""Upper bounds (turns since the needle) of the age buckets reported."""
_SUBJECTS = (
    "replacement order", "staging deploy", "refund request", "support ticket", "nightly backup",
    "customer invoice", "load test", "data migration", "warehouse transfer", "hotfix release",
    "security audit", "billing export", "canary rollout", "partner webhook", "sensor calibration",
    "quarterly report", "database failover", "vendor contract", "shipping label", "cache warmup",
)  # fmt: skip
_UNITS = ("ms", "GiB", "MB/s", "kg", "°C", "req/s")


@dataclass(frozen=True, slots=True)
class Needle:
    """A planted value: its kind, the value, the question asking for it, and the turn that states it."""

    kind: str
    value: str
    question: str
    turn: int


@dataclass(frozen=True, slots=True)
class NeedleResult:
    """What became of one needle (see the module docstring)."""

    needle: Needle
    age: int
    where: str
    rung: str | None
    page_id: int | None
    in_context: bool
    read: bool | None
    found: bool | None
    truncation: bool


@dataclass(frozen=True, slots=True)
class NeedleRun:
    """One provider's replay: its results, and what the context and the truncation cost."""

    provider: str
    reader: str | None
    turns: int
    context_tokens: int
    history_tokens: int
    truncation_turns: int
    budget: int | None
    budget_turns: int
    results: list[NeedleResult] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Counts over all needles: kept in context (optical, truncation), and on shown pages."""
        on_pages = [r for r in self.results if r.where == "page"]
        paged = [r for r in self.results if r.found is not None]
        read = [r for r in self.results if r.read is not None]
        return {
            "needles": len(self.results),
            "in_context": sum(r.in_context for r in self.results),
            "truncation": sum(r.truncation for r in self.results),
            "truncation_at_budget": sum(
                r.needle.turn >= self.turns - self.budget_turns for r in self.results
            ),
            "on_shown_pages": len(on_pages),
            "exact_on_shown_pages": sum(r.in_context for r in on_pages),
            "paged": len(paged),
            "found_top3": sum(bool(r.found) for r in paged),
            "read_by_reader": sum(bool(r.read) for r in read),
            "read_tried": len(read),
        }

    def to_dict(self) -> dict[str, Any]:
        """The run as plain data (for JSON)."""
        head = {k: v for k, v in asdict(self).items() if k != "results"}
        rows = [
            {**asdict(r.needle), **{k: v for k, v in asdict(r).items() if k != "needle"}}
            for r in self.results
        ]
        return {**head, "summary": self.summary(), "results": rows}


def _value(kind: str, rng: random.Random) -> str:
    if kind == "id":
        letters = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(2))
        return f"{rng.choice(['ORD', 'TKT', 'INV', 'REQ'])}-{rng.randint(10000, 99999)}-{letters}"
    if kind == "hash":
        return "".join(rng.choice("0123456789abcdef") for _ in range(12))
    if kind == "number":
        return f"{rng.randint(10, 999)}.{rng.randint(1, 9)} {rng.choice(_UNITS)}"
    if kind == "url":
        return f"https://{rng.choice(['ops', 'shop', 'api'])}.example.com/{rng.choice(['o', 'r', 't'])}/{rng.randint(1000, 9999)}"
    return f"{rng.choice(['compute', 'load', 'sync', 'parse'])}_{rng.choice(['batch', 'index', 'quota'])}_{rng.randint(10, 99)}"


_NOUNS = {
    "id": "id",
    "hash": "commit hash",
    "number": "measured value",
    "url": "link",
    "code": "function name",
}
KINDS = tuple(_NOUNS)


def plant(turns: Sequence[Turn], n: int, *, seed: int = 0) -> tuple[list[Turn], list[Needle]]:
    """The conversation with ``n`` needle turns inserted at spread positions, and the needles.

    Raises:
        ValueError: If ``n`` is not between 1 and the number of subjects (20), or the conversation is
            shorter than ``2 * n`` turns.
    """
    if not 1 <= n <= len(_SUBJECTS):
        raise ValueError(f"plant between 1 and {len(_SUBJECTS)} needles, not {n}")
    if len(turns) < 2 * n:
        raise ValueError(f"a conversation of {len(turns)} turns is too short for {n} needles")
    rng = random.Random(seed)
    subjects = rng.sample(_SUBJECTS, n)
    span = max(1, int(len(turns) * 0.9))
    positions = sorted(rng.sample(range(1, span), n))
    out: list[Turn] = []
    needles: list[Needle] = []
    at = dict(zip(positions, range(n), strict=True))
    for i, turn in enumerate(turns):
        if i in at:
            j = at[i]
            kind = KINDS[j % len(KINDS)]
            value = _value(kind, rng)
            noun = _NOUNS[kind]
            shown = f"`{value}`" if kind == "code" else value
            out.append(Turn("user", f"Note for later: the {noun} of the {subjects[j]} is {shown}."))
            needles.append(Needle(kind, value, f"What was the {noun} of the {subjects[j]}?", len(out) - 1))
        out.append(turn)
    return out, needles


def _truncation_keeps(turns: Sequence[Turn], cost: CostModel, budget: int) -> int:
    """How many of the newest turns fit ``budget`` of the provider's tokens as text."""
    used = kept = 0
    for turn in reversed(turns):
        tokens = {cost.encoding: turn_text_tokens(turn.content or "", turn.tool_calls, cost.encoding)}
        used += cost.turn(tokens, turn.images)
        if used > budget:
            break
        kept += 1
    return kept


def _squash(text: str) -> str:
    return "".join(text.split())


def measure(
    turns: Sequence[Turn],
    needles: Sequence[Needle],
    provider: str,
    *,
    reader: RecallBackend | None = None,
    budget: int | Literal["window", "config"] | None = "config",
    progress: Callable[[str], None] | None = None,
) -> NeedleRun:
    """Replay ``turns`` into a memory with ``provider``'s defaults and report what became of each needle.

    Args:
        turns: The conversation with its needles planted (see :func:`plant`).
        needles: The needles.
        provider: The provider whose defaults (render profile, window, prices) the memory takes.
        reader: The offline reader that reads needle pages back (None: not read).
        budget: The context's budget, as :meth:`OpticalMemory.context` takes it.
        progress: Called with a short note as pages are read.
    """
    memory = OpticalMemory({"provider": provider})
    memory.extend(list(turns))
    context = memory.context(budget=budget)
    items: dict[int, PageItem] = {i.page_id: i for i in context.items if isinstance(i, PageItem)}
    text_by_turn: dict[int, str] = {}
    for entry in context.items:
        if isinstance(entry, TextItem) and entry.turn is not None:
            text_by_turn[entry.turn] = text_by_turn.get(entry.turn, "") + entry.content
    pages = memory.pages()
    page_of: dict[int, int] = {}
    for info in pages:
        for span in info.spans:
            page_of.setdefault(span.turn, info.page_id)
    forgotten = {p.page_id for p in pages if p.rung.value == "forgotten"}
    cost = CostModel(get_provider(provider), memory.profile)
    kept = _truncation_keeps(turns, cost, context.usage.context_tokens)
    limit = context.usage.budget
    budget_turns = len(turns) if limit is None else _truncation_keeps(turns, cost, limit)
    readings: dict[int, str] = {}
    results = []
    for needle in needles:
        page_id = page_of.get(needle.turn)
        item = None if page_id is None else items.get(page_id)
        read = found = None
        if needle.turn in text_by_turn:
            where, in_context = "text", needle.value in text_by_turn[needle.turn]
        elif item is not None:
            where, in_context = "page", needle.value in item.exact
            if reader is not None:
                if item.page_id not in readings:
                    if progress is not None:
                        progress(f"{provider}: reading page {item.page_id} at {item.rung.value}")
                    readings[item.page_id] = reader.read(item.image, rung=item.rung, page=item.page_id).text
                read = _squash(needle.value) in _squash(readings[item.page_id])
        else:
            where, in_context = ("forgotten" if page_id in forgotten else "left_out"), False
        if page_id is not None:
            found = page_id in {h.page_id for h in memory.search(needle.question, TOP)}
        age = len(turns) - 1 - needle.turn
        rung = None if item is None else item.rung.value
        truncation = needle.turn >= len(turns) - kept
        results.append(NeedleResult(needle, age, where, rung, page_id, in_context, read, found, truncation))
    memory.close()
    return NeedleRun(
        provider,
        None if reader is None else reader.name,
        len(turns),
        context.usage.context_tokens,
        context.usage.history_text_tokens,
        kept,
        limit,
        budget_turns,
        results,
    )


def age_bucket(age: int) -> str:
    """The age bucket an age falls in (``<=10``, ..., ``>400``)."""
    for bound in AGE_BUCKETS:
        if age <= bound:
            return f"<={bound}"
    return f">{AGE_BUCKETS[-1]}"
