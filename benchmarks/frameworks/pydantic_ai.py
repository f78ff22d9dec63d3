"""Pydantic AI ``Agent`` runs with the ``OpticalHistory`` capability against bare runs, in one process.

Run: python benchmarks/frameworks/pydantic_ai.py [--turns 300] [--out FILE]

The real 300-turn agent session is replayed through ``Agent.run`` as the agent produced it: each run of
consecutive user turns is one run's prompt, with the previous run's ``all_messages()`` as
``message_history``; Pydantic AI's ``FunctionModel`` answers with the recorded assistant turns (a turn's
text as a ``TextPart``, its tool calls as ``ToolCallPart`` with the recorded ids and arguments), and the
recorded tool results come back through real tools (one per tool name, returning the recorded result of
the call id they are invoked with). A run the recording ends with tool results gets a short closing
answer, so that the run can finish. Bare: the model gets the whole history as text. With the adapter:
``OpticalHistory`` in RAM priced for openai:gpt-4o within the config's default budget (half the model's
window), recent window 8 turns.

Compression at a model call: what the history the model is given would cost as plain text, over what the
model is sent, both in gpt-4o tokens plus the system prompt (the optical context as the memory prices it:
pages at the provider's image price and the recent turns as text). Time per model call: the wall time from
the previous model call (or the start of the run) to this one, which covers the tool calls and, with the
adapter, the capability's work (storing the new messages, laying out pages, building the context); the
median over every call, bare and with the adapter, with what the adapter adds and the ratio.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]  # this script shadows pydantic_ai
sys.path.append(str(_HERE.parents[1]))  # for benchmarks.frameworks.common, after the installed packages

import argparse  # noqa: E402
import asyncio  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import pydantic_ai.models  # noqa: E402
from pydantic_ai import Agent, RunContext, Tool  # noqa: E402
from pydantic_ai.messages import (  # noqa: E402
    BinaryContent,
    ModelMessage,
    ModelResponse,
    TextPart,
    ToolCallPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel  # noqa: E402
from pydantic_ai.usage import UsageLimits  # noqa: E402

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
from optical_memory.integrations.pydantic_ai import OpticalHistory, to_turns  # noqa: E402
from optical_memory.types import Turn  # noqa: E402

NO_LIMIT = UsageLimits(request_limit=None)


def message_tokens(messages: list[ModelMessage]) -> int:
    """What messages cost as text in gpt-4o tokens."""
    return text_tokens(to_turns(messages))


def responses(produced: list[Turn]) -> list[ModelResponse]:
    """The model responses of one run: pending text joins the next turn of calls; a closing text ends it."""
    out: list[ModelResponse] = []
    pending: list[Any] = []
    for turn in produced:
        if turn.role != "assistant":
            continue
        if turn.content:
            pending.append(TextPart(turn.content))
        if turn.tool_calls:
            calls = [ToolCallPart(c.name, c.arguments, tool_call_id=c.id) for c in turn.tool_calls]
            out.append(ModelResponse(parts=[*pending, *calls]))
            pending = []
    out.append(ModelResponse(parts=pending or [TextPart(CLOSING)]))
    return out


def tools(history: list[Turn]) -> list[Tool[Any]]:
    """One tool per recorded tool name, answering each call with its recorded result."""
    results = {t.tool_call_id: t.content for t in history if t.role == "tool"}

    def invoke(ctx: RunContext[Any], **arguments: Any) -> str:
        return results[str(ctx.tool_call_id)]

    names = sorted({c.name for t in history for c in t.tool_calls})
    schema = {"type": "object", "properties": {}, "additionalProperties": True}
    return [Tool.from_schema(invoke, name, f"The {name} tool.", schema, takes_ctx=True) for name in names]


@dataclass(repr=False)  # asyncio.run (3.11) may repr its result: the page images would make that slow
class Replay:
    """What one replay measured."""

    per_call: list[float] = field(default_factory=list)
    """Seconds per model call (see the module docstring)."""
    calls: list[list[ModelMessage]] = field(default_factory=list)
    """The messages of every model call."""
    contexts: list[Context | None] = field(default_factory=list)
    """The optical context of each model call (None for a bare run)."""
    run_ends: list[int] = field(default_factory=list)
    """The index of the last model call of each run."""
    history: list[ModelMessage] = field(default_factory=list)
    """The last run's ``all_messages()``."""


