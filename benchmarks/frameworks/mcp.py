"""The MCP server (``optical_memory.integrations.mcp``) against a bare MCP history server, in one process.

Run: python benchmarks/frameworks/mcp.py [--turns 300] [--out FILE]

Both servers are ``mcp`` SDK ``MCPServer``s driven by the SDK's in-process client (``mcp.Client(server)``).
The real 300-turn agent session is replayed as an agent would: before each assistant turn (one model call)
the turns new since the last call are sent with ``add_turn``, then the context is fetched: the bare server's
``get_history`` returns the whole history as text blocks; the optical server's ``get_context`` returns the
optical context (recent turns as text, older turns as PNG page images) for openai:gpt-4o within its
default budget. Reported: the compression of the last context in gpt-4o tokens (history as text / context),
and the median milliseconds per model call (adds plus the context fetch) and per context fetch alone, bare
and optical, with what the adapter adds and the ratio.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named mcp.py: run as a script, its folder would shadow the ``mcp`` package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.append(str(_HERE.parents[1]))  # for benchmarks.frameworks.common, after the installed packages

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import mcp  # noqa: E402
from mcp.server.mcpserver import MCPServer  # noqa: E402
from mcp.types import TextContent  # noqa: E402

from benchmarks.frameworks.common import PROVIDER, agent_history, median_ms, report  # noqa: E402
from optical_memory.integrations.mcp import ToolCallIn, build_server  # noqa: E402
from optical_memory.types import Turn  # noqa: E402


def turn_args(turn: Turn) -> dict[str, Any]:
    """``add_turn`` arguments for a turn."""
    args: dict[str, Any] = {"role": turn.role, "content": turn.content}
    if turn.name:
        args["name"] = turn.name
    if turn.tool_calls:
        args["tool_calls"] = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in turn.tool_calls]
    if turn.tool_call_id:
        args["tool_call_id"] = turn.tool_call_id
    return args


def bare_server() -> MCPServer:
    """The baseline: a server that keeps the history in a list and hands it back as text blocks."""
    server: MCPServer = MCPServer("bare-history", log_level="WARNING")
    history: list[dict[str, Any]] = []

    @server.tool()
    def add_turn(
        role: str,
        content: str = "",
        name: str = "",
        tool_calls: list[ToolCallIn] | None = None,
        tool_call_id: str = "",
    ) -> dict[str, int]:
        """Store one turn."""
        history.append(
            {
                "role": role,
                "content": content,
                "name": name,
                "tool_calls": tool_calls or [],
                "id": tool_call_id,
            }
        )
        return {"turn_id": len(history) - 1}

    @server.tool()
    def get_history() -> list[TextContent]:
        """The whole history, one text block per turn."""
        blocks = []
        for i, t in enumerate(history):
            calls = "".join(f"\n-> call {c.id}: {c.name}({c.arguments})" for c in t["tool_calls"])
            head = (
                f"[turn {i}] tool result for call {t['id']}"
                if t["role"] == "tool"
                else f"[turn {i}] {t['role']}"
            )
            blocks.append(TextContent(type="text", text=f"{head}:\n{t['content']}{calls}"))
        return blocks

    return server


async def replay(
    server: Any, history: list[Turn], tool: str, args: dict[str, Any]
) -> tuple[list[float], list[float], Any]:
    """Seconds per model call (adds + context) and per context fetch, and the last context's result."""
    per_call: list[float] = []
    per_fetch: list[float] = []
    result: Any = None
    async with mcp.Client(server) as client:
        pending: list[dict[str, Any]] = []
        for i, turn in enumerate(history):
            if turn.role == "assistant" and i > 0:  # the model is called to produce this turn
                start = time.perf_counter()
                for add in pending:
                    added = await client.call_tool("add_turn", add)
                    assert not added.is_error, added.content
                fetched = time.perf_counter()
                result = await client.call_tool(tool, args)
                assert not result.is_error, result.content
                end = time.perf_counter()
                per_call.append(end - start)
                per_fetch.append(end - fetched)
                pending = []
            pending.append(turn_args(turn))
    return per_call, per_fetch, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    history = agent_history(args.turns)
    bare_call, bare_fetch, _ = asyncio.run(replay(bare_server(), history, "get_history", {}))
    with tempfile.TemporaryDirectory() as tmp:
        server = build_server(Path(tmp) / "memory.db", config={"provider": PROVIDER})
        opt_call, opt_fetch, last = asyncio.run(replay(server, history, "get_context", {}))
        del server
    usage = last.structured_content["usage"]
    images = sum(1 for b in last.content if b.type == "image")
    bare_ms, opt_ms = median_ms(bare_call), median_ms(opt_call)
    row = {
        "provider": PROVIDER,
        "turns": len(history),
        "model_calls": len(opt_call),
        "history_text_tokens": usage["history_text_tokens"],
        "context_tokens": usage["context_tokens"],
        "compression": round(usage["history_text_tokens"] / usage["context_tokens"], 2),
        "budget": usage["budget"],
        "page_images": images,
        "pages_per_rung": usage["pages_per_rung"],
        "bare_ms_per_call": round(bare_ms, 2),
        "adapter_ms_per_call": round(opt_ms, 2),
        "added_ms_per_call": round(opt_ms - bare_ms, 2),
        "ms_ratio": round(opt_ms / bare_ms, 2),
        "get_history_ms": round(median_ms(bare_fetch), 2),
        "get_context_ms": round(median_ms(opt_fetch), 2),
    }
    report("mcp", row, args.out)
    print(json.dumps({"last_context_blocks": len(last.content)}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
