"""The facade's public surface, pinned: names and fields change only on purpose."""

from __future__ import annotations

import dataclasses
import inspect

from optical_memory.context import AddResult, Context, PageInfo, Usage
from optical_memory.memory import OpticalMemory


def test_memory_methods():
    public = sorted(n for n in dir(OpticalMemory) if not n.startswith("_"))
    assert public == [
        "aadd",
        "acontext",
        "add",
        "apages",
        "arecall",
        "asearch",
        "clear",
        "close",
        "config",
        "context",
        "extend",
        "forget",
        "observe_usage",
        "open",
        "page_image",
        "page_text",
        "pages",
        "pin",
        "pop",
        "profile",
        "prune",
        "read_pages",
        "recall",
        "search",
        "session",
        "sync",
        "tools",
        "unpin",
    ]
    assert str(inspect.signature(OpticalMemory.add)) == (
        "(self, turn: 'Turn | Mapping[str, Any] | str', *, role: 'str | None' = None) -> 'AddResult'"
    )
    ctx = inspect.signature(OpticalMemory.context).parameters
    assert [(p.name, p.kind.name) for p in ctx.values()][1:] == [
        ("provider", "KEYWORD_ONLY"),
        ("budget", "KEYWORD_ONLY"),
        ("format", "KEYWORD_ONLY"),
        ("detail", "KEYWORD_ONLY"),
    ]
    assert ctx["budget"].default == "config"
    opened = inspect.signature(OpticalMemory.open).parameters
    assert list(opened) == ["path", "session", "config"]
    assert opened["session"].default == "default"


def test_value_type_fields():
    def names(cls):
        return [f.name for f in dataclasses.fields(cls)]

    assert names(AddResult) == ["turn_id", "sealed", "demoted", "context_tokens"]
    assert names(Usage) == [
        "history_text_tokens",
        "text_tokens",
        "image_tokens",
        "context_tokens",
        "pages_per_rung",
        "ratio",
        "forgotten_for_budget",
        "carried_text_tokens",
        "pages_as_text",
        "budget",
        "held_by_gate",
    ]
    assert names(Context) == [
        "messages", "system", "usage", "format", "provider", "items", "embeddings", "image_ratio",
    ]  # fmt: skip
    assert names(PageInfo) == [
        "page_id",
        "rung",
        "age_pages",
        "age_turns",
        "turns",
        "spans",
        "cost",
        "sealed",
        "pinned",
        "text_kept",
        "width",
        "height",
        "text_tokens",
        "fill",
        "exact",
        "masked",
    ]
    for cls in (AddResult, Usage, Context, PageInfo):
        assert cls.__dataclass_params__.frozen


def test_context_manager_and_len():
    with OpticalMemory() as m:
        assert len(m) == 0
        m.add("hello", role="user")
        assert len(m) == 1
        usage = m.context().usage
        assert usage.context_tokens == usage.text_tokens > 0
        assert usage.pages_per_rung == {"large": 0, "base": 0, "small": 0, "tiny": 0, "forgotten": 0}
        assert m.pages() == []
