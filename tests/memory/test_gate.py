"""The fidelity gate: pages go down the ladder only while the reader still reads them there; held pages are
listed in the context, forgetting is not gated, and the setting is checked. On a real chat of
``benchmarks/data/chats``, with a reader that reads a share of a page's text proportional to its width."""

from __future__ import annotations

import pytest
from PIL import Image

from optical_memory.errors import ConfigError
from optical_memory.gate import score
from optical_memory.ladder import Rung
from optical_memory.memory import OpticalMemory
from optical_memory.recall.base import Reading, resolve_rung
from tests.memory.test_exact import _chat


class WidthReader:
    """Reads the first ``width / top width`` of a page's kept text: narrower rungs read less."""

    name = "width"

    def __init__(self, memory: OpticalMemory) -> None:
        self.memory = memory
        self.top = memory.profile.shape(memory.profile.top).width
        self.calls: list[tuple[int, Rung | None]] = []

    def read(self, image: Image.Image, *, rung: Rung | str | None = None, page: int | None = None) -> Reading:
        assert page is not None
        text = self.memory._w.page_text(self.memory._w.pages[page].spans) or ""
        self.calls.append((page, resolve_rung(image, rung)))
        return Reading(text[: len(text) * image.width // self.top], self.name, resolve_rung(image, rung), 0.0)


def _memory(**config: object) -> tuple[OpticalMemory, WidthReader | None]:
    settings = {"provider": "openai:gpt-4o", "recent_turns": 4, "keep_text": True, **config}
    memory = OpticalMemory(settings)
    reader = None
    if memory._w.gate is not None:
        reader = memory._w.gate._reader = WidthReader(memory)
    memory.extend(_chat(120))
    return memory, reader


def test_pages_stop_at_the_last_rung_the_reader_still_reads() -> None:
    free, _ = _memory()
    assert {p.rung for p in free.pages() if p.sealed} >= {Rung.TINY}
    gated, reader = _memory(gate_reader="rapidocr", gate_min_accuracy=0.6)  # base reads 2/3, small 1/2
    rungs = [p.rung for p in gated.pages() if p.sealed]
    assert Rung.BASE in rungs and Rung.SMALL not in rungs and Rung.TINY not in rungs
    assert reader is not None and len(reader.calls) == len(set(reader.calls))  # a page read once per rung
    held = sorted(gated._w.held)
    below = {Rung.LARGE: Rung.BASE, Rung.BASE: Rung.SMALL}
    assert held and all((p, below[gated.pages()[p].rung]) in reader.calls for p in held)  # it was read there
    usage = gated.context(budget=None).usage
    assert usage.held_by_gate == tuple(held) and usage.to_dict()["held_by_gate"] == held


def test_the_budget_and_forgetting_still_apply() -> None:
    gated, _ = _memory(gate_reader="rapidocr", gate_min_accuracy=0.6)
    tight = gated.context(budget=6_000).usage
    assert (
        tight.context_tokens <= 6_000 and tight.pages_per_rung["tiny"] + tight.pages_per_rung["forgotten"] > 0
    )
    forgetting, _ = _memory(
        gate_reader="rapidocr",
        gate_min_accuracy=0.99,
        policy_options={"unit": "pages", "large": 1, "base": 2, "small": 3, "forget_after": 6},
    )
    assert any(p.rung is Rung.FORGOTTEN for p in forgetting.pages())  # by age, not gated


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"gate_reader": "exact"}, "must read page images"),
        ({"gate_reader": "magic"}, "must read page images"),
        ({"gate_reader": "rapidocr", "gate_min_accuracy": 1.5}, "gate_min_accuracy"),
    ],
)
def test_bad_gate_settings_are_refused(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        OpticalMemory(settings)


def test_the_score_is_the_lowest_measure() -> None:
    assert score("order ORD-1 shipped", text="order ORD-1 shipped", bag=None, spans=("ORD-1",)) == 1.0
    assert score("order ORD-l shipped", text=None, bag="order ord 1 shipped", spans=("ORD-1",)) == 0.0
    assert score("order shipped", text=None, bag="order ord shipped", spans=()) == pytest.approx(2 / 3)
    assert score("anything", text=None, bag=None, spans=()) is None
