"""A LlamaIndex agent whose older turns reach the model as page images (no network, no API key).

Run: python examples/04_llamaindex.py

LlamaIndex's ``Memory`` keeps the recent messages as text in its chat store (SQLite here) and flushes the
older ones into ``OpticalMemoryBlock``, which lays them out on pages (in its own SQLite file) and hands
them back to every model call as ``ImageBlock``s, priced for gpt-4o within a token budget. The model is
LlamaIndex's ``MockFunctionCallingLLM`` with a small script: each question gets a real tool call, then
an answer. Swap in ``llama_index.llms.openai.OpenAI(model="gpt-4o")`` to talk to a real model.
"""

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ToolCallBlock
from llama_index.core.llms import ChatMessage, ImageBlock, MockFunctionCallingLLM
from llama_index.core.memory import Memory
from llama_index.core.tools import FunctionTool

from optical_memory.integrations.llamaindex import OpticalMemoryBlock

BUDGET = 6000  # gpt-4o tokens the pages may cost on each call
seen: list[list[ChatMessage]] = []


def disk_usage(folder: str) -> str:
    """Report the disk usage of a folder."""
    return "\n".join(f"{(i * 7919) % 900 + 100}M\t{folder}/part{i}" for i in range(12))


def model(messages: list[ChatMessage], **kwargs: Any) -> ChatMessage:
    """The fake model: call the tool for a question, then answer from its result."""
    seen.append(messages)
    last = messages[-1]
    if last.role.value == "tool":
        return ChatMessage(role="assistant", content="The largest part is part7. " + "Details follow. " * 20)
    folder = (last.content or "").split()[-3]  # "Question 3: which part of /data/3 is largest?"
    call = ToolCallBlock(
        tool_call_id=f"call_{len(seen)}", tool_name="disk_usage", tool_kwargs={"folder": folder}
    )
    return ChatMessage(role="assistant", blocks=[call])


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        block = OpticalMemoryBlock(
            path=Path(folder) / "optical.db", config={"provider": "openai:gpt-4o"}, budget=BUDGET
        )
        memory = Memory.from_defaults(
            session_id="demo",
            token_limit=3000,  # Memory's own estimate; the short-term FIFO holds about half of it
            chat_history_token_ratio=0.5,
            memory_blocks=[block],
            async_database_uri=f"sqlite+aiosqlite:///{Path(folder) / 'chat.db'}",
        )
        agent = FunctionAgent(
            tools=[FunctionTool.from_defaults(disk_usage)],
            llm=MockFunctionCallingLLM(response_generator=model),
            system_prompt="You are a storage assistant.",
        )
        for i in range(16):
            await agent.run(f"Question {i}: which part of /data/{i} is largest?", memory=memory)

        last, context = seen[-1], block.last_context
        assert context is not None
        usage = context.usage
        labels = [
            b.text for m in last for b in m.blocks if b.block_type == "text" and b.text.startswith("page ")
        ]
        n_images = sum(isinstance(b, ImageBlock) for m in last for b in m.blocks)
        shown = "; ".join(labels)
        print(f"the model's last input: {len(last)} messages, with {n_images} page images ({shown})")
        print(
            f"the pages cost {usage.context_tokens:,} gpt-4o tokens (budget {BUDGET:,}) instead of "
            f"{usage.history_text_tokens:,} as text; the recent messages follow as text"
        )
        history = await memory.aget_all()
        print(
            f"the chat store holds all {len(history)} messages; {len(block.memory_for('demo'))} of them are on pages"
        )
        block.close()


if __name__ == "__main__":
    asyncio.run(main())
