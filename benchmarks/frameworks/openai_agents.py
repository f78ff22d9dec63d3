"""OpenAI Agents SDK ``Runner`` with ``OpticalSession`` against the SDK's own ``SQLiteSession``, in one process.

Run: python benchmarks/frameworks/openai_agents.py [--turns 300] [--out FILE]

The real 300-turn agent session is replayed through ``Runner.run`` as the agent produced it: each run of
consecutive user turns is one ``Runner.run`` input; the SDK's ``ScriptedModel`` answers with the recorded
assistant turns (a turn's text as a message item, its tool calls as ``function_call`` items), and the
recorded tool results come back through real ``FunctionTool`` objects (one per tool name, returning the
recorded result of the call id they are invoked with). A run the recording ends with tool results gets a
short closing message, so that ``Runner.run`` can finish. Bare: the session is a ``SQLiteSession`` in RAM
and the model gets the whole history as text. With the adapter: an ``OpticalSession`` in RAM priced for
openai:gpt-4o within the config's default budget (half the model's window).

The SDK reads a session once per ``Runner.run`` (the first model call); later model calls of the same run
get that input plus the run's own new items as the SDK appends them. The adapter is measured twice:
``session`` (the session alone) and ``filter`` (plus ``RunConfig(call_model_input_filter=
session.call_model_input_filter)``, which gives every model call the optical context of all that is stored).
The compression of a model call counts the optical context at its head (as priced) plus the text of the
items after it, against the whole history it carries as text; it is reported for the last model call and
for the last call of the longest run (133 of the 143 calls are one run). Time per model call: the wall
time from the previous model call (or the start of the run) to this one, which covers the session writes
(``add_items``) of the previous turn, the tool calls, the filter, and for the first call of a run the
session read (``get_items``); the median over every call, bare and with the adapter, with what the
adapter adds and the ratio.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]  # sibling scripts shadow packages
sys.path.append(str(_HERE.parents[1]))  # for benchmarks.frameworks.common, after the installed packages

import argparse  # noqa: E402
import asyncio  # noqa: E402
import itertools  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

from agents import Agent, FunctionTool, RunConfig, Runner, SQLiteSession  # noqa: E402
from agents.memory import Session  # noqa: E402
from agents.testing import ModelCall, ModelStep, ScriptedModel, assistant_message, function_call  # noqa: E402

from benchmarks.frameworks.common import (  # noqa: E402
    CLOSING,
    PROVIDER,
    SYSTEM,
    agent_history,
    median_ms,
    report,
    runs,
    text_tokens,
)
from optical_memory.context import Context  # noqa: E402
from optical_memory.integrations.openai_agents import OpticalSession, items_to_turns  # noqa: E402
from optical_memory.types import Turn  # noqa: E402

RUN = RunConfig(tracing_disabled=True)


def item_tokens(items: Sequence[Any]) -> int:
    """What Responses items cost as text in gpt-4o tokens."""
    return text_tokens(items_to_turns(items))


def steps(produced: list[Turn]) -> list[list[Any]]:
    """The model responses of one run: pending text joins the next turn of calls; a closing text ends it."""
    responses: list[list[Any]] = []
    pending: list[Any] = []
    for turn in produced:
        if turn.role != "assistant":
            continue
        if turn.content:
            pending.append(assistant_message(turn.content, item_id=f"msg_{len(responses)}_{len(pending)}"))
        if turn.tool_calls:
            calls = [function_call(c.name, c.arguments, call_id=c.id) for c in turn.tool_calls]
            responses.append([*pending, *calls])
            pending = []
    responses.append(pending or [assistant_message(CLOSING, item_id=f"msg_{len(responses)}_end")])
    return responses


def tools(history: list[Turn]) -> list[FunctionTool]:
    """One tool per recorded tool name, answering each call with its recorded result."""
    results = {t.tool_call_id: t.content for t in history if t.role == "tool"}

    async def invoke(ctx: Any, arguments: str) -> str:
        return results[ctx.tool_call_id]

    names = sorted({c.name for t in history for c in t.tool_calls})
    schema = {"type": "object", "properties": {}, "additionalProperties": True}
    return [
        FunctionTool(name, f"The {name} tool.", schema, invoke, strict_json_schema=False) for name in names
    ]


@dataclass
class Replay:
    """What one replay measured."""

    per_call: list[float] = field(default_factory=list)
    """Seconds per model call (see the module docstring)."""
    reads: list[float] = field(default_factory=list)
    """Seconds per session read (``get_items``)."""
    calls: list[ModelCall] = field(default_factory=list)
    """Every model call, with the input the model got."""
    contexts: list[Context | None] = field(default_factory=list)
    """The session's optical context in force at each model call (None for a bare session)."""
    run_ends: list[int] = field(default_factory=list)
    """The index of the last model call of each run."""