async def replay(history: list[Turn], capability: OpticalHistory | None) -> Replay:
    out = Replay()
    stamps: list[float] = []
    plan = runs(history)
    script: Iterator[ModelResponse] = iter([r for _, produced in plan for r in responses(produced)])

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        stamps.append(time.perf_counter())
        out.calls.append(messages)
        out.contexts.append(None if capability is None else capability.last_context)
        return next(script)

    capabilities = [] if capability is None else [capability]
    agent = Agent(FunctionModel(model), system_prompt=SYSTEM, tools=tools(history), capabilities=capabilities)
    messages: list[ModelMessage] = []
    for given, _ in plan:
        first = len(stamps)
        start = time.perf_counter()
        prompt = [t.content for t in given]
        result = await agent.run(prompt, message_history=messages, usage_limits=NO_LIMIT)
        end = time.perf_counter()
        messages = result.all_messages()
        marks = [start, *stamps[first:]]
        gaps = [b - a for a, b in itertools.pairwise(marks)]
        gaps[-1] += end - marks[-1]  # the end of the run belongs to its last call
        out.per_call += gaps
        out.run_ends.append(len(stamps) - 1)
    assert next(script, None) is None
    out.history = messages
    return out


def cost(messages: list[ModelMessage], context: Context | None) -> tuple[int, int]:
    """What a model call's input costs in gpt-4o tokens, and what the history it carries costs as text."""
    system = text_tokens([Turn("system", SYSTEM)])
    if context is None:
        tokens = system + message_tokens(messages)
        return tokens, tokens
    usage = context.usage
    return system + usage.context_tokens, system + usage.history_text_tokens


def page_images(messages: list[ModelMessage]) -> int:
    return sum(
        isinstance(x, BinaryContent)
        for p in messages[0].parts
        if isinstance(p, UserPromptPart) and not isinstance(p.content, str)
        for x in p.content
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    pydantic_ai.models.ALLOW_MODEL_REQUESTS = False
    history = agent_history(args.turns)
    plan = runs(history)

    bare = asyncio.run(replay(history, None))
    capability = OpticalHistory(None, config={"provider": PROVIDER})
    run = asyncio.run(replay(history, capability))
    assert len(run.history) == len(bare.history)  # all_messages() keeps the whole history
    assert json.dumps(to_turns(run.history)) == json.dumps(to_turns(bare.history))
    row: dict[str, Any] = {
        "provider": PROVIDER,
        "turns": len(history),
        "runs": len(plan),
        "model_calls": len(bare.calls),
        "messages": len(bare.history),
        "calls_per_run": [end - (bare.run_ends[r - 1] if r else -1) for r, end in enumerate(bare.run_ends)],
    }
    longest = max(
        range(len(run.run_ends)), key=lambda r: run.run_ends[r] - (run.run_ends[r - 1] if r else -1)
    )
    for label, index in (("last_call", len(run.calls) - 1), ("longest_run_end", run.run_ends[longest])):
        tokens, history_tokens = cost(run.calls[index], run.contexts[index])
        bare_tokens, _ = cost(bare.calls[index], None)
        row[f"{label}_context_tokens"] = tokens
        row[f"{label}_history_text_tokens"] = history_tokens
        row[f"{label}_bare_tokens"] = bare_tokens
        row[f"{label}_compression"] = round(history_tokens / tokens, 2)
        row[f"{label}_page_images"] = page_images(run.calls[index])
    bare_ms, ms = median_ms(bare.per_call), median_ms(run.per_call)
    row["bare_ms_per_call"] = round(bare_ms, 2)
    row["ms_per_call"] = round(ms, 2)
    row["added_ms_per_call"] = round(ms - bare_ms, 2)
    row["ms_ratio"] = round(ms / bare_ms, 2)
    context = capability.last_context
    assert context is not None
    row["budget"] = context.usage.budget
    row["pages_per_rung"] = dict(context.usage.pages_per_rung)
    capability.close()
    report("pydantic_ai", row, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
