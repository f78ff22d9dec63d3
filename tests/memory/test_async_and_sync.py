"""The async calls run on worker threads (50 concurrent adds on one loop lose nothing), ``sync`` adds only
what a handed-over history has beyond the stored turns, and ``pop`` / ``clear`` undo."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from optical_memory.errors import InputError
from optical_memory.memory import OpticalMemory
from tests.memory.helpers import turns
from tests.memory.test_tool_turns import agent_session


def test_fifty_concurrent_aadds_on_one_loop_keep_every_turn(tmp_path: Path) -> None:
    memory = OpticalMemory.open(tmp_path / "m.db", config={"recent_turns": 4, "keep_text": True})
    ticks = 0

    async def ticker(stop: asyncio.Event) -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    async def main() -> None:
        stop = asyncio.Event()
        beat = asyncio.create_task(ticker(stop))
        results = await asyncio.gather(*(memory.aadd(t) for t in turns(50)))
        stop.set()
        await beat
        assert sorted(r.turn_id for r in results) == list(range(50))
        pages = await memory.apages()
        assert pages and (await memory.acontext(budget=None)).usage.image_tokens > 0
        reading = await memory.arecall(pages[0].page_id, reader="exact")
        assert reading.text

    asyncio.run(main())
    assert ticks > 50  # the loop kept running while turns were laid out
    memory.close()
    with OpticalMemory.open(tmp_path / "m.db") as reopened:
        assert len(reopened) == 50


def test_sync_adds_only_the_new_turns_and_refuses_a_rewritten_history() -> None:
    history = agent_session(6)[1:]
    memory = OpticalMemory({"recent_turns": 4})
    assert len(memory.sync(history[:10])) == 10
    added = memory.sync(history)
    assert [r.turn_id for r in added] == list(range(10, len(history)))
    assert memory.sync(history) == []
    pages = len(memory.pages())
    rewritten = [*history[:-1], {"role": "user", "content": "edited"}]
    with pytest.raises(InputError, match="rewritten upstream"):
        memory.sync(rewritten)
    with pytest.raises(InputError, match="removed upstream"):
        memory.sync(history[:3])
    assert len(memory) == len(history) and len(memory.pages()) == pages


def test_pop_undoes_recent_turns_only_and_clear_empties_the_session(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with OpticalMemory.open(path, config={"recent_turns": 3}) as memory:
        for t in agent_session(4)[1:]:
            memory.add(t)
        n = len(memory)
        last = memory.pop()
        assert last.role == "assistant" and len(memory) == n - 1
        result = memory.pop()  # a tool result: its call can be answered again afterwards
        assert result.tool_call_id == "call_3"
        memory.add({"role": "tool", "tool_call_id": "call_3", "content": "again"})
        with pytest.raises(InputError, match="already laid out on a page"):
            for _ in range(4):
                memory.pop()
    with OpticalMemory.open(path) as memory:
        assert len(memory) == n - 3  # what was popped stays popped after a reopen
        memory.clear()
        assert len(memory) == 0 and memory.pages() == []
        memory.add("fresh start", role="user")
    with OpticalMemory.open(path) as memory:
        assert len(memory) == 1 and memory.config.recent_turns == 3
    with pytest.raises(InputError, match="no turn"):
        OpticalMemory().pop()


def test_extend_is_all_or_nothing_and_a_result_may_answer_a_call_of_the_batch() -> None:
    memory = OpticalMemory({"recent_turns": 4})
    session = agent_session(3)[1:]
    assert len(memory.extend(session[:6])) == 6
    bad = [*session[6:], {"role": "tool", "tool_call_id": "call_99", "content": "x"}]
    with pytest.raises(InputError, match="call_99"):
        memory.extend(bad)
    assert len(memory) == 6  # nothing of the refused batch was stored
    memory.extend(session[6:])
    assert memory._w.turns[-2].name == "bash"  # a result takes its call's name from the same batch
