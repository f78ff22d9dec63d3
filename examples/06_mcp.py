"""Optical memory as an MCP server: an MCP client adds an agent's turns and gets back the optical context.

Run: python examples/06_mcp.py [memory.db]

The server is built in-process here and the ``mcp`` SDK's own client talks to it; MCP clients such as
Claude Desktop launch the same server over stdio instead::

    optical-memory mcp --db memory.db --provider openai:gpt-4o

    {"mcpServers": {"optical-memory": {"command": "optical-memory",
                                       "args": ["mcp", "--db", "memory.db", "--provider", "openai:gpt-4o"]}}}

A coding agent's conversation (requests, ``bash`` tool calls and their results, answers) is added turn by
turn with ``add_turn``; ``get_context`` returns the recent turns as text blocks and the older turns as page
images (PNG image blocks), within a token budget, plus a usage summary; ``list_pages`` and ``recall_page``
show what the pages hold. No model and no network: pip install 'optical-memory[mcp]'.
"""

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import mcp

from optical_memory.integrations.mcp import build_server

BUDGET = 3000


def agent_turns(steps: int) -> list[dict[str, Any]]:
    """add_turn arguments for a coding agent's session: a request, a tool call, its result, an answer."""
    turns: list[dict[str, Any]] = [{"role": "system", "content": "You are a coding agent."}]
    for i in range(steps):
        listing = "\n".join(f"-rw-r--r-- 1 me me {j * 1000 + i} file{j}.py" for j in range(1 + i % 6))
        call = {"id": f"call_{i}", "name": "bash", "arguments": json.dumps({"cmd": f"ls -l dir{i}"})}
        turns += [
            {"role": "user", "content": f"Step {i}: list the files in dir{i} and tell me the largest."},
            {"role": "assistant", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": f"call_{i}", "content": listing},
            {"role": "assistant", "content": f"The largest file in dir{i} is file{i % 6}.py."},
        ]
    return turns


async def run(db: Path) -> None:
    config = {"provider": "openai:gpt-4o", "recent_turns": 6, "keep_text": True}
    server = build_server(db, config=config)
    async with mcp.Client(server) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        print("tools:", ", ".join(names))
        for args in agent_turns(40):
            added = await client.call_tool("add_turn", args)
        assert added.structured_content is not None
        print(f"added {added.structured_content['turns']} turns: {added.structured_content['pages']} pages")

        context = await client.call_tool("get_context", {"budget": BUDGET})
        images = [b for b in context.content if b.type == "image"]
        texts = [b for b in context.content if b.type == "text"]
        assert context.structured_content is not None
        usage = context.structured_content["usage"]
        print(f"get_context: {len(texts)} text blocks, {len(images)} page images ({images[0].mime_type})")
        print(
            f"  {usage['history_text_tokens']:,} tokens of history as text -> {usage['context_tokens']:,} "
            f"tokens for gpt-4o (budget {usage['budget']:,}): {usage['ratio']:.1f}x"
        )
        print("  last turn:", texts[-2].text.splitlines()[0])

        pages = (await client.call_tool("list_pages", {})).structured_content
        assert pages is not None
        for page in pages["pages"][:3]:
            print(
                f"  page {page['page_id']}: turns {page['turns']}, {page['rung']}, {page['image_tokens']} tokens"
            )
        recalled = await client.call_tool("recall_page", {"page_id": 0})
        print("recall_page 0:", recalled.content[0].text.splitlines()[0])  # type: ignore[union-attr]
        missing = await client.call_tool("recall_page", {"page_id": 999})
        print("recall_page 999:", "error:" if missing.is_error else "", missing.content[0].text)  # type: ignore[union-attr]


def main() -> int:
    if len(sys.argv) > 1:
        asyncio.run(run(Path(sys.argv[1])))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(Path(tmp) / "memory.db"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
