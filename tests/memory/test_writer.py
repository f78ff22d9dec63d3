"""The one write path: work is carried out before the store's lock is taken, and a write that lost a race
to another writer of its session is carried out again on the fresh state."""

from __future__ import annotations

from pathlib import Path

import pytest

from optical_memory.memory import OpticalMemory
from optical_memory.writer import OPTIMISTIC_TRIES


def _during_writes(memory: OpticalMemory, monkeypatch: pytest.MonkeyPatch, times: int, side) -> list[int]:
    """Run ``side()`` inside ``memory``'s next ``times`` carried-out writes (while they lay out turns)."""
    calls: list[int] = []
    real = memory._w._evict

    def evict() -> list[int]:
        calls.append(1)
        if len(calls) <= times:
            side()
        return real()

    monkeypatch.setattr(memory._w, "_evict", evict)
    return calls


def _contents(memory: OpticalMemory) -> list[str | None]:
    len(memory)  # catches up with what other writers committed
    return [t.content for t in memory._w.turns]


def test_laying_out_and_rendering_hold_no_store_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.db"
    a = OpticalMemory.open(path, session="a", config={"recent_turns": 0})
    b = OpticalMemory.open(path, session="b", config={"recent_turns": 0})
    _during_writes(a, monkeypatch, 1, lambda: b.add("written while a renders", role="user"))
    a.add("a long turn " * 400, role="user")  # b's write, in the same thread, would wait for a lock a held
    assert _contents(b) == ["written while a renders"] and len(a) == 1
    a.close(), b.close()


def test_a_write_that_lost_a_race_is_carried_out_again_on_the_fresh_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.db"
    first = OpticalMemory.open(path, config={"recent_turns": 1})
    second = OpticalMemory.open(path)
    calls = _during_writes(first, monkeypatch, 1, lambda: second.add("from the second worker", role="user"))
    result = first.add("from the first worker", role="assistant")
    assert len(calls) == 2  # carried out, found stale at commit, carried out again
    assert result.turn_id == 1
    assert _contents(first) == _contents(second) == ["from the second worker", "from the first worker"]
    assert _contents(OpticalMemory.open(path)) == _contents(first)


def test_a_session_busy_with_other_writers_is_written_under_the_lock_at_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.db"
    first = OpticalMemory.open(path, config={"recent_turns": 1})
    second = OpticalMemory.open(path)
    n = OPTIMISTIC_TRIES - 1  # every optimistic try loses; the last try holds the lock throughout
    calls = _during_writes(first, monkeypatch, n, lambda: second.add(f"other {len(second)}", role="user"))
    first.add("mine", role="assistant")
    assert len(calls) == OPTIMISTIC_TRIES
    assert _contents(OpticalMemory.open(path)) == [*(f"other {i}" for i in range(n)), "mine"]


def test_a_failed_write_leaves_memory_and_store_as_they_were(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.db"
    memory = OpticalMemory.open(path, config={"recent_turns": 1})
    for i in range(6):
        memory.add(f"turn {i} " * 50, role="user" if i % 2 == 0 else "assistant")
    before = (_contents(memory), [p.rung for p in memory.pages()])

    def fail() -> None:
        raise RuntimeError("renderer crashed")

    _during_writes(memory, monkeypatch, 1, fail)
    with pytest.raises(RuntimeError, match="renderer crashed"):
        memory.add("lost", role="user")
    assert (_contents(memory), [p.rung for p in memory.pages()]) == before
    reopened = OpticalMemory.open(path)
    assert (_contents(reopened), [p.rung for p in reopened.pages()]) == before


def test_the_running_sums_a_context_reads_match_a_fresh_count(tmp_path: Path) -> None:
    from optical_memory.pricing.providers import get_provider

    from .helpers import turns

    path = tmp_path / "m.db"
    m = OpticalMemory.open(path, config={"recent_turns": 2, "keep_text": True})
    costs = [m._w.cost_model(get_provider(p)) for p in ("openai:gpt-4o", "anthropic:claude-sonnet-4-5")]
    before = [m._w.sealed_text(c) for c in costs]  # counted now, then kept as pages are sealed
    batch = turns(40)
    m.extend(batch[:6])
    assert m._w.pending_ids
    opened = len(m._w.pages)
    m.pin(opened, "base")  # the open page's pin holds once it is sealed
    m.extend(batch[6:])
    m.pin(3, "small")
    m.pin(5, "tiny")
    m.unpin(5)
    m.pin(6, "tiny")
    m.forget(6)  # forgetting releases the pin
    fresh = OpticalMemory.open(path)
    assert m._w.pinned == fresh._w.pinned == {p.page_id for p in fresh._w.pages if p.pinned is not None}
    assert m._w.pinned == {opened, 3}
    forgotten = {p.page_id for p in fresh._w.pages if p.rung.value == "forgotten"}
    assert m._w.forgotten == fresh._w.forgotten == forgotten == {6}
    counted = [sum(c.page_history(p.text_cost, p.text_tokens) for p in fresh._w.pages) for c in costs]
    assert [m._w.sealed_text(c) for c in costs] == [fresh._w.sealed_text(c) for c in costs] == counted
    assert before == [0, 0] and counted[0] != counted[1]  # OpenAI counts a message overhead per piece
