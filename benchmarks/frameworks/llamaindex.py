"""LlamaIndex ``Memory`` with ``OpticalMemoryBlock`` against bare ``Memory``, in one process.

Run: python benchmarks/frameworks/llamaindex.py [--turns 300] [--token-limit 8000] [--out FILE]

The real 300-turn agent session is replayed through LlamaIndex's ``Memory`` (its default SQLite chat store,
in RAM) as an agent uses it: before each assistant turn (one model call) the messages new since the last
call are put with ``Memory.aput_messages`` (which flushes the oldest past ``token_limit *
chat_history_token_ratio`` into the memory blocks), then ``Memory.aget()`` builds the model's input and
LlamaIndex's ``MockLLM`` is called with it (``achat``); the recorded assistant turn is what gets stored.
Bare ``Memory`` (no block) drops what it flushes; with the block, the flushed turns come back as page
images priced for openai:gpt-4o within the config's default budget (half the model's window).

Reported: the compression of the last model call in gpt-4o tokens (the whole history as text over what
the call carried: the block's priced context plus the short-term messages as text, 3 tokens of overhead
per message), and the median milliseconds per model call (puts, aget and the fake model), bare and with
the block, with what the block adds and the ratio; and the median ``aget`` alone.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]  # sibling scripts shadow packages
sys.path.append(str(_HERE.parents[1]))  # for benchmarks.frameworks.common, after the installed packages

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402

from llama_index.core.base.llms.types import ChatMessage, ContentBlock, TextBlock, ToolCallBlock  # noqa: E402
from llama_index.core.llms import MockLLM  # noqa: E402
from llama_index.core.memory import Memory  # noqa: E402

from benchmarks.frameworks.common import PROVIDER, SYSTEM, agent_history, median_ms, report, text_tokens  # noqa: E402
from optical_memory.integrations.llamaindex import OpticalMemoryBlock, to_openai_turns  # noqa: E402
from optical_memory.types import Turn  # noqa: E402


def message(turn: Turn) -> ChatMessage:
    """A turn as the ChatMessage a LlamaIndex agent stores."""
    blocks: list[ContentBlock] = []
    if turn.content:
        blocks.append(TextBlock(text=turn.content))
    for call in turn.tool_calls:
        args = json.loads(call.arguments)
        kwargs = args if isinstance(args, dict) else call.arguments
        blocks.append(ToolCallBlock(tool_call_id=call.id, tool_name=call.name, tool_kwargs=kwargs))
    extra = {"tool_call_id": turn.tool_call_id} if turn.tool_call_id else {}
    return ChatMessage(role=turn.role, blocks=blocks, additional_kwargs=extra)


def chat_tokens(messages: Sequence[ChatMessage]) -> int:
    """What ``messages`` cost as text in gpt-4o tokens."""
    return text_tokens(to_openai_turns(messages))


class Agent:
    """One ``Memory`` (with or without the block) and the fake model, timed per model call."""

    def __init__(self, token_limit: int, block: OpticalMemoryBlock | None) -> None:
        self.memory = Memory.from_defaults(
            session_id="bench",
            token_limit=token_limit,
            chat_history_token_ratio=0.5,
            memory_blocks=[] if block is None else [block],
        )
        self.llm = MockLLM(max_tokens=8)
        self.per_call: list[float] = []
        self.per_get: list[float] = []
        self.given: list[ChatMessage] = []

    async def call(self, new: list[ChatMessage]) -> None:
        """Put the messages new since the last call, build the input with ``aget`` and call the model."""
        start = time.perf_counter()
        await self.memory.aput_messages(new)
        got = time.perf_counter()
        self.given = [ChatMessage(role="system", content=SYSTEM), *await self.memory.aget()]
        got_end = time.perf_counter()
        await self.llm.achat(self.given)
        self.per_call.append(time.perf_counter() - start)
        self.per_get.append(got_end - got)


async def replay(history: list[Turn], bare: Agent, optical: Agent) -> None:
    """Both agents in lockstep (alternating which goes first), so machine load hits both alike."""
    pending: list[Turn] = []
    for i, turn in enumerate(history):
        if turn.role == "assistant" and i > 0:  # the model is called to produce this turn
            order = (bare, optical) if len(bare.per_call) % 2 == 0 else (optical, bare)
            for agent in order:
                await agent.call([message(t) for t in pending])  # each its own message objects
            pending = []
        pending.append(turn)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--token-limit", type=int, default=8000, help="Memory's token_limit")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    history = agent_history(args.turns)
    block = OpticalMemoryBlock(config={"provider": PROVIDER})
    bare, optical = Agent(args.token_limit, None), Agent(args.token_limit, block)
    asyncio.run(replay(history, bare, optical))
    context = block.last_context
    assert context is not None
    usage = context.usage
    # the last call: system prompt + the block's messages (priced by the block) + the short-term messages
    last = optical.given
    short_term = last[1 + len(context.messages) :]
    system_tokens = chat_tokens(last[:1])
    context_tokens = system_tokens + usage.context_tokens + chat_tokens(short_term)
    last_call = max(i for i, t in enumerate(history) if t.role == "assistant")
    whole = [message(t) for t in history[:last_call]]  # everything stored before the last call
    history_tokens = system_tokens + chat_tokens(whole)
    bare_ms, opt_ms = median_ms(bare.per_call), median_ms(optical.per_call)
    row = {
        "provider": PROVIDER,
        "turns": len(history),
        "model_calls": len(optical.per_call),
        "token_limit": args.token_limit,
        "flushed_turns": len(block.memory_for("bench")),
        "history_text_tokens": history_tokens,
        "context_tokens": context_tokens,
        "compression": round(history_tokens / context_tokens, 2),
        "block_history_text_tokens": usage.history_text_tokens,
        "block_context_tokens": usage.context_tokens,
        "block_compression": round(usage.ratio, 2),
        "budget": usage.budget,
        "page_images": sum(1 for m in last for b in m.blocks if b.block_type == "image"),
        "pages_per_rung": dict(usage.pages_per_rung),
        "bare_context_tokens": chat_tokens(bare.given),
        "bare_ms_per_call": round(bare_ms, 2),
        "adapter_ms_per_call": round(opt_ms, 2),
        "added_ms_per_call": round(opt_ms - bare_ms, 2),
        "ms_ratio": round(opt_ms / bare_ms, 2),
        "bare_aget_ms": round(median_ms(bare.per_get), 2),
        "adapter_aget_ms": round(median_ms(optical.per_get), 2),
    }
    block.close()
    report("llamaindex", row, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
