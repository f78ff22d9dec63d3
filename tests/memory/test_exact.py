"""Pages keep their verbatim spans beside the image (counted, stable, trimmed as they decay, gone when
forgotten), and credentials are masked on pages, in the spans and in the text kept. On a real chat of
``benchmarks/data/chats`` with a planted order id and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from optical_memory.conversation import load_conversation
from optical_memory.formats import PageItem
from optical_memory.memory import OpticalMemory
from optical_memory.spans import EXACT_SHARE, MASK, SEPARATOR
from optical_memory.tokens import count_tokens
from optical_memory.types import Turn

CHAT = (
    Path(__file__).resolve().parents[2]
    / "benchmarks"
    / "data"
    / "chats"
    / "en_agent_claude_code_spotter.json"
)
ORDER = "ORD-48213"
KEY = "sk-proj-" + "Q7f2Lk9Zx1Vb8Nm3Rt6Yw4Pa0Sd5Gh"


def _chat(n: int) -> list[Turn]:
    turns = load_conversation(CHAT)[:n]
    planted = Turn(
        "user", f"My order is {ORDER}; the key is {KEY}, see https://shop.example.com/o/48213 please."
    )
    return [*turns[:3], planted, *turns[3:]]


def _memory(path: Path | None = None, **config: object) -> OpticalMemory:
    settings = {"provider": "openai:gpt-4o", "recent_turns": 4, "keep_text": True, **config}
    if path is None:
        return OpticalMemory(settings)
    return OpticalMemory.open(path, config=settings)


def _planted_page(m: OpticalMemory) -> int:
    return next(p.page_id for p in m.pages() if any(text == ORDER for _, text, _ in p.exact))


def test_a_paged_turn_keeps_its_ids_beside_the_image_and_never_its_key(tmp_path: Path) -> None:
    m = _memory(tmp_path / "m.db", exact_chars=600)
    m.extend(_chat(40))
    pid = _planted_page(m)
    info = m.pages()[pid]
    assert ("url", "https://shop.example.com/o/48213", "user") in info.exact and info.masked == 1
    assert all(KEY not in text for _, text, _ in info.exact)
    planted = next(t for t in m._w.turns if ORDER in (t.content or ""))
    assert KEY not in planted.content and MASK in planted.content  # the text kept is masked too
    assert KEY not in m.recall(pid, reader="exact").text
    ctx = m.context(budget=None)
    items = [i for i in ctx.items if isinstance(i, PageItem) and i.page_id == pid]
    assert items and items[0].exact.startswith(f"page {pid}{SEPARATOR}exact: ") and ORDER in items[0].exact
    # the line goes right after the page's image, as a text part
    parts = [p for msg in ctx.messages if isinstance(msg["content"], list) for p in msg["content"]]
    at = next(i for i, p in enumerate(parts) if p.get("type") == "text" and p["text"] == items[0].exact)
    assert parts[at - 1]["type"] == "image_url"
    assert KEY not in str(ctx.messages)
    with OpticalMemory.open(tmp_path / "m.db") as again:  # stored with the page
        assert again.pages()[pid].exact == info.exact and again.pages()[pid].masked == 1
        assert KEY not in again._w.turns[3].content


def test_the_spans_cost_is_counted_in_the_usage() -> None:
    m = _memory()
    m.extend(_chat(40))
    with_spans = m.context(budget=None)
    bare = _memory(exact_kinds=[])
    bare.extend(_chat(40))
    without = bare.context(budget=None)
    lines = [i.exact for i in with_spans.items if isinstance(i, PageItem) and i.exact]
    assert lines and not any(i.exact for i in without.items if isinstance(i, PageItem))
    extra = sum(count_tokens(line, "o200k_base") for line in lines)
    assert with_spans.usage.text_tokens - without.usage.text_tokens == extra
    assert with_spans.usage.image_tokens == without.usage.image_tokens


def test_a_budget_fits_with_the_spans_counted() -> None:
    m = _memory()
    m.extend(_chat(60))
    for budget in (3_000, 6_000, 12_000):
        assert m.context(budget=budget).usage.context_tokens <= budget


def test_older_pages_keep_the_same_lines_as_the_history_grows() -> None:
    m = _memory(policy_options={"unit": "pages", "large": 50, "base": 50, "small": 50})  # no decay here
    m.extend(_chat(30))
    before = {i.page_id: i.exact for i in m.context(budget=None).items if isinstance(i, PageItem)}
    m.extend(load_conversation(CHAT)[30:45])
    after = {i.page_id: i.exact for i in m.context(budget=None).items if isinstance(i, PageItem)}
    sealed = [pid for pid in before if pid < len(m._w.pages) and pid in after]
    assert sealed and all(after[pid] == before[pid] for pid in sealed[:-1])


def test_spans_are_trimmed_as_a_page_decays_and_go_when_it_is_forgotten(tmp_path: Path) -> None:
    m = _memory(tmp_path / "m.db", exact_chars=60)
    m.extend(_chat(80))
    pages = m.pages()
    for info in pages:
        if info.sealed:
            cap = int(60 * EXACT_SHARE[info.rung])
            assert sum(len(text) for _, text, _ in info.exact) <= cap
    tiny = [p for p in pages if p.sealed and p.rung.value == "tiny" and p.exact]
    assert tiny, "some page decayed to tiny with spans left"
    pid = tiny[0].page_id
    m.forget(pid)
    assert m.pages()[pid].exact == ()
    with OpticalMemory.open(tmp_path / "m.db") as again:
        assert again.pages()[pid].exact == ()


def test_the_kinds_are_chosen_in_the_config() -> None:
    m = _memory(exact_kinds=["url"])
    m.extend(_chat(40))
    kinds = {kind for p in m.pages() for kind, _, _ in p.exact}
    assert kinds == {"url"}
    with pytest.raises(Exception, match="unknown span kinds"):
        _memory(exact_kinds=["secret"])


def test_a_key_in_tool_call_arguments_is_masked_when_the_turn_is_paged() -> None:
    m = _memory()
    m.add("Call the billing API.", role="user")
    call = {
        "id": "c1",
        "function": {"name": "charge", "arguments": f'{{"api_key": "{KEY}", "order": "{ORDER}"}}'},
    }
    m.add({"role": "assistant", "content": "", "tool_calls": [call]})
    m.add({"role": "tool", "tool_call_id": "c1", "content": "charged"})
    assert KEY in m._w.turns[1].tool_calls[0].arguments  # still in the recent window: as the agent sent it
    m.extend(load_conversation(CHAT)[:12])
    (masked,) = m._w.turns[1].tool_calls
    assert KEY not in masked.arguments and MASK in masked.arguments and ORDER in masked.arguments
