"""What the per-framework benchmarks share: a real 300-turn agent history and how results are printed.

Each ``benchmarks/frameworks/<framework>.py`` replays :func:`agent_history` through the framework's real
runtime with its own fake model twice in one process, bare and with the optical-memory adapter, and reports
the compression in the target provider's tokens and the median time per model call the adapter adds.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from optical_memory.conversation import load_conversation
from optical_memory.types import Turn

ROOT = Path(__file__).resolve().parents[2]
AGENT_CHAT = ROOT / "benchmarks" / "data" / "chats" / "en_agent_claude_code_spotter.json"
"""A real Claude Code session (466 messages, 215 with tool calls; see benchmarks/data/SOURCES.md)."""


def agent_history(n: int = 300) -> list[Turn]:
    """The first ``n`` or so turns of the real agent session, cut where no tool call waits for a result."""
    turns = [t for t in load_conversation(AGENT_CHAT) if t.role != "system"]
    end = min(n, len(turns))
    while end < len(turns) and turns[end].role == "tool":  # keep each call with all its results
        end += 1
    return turns[:end]


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
