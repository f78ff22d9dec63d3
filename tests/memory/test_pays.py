"""A context never costs more than the plain history, on any provider, for any conversation (default config).

Checked as a property over generated conversations (prose, code, CJK, one-word turns, tool calls) and
on real public chats from ``benchmarks/data/chats``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optical_memory.conversation import load_conversation
from optical_memory.memory import OpticalMemory
from optical_memory.types import ToolCall, Turn

PROVIDERS = (
    "deepseek-ocr",
    "openai:gpt-4o",
    "openai:gpt-4.1-nano",
    "openai:gpt-5.2",
    "anthropic:claude-sonnet-4-5",
    "anthropic:claude-3-5-sonnet",
    "gemini:gemini-2.0-flash",
    "gemini:gemini-3-pro",
    "qwen3-vl",
)
CHATS = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "chats"

WORDS = ["the", "page", "memory", "页面", "记忆", "token", "x", "def", "return", "42", "😀", "UTC", "\t"]
TEXT = st.lists(st.sampled_from(WORDS), min_size=1, max_size=120).map(" ".join)
CODE = TEXT.map(lambda body: "```python\n" + body.replace(" ", "\n    ") + "\n\n\n\n```")


@st.composite
def conversations(draw: st.DrawFn) -> list[Turn]:
    turns = [Turn("system", "be brief")] if draw(st.booleans()) else []
    for i in range(draw(st.integers(10, 40))):
        kind = draw(st.sampled_from(["prose", "code", "short", "tool"]))
        role = "user" if i % 2 == 0 else "assistant"
        if kind == "tool":
            args = json.dumps({"q": draw(TEXT)[:40]})
            turns.append(Turn("assistant", "", tool_calls=(ToolCall(f"c{i}", "search", args),)))
            turns.append(Turn("tool", draw(st.one_of(TEXT, CODE)), tool_call_id=f"c{i}"))
        else:
            content = {"prose": TEXT, "code": CODE, "short": st.sampled_from(["1", "ok", "好"])}[kind]
            turns.append(Turn(role, draw(content)))
    return turns


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversations(), st.sampled_from(PROVIDERS))
def test_a_context_never_costs_more_than_the_history(turns: list[Turn], provider: str) -> None:
    m = OpticalMemory({"provider": provider})
    for turn in turns:
        m.add(turn)
    for budget in (None, "config"):
        usage = m.context(budget=budget).usage
        assert usage.context_tokens <= usage.history_text_tokens, (provider, budget, usage)


@pytest.mark.parametrize("chat", ["en_agent_swe_marshmallow_tools.json", "zh_code_sharegpt.json"])
@pytest.mark.parametrize(
    "provider", ["openai:gpt-4.1-mini", "anthropic:claude-sonnet-4-5", "gemini:gemini-3-pro"]
)
def test_real_chats_never_cost_more_than_their_history(chat: str, provider: str) -> None:
    m = OpticalMemory({"provider": provider})
    for i, turn in enumerate(load_conversation(CHATS / chat)):
        m.add(turn)
        if i % 5 == 0:
            usage = m.context(budget=None).usage
            assert usage.context_tokens <= usage.history_text_tokens
    usage = m.context().usage
    assert usage.context_tokens <= usage.history_text_tokens
    assert usage.pages_per_rung["forgotten"] == 0  # nothing was forgotten to get there
