"""The MCP server through the ``mcp`` SDK's own clients: in-process (``mcp.Client(server)``) over a long
agent conversation with tool calls, and the real ``optical-memory mcp`` stdio server as a subprocess that a
second process continues. Page images arrive as MCP image content, the usage fits the budget, tool-call
pairs stay intact, and refused calls come back as tool errors that change nothing."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp")

import mcp
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.types import CallToolResult, ImageContent, TextContent
from PIL import Image

from optical_memory import OpticalMemory
from optical_memory.errors import InputError
from optical_memory.integrations.mcp import build_server, context_result
from optical_memory.ladder import Rung
from optical_memory.recall.base import Reading
from tests.memory.test_tool_turns import agent_session

ROOT = Path(__file__).resolve().parents[2]
PROVIDER = "openai:gpt-4o"
CONFIG = {"provider": PROVIDER, "recent_turns": 4, "keep_text": True}
TOOLS = {"add_turn", "get_context", "list_pages", "recall_page", "pin_page", "search_memory"}


def turn_args(message: Mapping[str, Any]) -> dict[str, Any]:
    """``add_turn`` arguments for an OpenAI chat message (tool calls flattened to {id, name, arguments})."""
    args = {k: v for k, v in message.items() if k != "tool_calls"}
    if message.get("tool_calls"):
        args["tool_calls"] = [
            {"id": c["id"], "name": c["function"]["name"], "arguments": c["function"]["arguments"]}
            for c in message["tool_calls"]
        ]
    return args


def with_client(server: Any, body: Callable[[mcp.Client], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        async with mcp.Client(server) as client:
            return await body(client)

    return asyncio.run(run())


async def call(client: mcp.Client, tool: str, **args: Any) -> CallToolResult:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    return result


def text_of(result: CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


def png(block: Any) -> Image.Image:
    assert isinstance(block, ImageContent) and block.mime_type == "image/png"
    data = base64.b64decode(block.data)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def snapshot(db: Path) -> tuple[list[Any], list[Any]]:
    """What the store holds: every turn record and every page (read by a fresh memory)."""
    with OpticalMemory.open(db) as memory:
        return list(memory._w.turns), memory.pages()


def check_tool_pairs(summary: Mapping[str, Any], pages: list[Mapping[str, Any]], history: list[Any]) -> int:
    """Every tool call and its result reached the context together: both as text with matching ids, or
    both on pages it shows. Returns how many pairs went as text."""
    text_turns = {item["turn"]: item for item in summary["items"] if item["type"] == "text"}
    shown = {item["page_id"] for item in summary["items"] if item["type"] == "page"}
    on_pages = {t for p in pages if p["page_id"] in shown for t in range(p["turns"][0], p["turns"][1] + 1)}
    as_text = 0
    for tid, message in enumerate(history):
        for c in message.get("tool_calls") or []:
            result = next(i for i, m in enumerate(history) if m.get("tool_call_id") == c["id"])
            if tid in text_turns:
                assert [x["id"] for x in text_turns[tid]["tool_calls"]] == [c["id"]]
                assert text_turns[result]["tool_call_id"] == c["id"]
                as_text += 1
            else:
                assert tid in on_pages and result in on_pages, (tid, result)
    return as_text


def test_every_tool_over_a_long_agent_conversation(tmp_path: Path) -> None:
    db = tmp_path / "memory.db"
    history = agent_session(30)
    server = build_server(db, config=CONFIG)

    async def body(client: mcp.Client) -> None:
        assert {t.name for t in (await client.list_tools()).tools} == TOOLS
        sealed: list[int] = []
        for message in history:
            added = (await call(client, "add_turn", **turn_args(message))).structured_content
            assert added is not None
            sealed += added["sealed"]
        assert added["turn_id"] == len(history) - 1 and added["turns"] == len(history)
        assert sealed == list(range(len(sealed))) and len(sealed) >= 2

        listed = await call(client, "list_pages")
        assert listed.structured_content is not None
        pages = listed.structured_content["pages"]
        assert json.loads(text_of(listed)) == pages
        assert [p["page_id"] for p in pages] == list(range(len(pages)))
        assert all(p["text_kept"] and p["image_tokens"] > 0 for p in pages)

        # unbounded: every page at its stored rung, as a PNG image block after its label
        free = await call(client, "get_context", budget=None)
        summary = free.structured_content
        assert summary is not None and summary["usage"]["budget"] is None
        page_items = [i for i in summary["items"] if i["type"] == "page"]
        assert len(page_items) >= 2 and len(page_items) + summary["usage"]["pages_as_text"] == len(pages)
        for item in page_items:
            page = pages[item["page_id"]]
            image = png(free.content[item["image_block"]])
            assert image.size == (page["width"], page["height"]) and item["rung"] == page["rung"]
            label = free.content[item["image_block"] - 1]
            assert isinstance(label, TextContent) and label.text == item["label"]
        assert json.loads(free.content[-1].text) == {  # type: ignore[union-attr]
            "provider": PROVIDER,
            "usage": summary["usage"],
        }
        assert check_tool_pairs(summary, pages, history) >= 1
        first_text = next(i for i in summary["items"] if i["type"] == "text")
        assert first_text["role"] == "system" and free.content[first_text["text_block"]].text == (
            "[turn 0] system:\nYou are a coding agent."
        )
        last = len(history) - 1
        call_block = free.content[summary["items"][-3]["text_block"]].text
        assert call_block == f'[turn {last - 2}] assistant:\n-> call call_29: bash({{"cmd": "ls -l dir29"}})'
        result_block = free.content[summary["items"][-2]["text_block"]].text
        assert result_block.startswith(f"[turn {last - 1}] tool result for call call_29 (bash):\n-rw-r--r--")

        # a budget: pages are demoted for this context only, and the priced cost fits
        budget = summary["usage"]["context_tokens"] - 500
        tight = await call(client, "get_context", budget=budget)
        usage = tight.structured_content["usage"]
        assert usage["budget"] == budget and usage["context_tokens"] <= budget
        images = [png(b) for b in tight.content if isinstance(b, ImageContent)]
        assert images and usage["image_tokens"] > 0
        check_tool_pairs(tight.structured_content, pages, history)
        assert (await call(client, "list_pages")).structured_content == {"pages": pages}  # stored unchanged

        default = (await call(client, "get_context")).structured_content
        assert default is not None and default["usage"]["budget"] == 64_000  # the config's: half the window
        claude = await call(client, "get_context", provider="anthropic:claude-sonnet-4-5", budget="window")
        assert claude.structured_content["provider"] == "anthropic:claude-sonnet-4-5"

        # recall with the server's reader (exact: the text was kept), or as the page image
        recalled = await call(client, "recall_page", page_id=0)
        assert text_of(recalled).startswith("Step 0: list the files in dir0")
        assert recalled.structured_content["reader"] == "exact"
        image = png((await call(client, "recall_page", page_id=0, as_image=True)).content[0])
        assert image.size == (pages[0]["width"], pages[0]["height"])

        found = (await call(client, "search_memory", query="files in dir0", k=2)).structured_content
        assert found["hits"][0]["page_id"] == 0 and found["hits"][0]["source"] == "text"
        assert "dir0" in found["hits"][0]["snippet"]

        pinned = (await call(client, "pin_page", page_id=0, rung="small")).structured_content
        assert pinned is not None and pinned["pinned"] == "small" and pinned["rung"] == "small"
        assert (await call(client, "pin_page", page_id=1)).structured_content["pinned"] == pages[1]["rung"]

    with_client(server, body)
    turns, stored_pages = snapshot(db)  # the store holds the whole conversation, and the pins
    assert len(turns) == len(history)
    assert [t.tool_call_id for t in turns] == [m.get("tool_call_id") for m in history]
    assert stored_pages[0].pinned is Rung.SMALL


def test_errors_come_back_as_tool_errors_and_change_nothing(tmp_path: Path) -> None:
    db = tmp_path / "memory.db"
    server = build_server(db, config=CONFIG)
    bad: list[tuple[str, dict[str, Any], str]] = [
        ("add_turn", {"role": "tool", "tool_call_id": "call_99", "content": "x"}, "no assistant turn"),
        (
            "add_turn",
            {"role": "assistant", "tool_calls": [{"id": "c9", "name": "bash", "arguments": "{oops"}]},
            "not valid JSON",
        ),
        ("add_turn", {"role": "robot", "content": "beep"}, "turn role must be one of"),
        ("add_turn", {"content": "no role"}, "role"),
        ("recall_page", {"page_id": 99}, "no page 99"),
        ("recall_page", {"page_id": 99, "as_image": True}, "page 99"),
        ("pin_page", {"page_id": 99}, "no sealed page 99"),
        ("pin_page", {"page_id": 0, "rung": "blurry"}, "unknown rung 'blurry'"),
        ("get_context", {"provider": "acme:model"}, "unknown provider 'acme:model'"),
        ("get_context", {"budget": 10}, "smaller than the recent text"),
        ("search_memory", {"query": "!!"}, "words or numbers"),
        ("search_memory", {"query": "dir0", "k": 0}, "greater than or equal to 1"),
    ]

    async def body(client: mcp.Client) -> None:
        for turn in agent_session(12):
            await call(client, "add_turn", **turn_args(turn))
        before = snapshot(db)
        for tool, args, message in bad:
            result = await client.call_tool(tool, args)
            assert result.is_error, (tool, args)
            assert result.content[0].text.startswith(f"Error executing tool {tool}: ")  # type: ignore[union-attr]
            assert message in result.content[0].text, result.content  # type: ignore[union-attr]
            assert snapshot(db) == before, (tool, args)
        # a JSON-looking or null-like text is stored verbatim, not parsed
        await call(client, "add_turn", role="user", content='{"a": [1, 2]}', name=None)
        await call(client, "add_turn", role="assistant", content="null", tool_call_id=None)

    with_client(server, body)
    turns, _ = snapshot(db)
    assert [t.content for t in turns[-2:]] == ['{"a": [1, 2]}', "null"]
    assert turns[-2].name is None


def test_a_user_turn_carries_images() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "red").save(buffer, format="PNG")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    server = build_server(OpticalMemory({"recent_turns": 4}))

    async def body(client: mcp.Client) -> None:
        args = {
            "role": "user",
            "content": "what is this?",
            "images": [{"data": data, "mime_type": "image/png"}],
        }
        added = await client.call_tool("add_turn", args)
        if added.is_error:  # the memory refused the image part
            raise InputError(added.content[0].text)  # type: ignore[union-attr]
        context = await call(client, "get_context", budget=None)
        assert context.structured_content is not None
        (item,) = context.structured_content["items"]
        assert "[image 1: 40x30 png]" in item["content"]
        assert png(context.content[item["text_block"] + 1]).size == (40, 30)  # right after its text

    with_client(server, body)


def test_page_images_are_the_same_whatever_format_the_context_was_built_in() -> None:
    memory = OpticalMemory({"provider": PROVIDER, "recent_turns": 4})
    for message in agent_session(30):
        memory.add(message)
    reused = context_result(memory.context(format="openai-chat"))  # PNGs taken from the messages
    encoded = context_result(memory.context(format="hf"))  # PNGs encoded here
    assert reused.structured_content == encoded.structured_content
    images = [
        (png(a), png(b)) for a, b in zip(reused.content, encoded.content, strict=True) if a.type == "image"
    ]
    assert len(images) >= 2 and all(a.tobytes() == b.tobytes() for a, b in images)
    memory.close()


class ShoutingReader:
    """A reader the application configures: reads a page back in upper case."""

    name = "shouting"

    def __init__(self, memory: OpticalMemory) -> None:
        self.memory = memory

    def read(self, image: Image.Image, *, rung: Any = None, page: int | None = None) -> Reading:
        text = self.memory.page_text(page) if page is not None else None
        return Reading((text or "").upper(), self.name, rung, 0.0)


def test_the_application_chooses_the_reader_not_the_tool_call() -> None:
    memory = OpticalMemory({"recent_turns": 4, "keep_text": True})
    server = build_server(memory, reader=ShoutingReader(memory))

    async def body(client: mcp.Client) -> None:
        (recall,) = [t for t in (await client.list_tools()).tools if t.name == "recall_page"]
        assert set(recall.input_schema["properties"]) == {"page_id", "as_image"}
        for message in agent_session(12):
            await call(client, "add_turn", **turn_args(message))
        result = await call(client, "recall_page", page_id=0, reader="exact")  # not an argument: ignored
        assert result.structured_content["reader"] == "shouting"
        assert text_of(result).startswith("STEP 0: LIST THE FILES")

    with_client(server, body)
    memory.close()


def stdio_params(db: Path, cwd: Path, *extra: str) -> StdioServerParameters:
    args = ["-m", "optical_memory", "mcp", "--db", str(db), "--provider", PROVIDER, "--recent", "4", *extra]
    env = {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    return StdioServerParameters(command=sys.executable, args=args, cwd=cwd, env=env)


def test_the_stdio_server_and_a_second_process_continue_one_session(tmp_path: Path) -> None:
    db = tmp_path / "memory.db"
    history = agent_session(16)
    half = 33  # ends after a tool result: the next process starts with a final answer

    async def first(client: mcp.Client) -> None:
        assert {t.name for t in (await client.list_tools()).tools} == TOOLS
        for message in history[:half]:
            await call(client, "add_turn", **turn_args(message))

    async def second(client: mcp.Client) -> Any:
        # the call made in the first process is known here: a result for an unknown call is refused
        refused = await client.call_tool("add_turn", {"role": "tool", "tool_call_id": "nope", "content": "x"})
        assert refused.is_error and "no assistant turn" in refused.content[0].text  # type: ignore[union-attr]
        for message in history[half:]:
            added = await call(client, "add_turn", **turn_args(message))
        assert added.structured_content["turn_id"] == len(history) - 1
        context = await call(client, "get_context", budget=2500)
        assert any(isinstance(b, ImageContent) for b in context.content)
        summary = context.structured_content
        assert summary is not None and summary["usage"]["context_tokens"] <= 2500
        pages = (await call(client, "list_pages")).structured_content["pages"]
        check_tool_pairs(summary, pages, history)
        return summary

    async def session(body: Callable[[mcp.Client], Awaitable[Any]]) -> Any:
        with (tmp_path / "server.log").open("a") as errlog:
            async with mcp.Client(stdio_client(stdio_params(db, tmp_path), errlog=errlog)) as client:
                return await body(client)

    asyncio.run(session(first))
    assert len(snapshot(db)[0]) == half
    asyncio.run(session(second))
    turns, pages = snapshot(db)
    assert len(turns) == len(history) and len(pages) >= 2
    assert "Traceback" not in (tmp_path / "server.log").read_text()


def test_the_command_explains_a_bad_option(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "optical_memory", "mcp", "--db", str(tmp_path / "m.db"), "--budget", "lots"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "--budget must be a positive number" in done.stderr


def test_example_06_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "06_mcp.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "tools: add_turn, get_context, list_pages, recall_page, pin_page, search_memory" in done.stdout
    assert "page images (image/png)" in done.stdout and "(budget 3,000)" in done.stdout
    assert "recall_page 0: Step 0: list the files in dir0" in done.stdout
    assert "recall_page 999: error: Error executing tool recall_page: no page 999" in done.stdout
    assert list(tmp_path.iterdir()) == []  # the example keeps its store in a temporary folder
