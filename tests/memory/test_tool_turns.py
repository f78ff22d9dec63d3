"""Agent turns in a memory: tool calls kept through the store, reopen and every format; calls wait for
their results in the window; bad tool input is refused and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from optical_memory.errors import InputError
from optical_memory.memory import OpticalMemory
from optical_memory.types import ToolCall, Turn


def agent_session(n: int) -> list[dict[str, Any]]:
    """A user request, an assistant tool call and its result, repeated (OpenAI chat messages)."""
    out: list[dict[str, Any]] = [{"role": "system", "content": "You are a coding agent."}]
    for i in range(n):
        out.append(
            {"role": "user", "content": f"Step {i}: list the files in dir{i} and tell me the largest."}
        )
        call = {
            "id": f"call_{i}",
            "type": "function",
            "function": {"name": "bash", "arguments": json.dumps({"cmd": f"ls -l dir{i}"})},
        }
        out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        listing = "\n".join(f"-rw-r--r-- 1 me me {j * 1000 + i} file{j}.py" for j in range(1 + i % 6))
        out.append({"role": "tool", "tool_call_id": f"call_{i}", "content": listing})
        out.append({"role": "assistant", "content": f"The largest file in dir{i} is file{i % 6}.py."})
    return out


def test_tool_calls_survive_the_store_and_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "agent.db"
    with OpticalMemory.open(path, config={"recent_turns": 4, "keep_text": True}) as m:
        for message in agent_session(12):
            m.add(message)
        before = m.context(provider="openai:gpt-4o", budget=None).messages
    with OpticalMemory.open(path) as m:
        rec = m._w.turns[2]
        assert rec.tool_calls == (ToolCall("call_0", "bash", '{"cmd": "ls -l dir0"}'),)
        assert m._w.turns[3].tool_call_id == "call_0" and m._w.turns[3].name == "bash"  # name from the call
        assert m.context(provider="openai:gpt-4o", budget=None).messages == before
        tail = [msg for msg in before if msg["role"] in ("assistant", "tool")][-3:]
        assert tail[0]["tool_calls"][0]["id"] == "call_11" and tail[1]["tool_call_id"] == "call_11"


def test_a_call_never_leaves_the_window_without_its_results() -> None:
    m = OpticalMemory({"recent_turns": 0})
    m.add("list files", role="user")
    m.add(
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "c1", "function": {"name": "ls", "arguments": "{}"}}],
        }
    )
    assert list(m._w.window) == [1]  # the call waits for its result
    m.add({"role": "tool", "tool_call_id": "c1", "content": "a.py b.py"})
    assert list(m._w.window) == []
    (page,) = m.pages()
    assert [s.turn for s in page.spans] == [0, 1, 2]
    assert "→ ls({}) ⇒ a.py b.py" in m._w.pending().text


def test_an_unanswered_call_leaves_once_newer_turns_come() -> None:
    m = OpticalMemory({"recent_turns": 1})
    m.add(
        {
            "role": "assistant",
            "content": "trying",
            "tool_calls": [{"id": "c1", "function": {"name": "ls", "arguments": "{}"}}],
        }
    )
    m.add("never mind", role="user")
    m.add("ok", role="assistant")
    assert list(m._w.window) == [2]


@pytest.mark.parametrize(
    ("turn", "message"),
    [
        ({"role": "tool", "tool_call_id": "nope", "content": "x"}, "no assistant turn"),
        (
            {
                "role": "assistant",
                "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{oops"}}],
            },
            "not valid JSON",
        ),
        (
            {"role": "user", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{}"}}]},
            "only assistant",
        ),
        ({"role": "assistant", "tool_calls": [{"id": "", "function": {"name": "f"}}]}, "non-empty string id"),
        ({"role": "user", "content": "x", "tool_call_id": "c"}, "only tool turns"),
    ],
)
def test_bad_tool_input_is_refused_and_changes_nothing(
    turn: dict[str, Any], message: str, tmp_path: Path
) -> None:
    with OpticalMemory.open(tmp_path / "m.db", config={"recent_turns": 1}) as m:
        for msg in agent_session(3):
            m.add(msg)
        before = (len(m), m.pages(), m.context(budget=None).usage)
        with pytest.raises(InputError, match=message):
            m.add(turn)
        assert (len(m), m.pages(), m.context(budget=None).usage) == before
    with OpticalMemory.open(tmp_path / "m.db") as m:
        assert len(m) == before[0]


def test_sharegpt_function_calls_become_tool_calls() -> None:
    from optical_memory.conversation import turns_from_json

    turns = turns_from_json(
        {
            "conversations": [
                {"from": "human", "value": "area of a 3x4 rectangle?"},
                {"from": "function_call", "value": '{"name": "area", "arguments": {"w": 3, "h": 4}}'},
                {"from": "observation", "value": '{"area": 12}'},
                {"from": "gpt", "value": "12."},
            ]
        }
    )
    assert turns[1] == Turn("assistant", "", tool_calls=(ToolCall("call_1", "area", '{"w": 3, "h": 4}'),))
    assert turns[2].tool_call_id == "call_1" and turns[2].role == "tool"
    m = OpticalMemory({"recent_turns": 0})
    for t in turns:
        m.add(t)
    assert len(m) == 4