async def replay(history: list[Turn], session: Session, run_config: RunConfig, out: Replay) -> None:
    """Replay the history through ``Runner.run`` into ``out`` (returned apart: Python 3.11's ``asyncio.run``
    formats the repr of its coroutine's result when it restores the SIGINT handler)."""
    stamps: list[float] = []

    def stamp(call: ModelCall, output: list[Any]) -> list[Any]:
        stamps.append(time.perf_counter())
        out.contexts.append(getattr(session, "last_context", None))
        return output

    plan = runs(history)
    script = [
        ModelStep.respond(lambda call, output=output: stamp(call, output))
        for _, produced in plan
        for output in steps(produced)
    ]
    model = ScriptedModel(script)
    agent = Agent(name="coder", instructions=SYSTEM, model=model, tools=tools(history))
    for given, _ in plan:
        start = time.perf_counter()
        await session.get_items()
        out.reads.append(time.perf_counter() - start)
        first = len(stamps)
        start = time.perf_counter()
        items: list[Any] = [{"role": "user", "content": t.content} for t in given]
        await Runner.run(agent, items, session=session, run_config=run_config, max_turns=10_000)
        end = time.perf_counter()
        marks = [start, *stamps[first:]]
        gaps = [b - a for a, b in itertools.pairwise(marks)]
        gaps[-1] += end - marks[-1]  # the last save of the run belongs to its last call
        out.per_call += gaps
        out.run_ends.append(len(stamps) - 1)
    model.assert_complete()
    out.calls = list(model.calls)


def cost(call: ModelCall, context: Context | None) -> tuple[int, int]:
    """What a model call's input costs in gpt-4o tokens, and what the history it carries costs as text.

    The optical context at its head is priced as the memory prices it; the items after it as text.
    """
    system = text_tokens([Turn("system", SYSTEM)])
    items = list(call.input)
    if context is None or items[: len(context.messages)] != context.messages:
        tokens = system + item_tokens(items)
        return tokens, tokens
    tail = item_tokens(items[len(context.messages) :])
    usage = context.usage
    return system + usage.context_tokens + tail, system + usage.history_text_tokens + tail


def figures(name: str, bare: Replay, run: Replay) -> dict[str, Any]:
    """The compression at the last call of the replay and of its longest run, and the time per call."""
    longest = max(
        range(len(run.run_ends)), key=lambda r: run.run_ends[r] - (run.run_ends[r - 1] if r else -1)
    )
    row: dict[str, Any] = {}
    for label, index in (("last_call", len(run.calls) - 1), ("longest_run_end", run.run_ends[longest])):
        tokens, history_tokens = cost(run.calls[index], run.contexts[index])
        bare_tokens, _ = cost(bare.calls[index], None)
        row[f"{name}_{label}_context_tokens"] = tokens
        row[f"{name}_{label}_history_text_tokens"] = history_tokens
        row[f"{name}_{label}_bare_tokens"] = bare_tokens
        row[f"{name}_{label}_compression"] = round(history_tokens / tokens, 2)
        row[f"{name}_{label}_page_images"] = sum(
            1
            for item in run.calls[index].input
            if isinstance(item.get("content"), list)
            for part in item["content"]
            if part.get("type") == "input_image"
        )
    bare_ms, ms = median_ms(bare.per_call), median_ms(run.per_call)
    row[f"{name}_ms_per_call"] = round(ms, 2)
    row[f"{name}_added_ms_per_call"] = round(ms - bare_ms, 2)
    row[f"{name}_ms_ratio"] = round(ms / bare_ms, 2)
    row[f"{name}_get_items_ms"] = round(median_ms(run.reads), 2)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    history = agent_history(args.turns)
    plan = runs(history)

    bare_session = SQLiteSession("bench")
    bare = Replay()
    asyncio.run(replay(history, bare_session, RUN, bare))
    bare_items = len(asyncio.run(bare_session.get_items()))
    bare_session.close()
    row: dict[str, Any] = {
        "provider": PROVIDER,
        "turns": len(history),
        "runs": len(plan),
        "model_calls": len(bare.calls),
        "raw_items": bare_items,
        "calls_per_run": [end - (bare.run_ends[r - 1] if r else -1) for r, end in enumerate(bare.run_ends)],
        "bare_ms_per_call": round(median_ms(bare.per_call), 2),
        "bare_get_items_ms": round(median_ms(bare.reads), 2),
    }
    for name, with_filter in (("session", False), ("filter", True)):
        session = OpticalSession("bench", config={"provider": PROVIDER})
        run_config = RUN
        if with_filter:
            run_config = RunConfig(
                tracing_disabled=True, call_model_input_filter=session.call_model_input_filter
            )
        measured = Replay()
        asyncio.run(replay(history, session, run_config, measured))
        assert len(asyncio.run(session.inner.get_items())) == bare_items  # the raw history is all there
        row.update(figures(name, bare, measured))
        context = session.last_context
        assert context is not None
        row[f"{name}_budget"] = context.usage.budget
        row[f"{name}_pages_per_rung"] = dict(context.usage.pages_per_rung)
        session.close()
    report("openai_agents", row, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
