"""What the per-framework benchmarks share: a real 300-turn agent history and how results are printed.

Each ``benchmarks/frameworks/<framework>.py`` replays :func:`agent_history` through the framework's real
runtime with its own fake model twice in one process, bare and with the optical-memory adapter, and reports
the compression in the target provider's tokens and the median time per model call the adapter adds.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from optical_memory.context import turn_text_tokens
from optical_memory.conversation import load_conversation
from optical_memory.types import Turn, as_turn

ROOT = Path(__file__).resolve().parents[2]
AGENT_CHAT = ROOT / "benchmarks" / "data" / "chats" / "en_agent_claude_code_spotter.json"
"""A real Claude Code session (466 messages, 215 with tool calls; see benchmarks/data/SOURCES.md)."""
PROVIDER = "openai:gpt-4o"
"""The target the benchmarks price for."""
SYSTEM = "You are a coding agent working in the user's repository."
"""The agent's instructions in the replays."""
OVERHEAD = 3
"""OpenAI chat tokens per message beyond its content."""
CLOSING = "(done for now)"
"""What a scripted model answers once its recorded turns of a run are used up."""


def agent_history(n: int = 300) -> list[Turn]:
    """The first ``n`` or so turns of the real agent session, cut where no tool call waits for a result."""
    turns = [t for t in load_conversation(AGENT_CHAT) if t.role != "system"]
    end = min(n, len(turns))
    while end < len(turns) and turns[end].role == "tool":  # keep each call with all its results
        end += 1
    return turns[:end]


def text_tokens(turns: Iterable[Turn | Mapping[str, Any]]) -> int:
    """What turns cost sent as text in gpt-4o tokens (o200k_base), with the per-message overhead."""
    total = 0
    for turn in turns:
        t = as_turn(turn)
        total += turn_text_tokens(t.content, t.tool_calls, "o200k_base") + OVERHEAD
    return total


def runs(history: list[Turn]) -> list[tuple[list[Turn], list[Turn]]]:
    """The history as agent runs: (the user turns given as input, the turns the run produces)."""
    out: list[tuple[list[Turn], list[Turn]]] = []
    for turn in history:
        if turn.role == "user" and (not out or out[-1][1]):
            out.append(([turn], []))
        elif turn.role == "user":
            out[-1][0].append(turn)
        else:
            out[-1][1].append(turn)
    return out


def median_ms(seconds: list[float]) -> float:
    """The median of ``seconds``, in milliseconds."""
    return statistics.median(seconds) * 1000


def report(framework: str, row: dict[str, Any], out: Path | None = None) -> None:
    """Print one framework's figures as a line of JSON (and write them to ``out`` when given)."""
    line = json.dumps({"framework": framework, **row}, sort_keys=True)
    print(line)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(line + "\n")
