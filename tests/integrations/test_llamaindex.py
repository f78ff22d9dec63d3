"""OpticalMemoryBlock inside LlamaIndex's real ``Memory`` and ``FunctionAgent``, with its MockFunctionCallingLLM.

A scripted function-calling model drives a real agent with real tools over a long conversation; Memory
keeps its chat store in SQLite (through aiosqlite) and flushes older messages into the block, which keeps
them in an optical-memory SQLite file. The module's helpers (``converse``) also run in a second process.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import (
    AudioBlock,
    ChatMessage,
    DocumentBlock,
    ImageBlock,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.llms import MockFunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.memory import Memory
from llama_index.core.storage.chat_store.base_db import MessageStatus
from llama_index.core.tools import FunctionTool
from PIL import Image
from sqlalchemy.ext.asyncio import create_async_engine

from optical_memory import MemoryConfig, OpticalMemory
from optical_memory.errors import ConfigError, InputError
from optical_memory.formats import PageItem, TextItem
from optical_memory.integrations.llamaindex import (
    OpticalMemoryBlock,
    from_openai_messages,
    to_openai_turns,
)

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parents[1] / "examples" / "04_llamaindex.py"
SESSION = "agent-1"
BUDGET = 8000
CONFIG = {"provider": "openai:gpt-4o", "keep_text": True}
SYSTEM = "You are a coding agent. Use the tools."
AGENT_WARNING = pytest.mark.filterwarnings(
    # building a FunctionAgent, llama-index-workflows runs inspect.getmembers over it, which reads pydantic's
    # deprecated attributes (__fields__, __fields_set__, model_computed_fields on the instance)
    "ignore::pydantic.warnings.PydanticDeprecationWarning:inspect"
)


# --- a real agent run (also imported by the second process) ---------------------------------------------


def list_dir(path: str) -> str:
    """List the files of a directory with their sizes."""
    return "\n".join(f"-rw-r--r-- 1 me me {j * 1000 + len(path)} {path}/file{j}.py" for j in range(8))


def read_file(path: str) -> str:
    """Read a file."""
    return f"# {path}\n" + "\n".join(f"def f{j}(x):\n    return x * {j}" for j in range(6))


class Script:
    """The fake model: a request gets one or two tool calls, tool results get an answer; inputs recorded."""

    def __init__(self) -> None:
        self.inputs: list[list[ChatMessage]] = []

    def __call__(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        self.inputs.append(list(messages))
        last = messages[-1]
        if last.role.value != "user":
            return ChatMessage(role="assistant", content="Done: the largest file is file7.py. " + "ok " * 40)
        step = int((last.content or "").split()[1].rstrip(":"))
        calls = [
            ToolCallBlock(
                tool_call_id=f"call_{step}_a", tool_name="list_dir", tool_kwargs={"path": f"d{step}"}
            )
        ]
        if step % 3 == 0:  # two parallel calls
            calls.append(
                ToolCallBlock(
                    tool_call_id=f"call_{step}_b",
                    tool_name="read_file",
                    tool_kwargs={"path": f"d{step}/m.py"},
                )
            )
        return ChatMessage(role="assistant", blocks=calls)


@asynccontextmanager
async def opened(folder: Path, budget: int) -> AsyncIterator[tuple[Memory, OpticalMemoryBlock]]:
    """Memory over the SQLite chat store in ``folder``, with the block over the optical store beside it."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{folder / 'chat.db'}")
    block = OpticalMemoryBlock(path=folder / "optical.db", config=CONFIG, budget=budget)
    try:
        yield (
            Memory.from_defaults(
                session_id=SESSION,
                token_limit=3000,
                chat_history_token_ratio=0.5,
                token_flush_size=500,
                memory_blocks=[block],
                async_engine=engine,
            ),
            block,
        )
    finally:
        block.close()
        await engine.dispose()


async def converse(
    folder: Path, steps: range, budget: int = BUDGET
) -> tuple[Script, OpticalMemoryBlock, list[ChatMessage]]:
    """Run the agent over ``steps`` with Memory's chat store and the block's memory in ``folder``.

    After the last step (whose end flushed more messages into the block) the model is called once more
    with what the memory holds, the way the agent calls it. Returns the script (the model's inputs), the
    block (closed) and the chat store's whole history.
    """
    script = Script()
    llm = MockFunctionCallingLLM(response_generator=script)
    async with opened(folder, budget) as (memory, block):
        agent = FunctionAgent(
            tools=[FunctionTool.from_defaults(list_dir), FunctionTool.from_defaults(read_file)],
            llm=llm,
            system_prompt=SYSTEM,
        )
        for step in steps:
            await agent.run(f"Step {step}: list d{step} and tell me the largest file.", memory=memory)
        await llm.achat([ChatMessage(role="system", content=SYSTEM), *await memory.aget()])
        history = await memory.aget_all()
    return script, block, history


@dataclass
class Run:
    folder: Path
    script: Script
    block: OpticalMemoryBlock
    history: list[ChatMessage]
    archived: int


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("llamaindex")
    script, block, history = asyncio.run(converse(folder, range(24)))
    with OpticalMemory.open(folder / "optical.db", session=SESSION) as m:
        archived = len(m)
    return Run(folder, script, block, history, archived)


def copy_run(run: Run, to: Path) -> Path:
    folder = to / "copy"
    shutil.copytree(run.folder, folder)
    return folder


def images(messages: Sequence[ChatMessage]) -> list[ImageBlock]:
    return [b for m in messages for b in m.blocks if isinstance(b, ImageBlock)]


def texts(messages: Sequence[ChatMessage]) -> list[str]:
    return [b.text for m in messages for b in m.blocks if isinstance(b, TextBlock)]


def pairs_intact(messages: Sequence[ChatMessage]) -> bool:
    """Every tool call shape is followed by results for all its ids, and every result follows its call."""
    i = 0
    while i < len(messages):
        ids = [b.tool_call_id for b in messages[i].blocks if isinstance(b, ToolCallBlock)]
        if messages[i].role.value == "tool":
            return False  # a result without its call right before it
        i += 1
        answered = []
        while i < len(messages) and messages[i].role.value == "tool":
            answered.append(messages[i].additional_kwargs.get("tool_call_id"))
            i += 1
        if sorted(map(str, ids)) != sorted(map(str, answered)):
            return False
    return True


# --- the agent sees pages within the budget ---------------------------------------------------------------


@AGENT_WARNING
def test_the_model_gets_page_images_that_fit_the_budget(run: Run) -> None:
    last = run.script.inputs[-1]
    context = run.block.last_context
    assert context is not None
    pages = [i for i in context.items if isinstance(i, PageItem)]
    shown = images(last)
    assert len(pages) >= 2 and len(shown) == len(pages)
    assert context.usage.image_tokens > 0 and context.usage.context_tokens <= BUDGET == context.usage.budget
    for page, block in zip(pages, shown, strict=True):
        assert block.image_mimetype == "image/png" and page.label in texts(last)
        png = block.resolve_image().read()
        assert page.png is None or png == page.png  # the stored page, byte for byte
        with Image.open(io.BytesIO(png)) as img:
            assert img.size == page.image.size
    # the agent's system prompt first, then the pages, then the short-term messages as text
    assert last[0].role.value == "system" and texts(last[:1]) == [SYSTEM]
    assert images(last[1:2]) == shown and not images(last[2:])
    assert last[2].role.value == "user" and last[-1].role.value == "assistant"


@AGENT_WARNING
def test_the_chat_store_keeps_the_whole_history(run: Run) -> None:
    history = run.history
    steps = [m for m in history if m.role.value == "user"]
    assert len(steps) == 24 and len(history) == 24 * 4 + 8  # every third step made two calls
    assert [int((m.content or "").split()[1].rstrip(":")) for m in steps] == list(range(24))

    async def archived() -> list[ChatMessage]:
        engine = create_async_engine(f"sqlite+aiosqlite:///{run.folder / 'chat.db'}")
        memory = Memory.from_defaults(session_id=SESSION, async_engine=engine)
        try:
            return await memory.sql_store.get_messages(SESSION, status=MessageStatus.ARCHIVED)
        finally:
            await engine.dispose()

    flushed = asyncio.run(archived())
    assert len(flushed) == run.archived > 60  # Memory archives what it flushes; the block holds exactly that
    assert [m.role.value for m in flushed] == [m.role.value for m in history[: len(flushed)]]


@AGENT_WARNING
def test_every_tool_call_pair_reached_the_model_intact(run: Run) -> None:
    for messages in run.script.inputs:  # no call the model saw in tool shapes was ever split from its results
        assert pairs_intact(messages[1:])
    last, context = run.script.inputs[-1], run.block.last_context
    assert context is not None
    as_text = {b.tool_call_id for m in last for b in m.blocks if isinstance(b, ToolCallBlock)}
    text_turns = {i.turn for i in context.items if isinstance(i, TextItem)}
    image_pages = {i.page_id for i in context.items if isinstance(i, PageItem)}
    assert {f"page {p}," for p in image_pages} <= {t.split(" turn")[0] for t in texts(last)}
    with OpticalMemory.open(run.folder / "optical.db", session=SESSION) as m:
        turns, pages = m._w.turns, m.pages()
    on_pages = {s.turn for p in pages if p.page_id in image_pages for s in p.spans}
    calls = {c.id: i for i, t in enumerate(turns) for c in t.tool_calls}
    for i, t in enumerate(turns):  # each flushed pair: on page images the model got, or as text with its ids
        if t.tool_call_id is None:
            continue
        both = {i, calls[t.tool_call_id]}
        assert both <= on_pages | text_turns
        if both <= text_turns:
            assert t.tool_call_id in as_text
    every_call = {b.tool_call_id for msg in run.history for b in msg.blocks if isinstance(b, ToolCallBlock)}
    assert every_call == set(calls) | as_text  # the calls still in Memory's short-term FIFO came as text


def test_a_fresh_memory_over_the_files_fits_a_tight_budget(run: Run, tmp_path: Path) -> None:
    folder = copy_run(run, tmp_path)
    script = Script()

    async def call() -> OpticalMemoryBlock:
        async with opened(folder, budget=400) as (memory, block):
            messages = [ChatMessage(role="system", content=SYSTEM), *await memory.aget()]
            await MockFunctionCallingLLM(response_generator=script).achat(messages)
        return block

    context = asyncio.run(call()).last_context
    assert context is not None and context.usage.context_tokens <= 400
    assert context.usage.forgotten_for_budget  # the oldest pages are left out of this call only
    (given,) = script.inputs
    assert 0 < len(images(given)) == sum(isinstance(i, PageItem) for i in context.items)
    for pid in context.usage.forgotten_for_budget:
        assert not any(t.startswith(f"page {pid},") for t in texts(given))
    with OpticalMemory.open(folder / "optical.db", session=SESSION) as m:
        assert len(m) == run.archived and not any(
            p.rung.value == "forgotten" for p in m.pages()
        )  # stored as is


@AGENT_WARNING
def test_a_second_process_continues_the_thread(run: Run, tmp_path: Path) -> None:
    folder = copy_run(run, tmp_path)
    code = f"""
import asyncio, json, sys
sys.path.append({str(HERE)!r})
from pathlib import Path
import test_llamaindex as t
from optical_memory import MemoryConfig, OpticalMemory

script, block, history = asyncio.run(t.converse(Path({str(folder)!r}), range(24, 30)))
with OpticalMemory.open(Path({str(folder)!r}) / "optical.db", session=t.SESSION) as m:
    kept = len(m)
first = script.inputs[0]
print(json.dumps({{
    "first_images": len(t.images(first)),
    "first_labels": [x for x in t.texts(first) if x.startswith("page ")],
    "history": len(history),
    "kept": kept,
    "intact": all(t.pairs_intact(i[1:]) for i in script.inputs),
}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    # its very first model call already shows the pages the first process laid out
    assert out["first_images"] >= 2 and out["first_labels"][0].startswith("page 0, turns 0-")
    assert out["history"] == len(run.history) + 6 * 4 + 2 and out["intact"]
    assert out["kept"] > run.archived


# --- bad input, unpriceable parts ---------------------------------------------------------------------------


def call(call_id: str, kwargs: dict[str, Any] | str) -> ChatMessage:
    return ChatMessage(
        role="assistant", blocks=[ToolCallBlock(tool_call_id=call_id, tool_name="ls", tool_kwargs=kwargs)]
    )


def result(call_id: str | None, text: str = "a.py") -> ChatMessage:
    extra = {} if call_id is None else {"tool_call_id": call_id}
    return ChatMessage(role="tool", content=text, additional_kwargs=extra)


@pytest.mark.parametrize(
    ("batch", "error"),
    [
        ([call("c9", "{not json")], "not valid JSON"),
        ([result("nobody")], "which no assistant turn"),
        ([result(None)], "tool_call_id"),
        ([call("", {})], "has no id"),
    ],
)
def test_bad_input_is_refused_and_stores_nothing(
    tmp_path: Path, batch: list[ChatMessage], error: str
) -> None:
    block = OpticalMemoryBlock(path=tmp_path / "o.db", config={"provider": "openai:gpt-4o"})
    good = [ChatMessage(role="user", content="list files"), call("c1", {}), result("c1")]

    async def go() -> None:
        await block.aput(good, session_id="s")
        with pytest.raises(InputError, match=error):
            await block.aput([ChatMessage(role="user", content="more"), *batch], session_id="s")

    asyncio.run(go())
    assert len(block.memory_for("s")) == 3  # the valid messages before the bad one were not stored either
    block.close()


def test_a_refused_flush_raises_from_memory_and_keeps_the_chat_store(tmp_path: Path) -> None:
    block = OpticalMemoryBlock(config={"provider": "openai:gpt-4o"})
    bad = [
        ChatMessage(role="user", content="x " * 300),
        call("c1", "{oops"),
        result("c1"),
        ChatMessage(role="user", content="y"),
    ]

    async def go() -> list[ChatMessage]:
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}")
        memory = Memory.from_defaults(
            session_id="s", token_limit=200, token_flush_size=50, memory_blocks=[block], async_engine=engine
        )
        try:
            with pytest.raises(InputError, match="not valid JSON"):
                await memory.aput_messages(bad)
            return await memory.aget_all()
        finally:
            await engine.dispose()

    assert len(asyncio.run(go())) == 4 and len(block.memory_for("s")) == 0


def test_a_bad_config_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="budget"):
        OpticalMemoryBlock(config={"budget": -1})


def test_unpriceable_parts_become_markers(caplog: pytest.LogCaptureFixture) -> None:
    message = ChatMessage(
        role="user",
        blocks=[
            TextBlock(text="listen"),
            AudioBlock(audio=b"RIFF0000WAVE", format="wav"),
            DocumentBlock(data=b"%PDF-1.4", title="spec.pdf", document_mimetype="application/pdf"),
            ThinkingBlock(content="hmm"),
        ],
    )
    with caplog.at_level(logging.WARNING, logger="optical_memory.integrations.parts"):
        (turn,) = to_openai_turns([message])
    assert turn == {
        "role": "user",
        "content": "listen\n\n[audio part: wav; not kept in optical memory]\n\n"
        "[document part: spec.pdf, application/pdf; not kept in optical memory]",
    }
    memory = OpticalMemory({"recent_turns": 0})
    memory.add(turn)
    assert len(memory) == 1


def test_tool_calls_in_additional_kwargs_are_read_in_every_shape() -> None:
    openai_shape = {"id": "a", "type": "function", "function": {"name": "ls", "arguments": '{"p": 1}'}}
    anthropic_shape = {"id": "b", "type": "tool_use", "name": "cat", "input": {"f": "x"}}
    selection = ToolSelection(tool_id="c", tool_name="grep", tool_kwargs={"q": "y"})
    message = ChatMessage(
        role="assistant",
        blocks=[
            TextBlock(text="looking"),
            ToolCallBlock(tool_call_id="a", tool_name="ls", tool_kwargs={"p": 1}),
        ],
        additional_kwargs={"tool_calls": [openai_shape, anthropic_shape, selection], "session_id": "s"},
    )
    (turn,) = to_openai_turns([message])
    assert turn["content"] == "looking"
    assert [
        (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in turn["tool_calls"]
    ] == [
        ("a", "ls", {"p": 1}),
        ("b", "cat", {"f": "x"}),
        ("c", "grep", {"q": "y"}),
    ]
    back = from_openai_messages([turn, {"role": "tool", "tool_call_id": "a", "content": "x"}])
    assert [b.tool_call_id for b in back[0].blocks if isinstance(b, ToolCallBlock)] == ["a", "b", "c"]
    assert back[1].additional_kwargs == {"tool_call_id": "a"}


def test_an_explicit_memory_serves_every_session() -> None:
    memory = OpticalMemory({"recent_turns": 0, "provider": "openai:gpt-4o"})
    block = OpticalMemoryBlock(memory=memory, budget=None)

    async def go() -> list[ChatMessage]:
        await block.aput([ChatMessage(role="user", content="hello " * 2000)], session_id="x")
        return await block.aget([], session_id="y")

    got = asyncio.run(go())
    assert len(memory) == 1 and images(got)


def test_pages_come_back_as_validated_image_blocks() -> None:
    buffer = io.BytesIO()
    Image.new("L", (40, 30), 128).save(buffer, "PNG")
    png = buffer.getvalue()
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    parts = [
        {"type": "text", "text": "page 0, turn 0"},
        {"type": "image_url", "image_url": {"url": url, "detail": "high"}},
    ]
    (message,) = from_openai_messages([{"role": "user", "content": parts}])
    expected = ChatMessage(
        role="user",
        blocks=[
            TextBlock(text="page 0, turn 0"),
            ImageBlock(image=png, image_mimetype="image/png", detail="high"),
        ],
    )
    assert message == expected and images([message])[0].resolve_image().read() == png
    (turn,) = to_openai_turns([message])  # and back: the same bytes
    assert turn["content"][1]["image_url"]["url"] == url


def test_images_are_converted_from_every_source(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 10), "blue").save(buffer, "PNG")
    png = buffer.getvalue()
    (tmp_path / "shot.png").write_bytes(png)
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    sources = [
        ImageBlock(image=png),
        ImageBlock(image=io.BytesIO(png), image_mimetype="image/png"),
        ImageBlock(path=tmp_path / "shot.png"),
        ImageBlock(url=url),
    ]
    turns = to_openai_turns([ChatMessage(role="user", blocks=[block]) for block in sources])
    assert [t["content"] for t in turns] == [[{"type": "image_url", "image_url": {"url": url}}]] * 4
    (remote,) = to_openai_turns(
        [ChatMessage(role="user", blocks=[ImageBlock(url="https://example.com/a.png")])]
    )
    assert remote["content"] == [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]
    gone = ChatMessage(role="user", blocks=[ImageBlock(path=tmp_path / "shot.png")])
    (tmp_path / "shot.png").unlink()
    with pytest.raises(InputError, match="cannot read its image"):
        to_openai_turns([gone])


def test_the_block_lays_out_what_it_receives_unless_configured() -> None:
    for given, recent in [(None, 0), ({"provider": "openai:gpt-4o"}, 0), ({"recent_turns": 4}, 4)]:
        config = OpticalMemoryBlock(config=given).config
        assert isinstance(config, MemoryConfig) and config.recent_turns == recent


def test_a_pasted_image_is_kept() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(buffer, "PNG")
    message = ChatMessage(
        role="user", blocks=[TextBlock(text="what is this?"), ImageBlock(image=buffer.getvalue())]
    )
    (turn,) = to_openai_turns([message])
    assert turn["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")
    block = OpticalMemoryBlock(config={"provider": "openai:gpt-4o"})
    asyncio.run(block.aput([message], session_id="s"))
    assert len(block.memory_for("s")) == 1


# --- the example ----------------------------------------------------------------------------------------------


def test_example_04_runs(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "page images" in done.stdout and "chat store holds" in done.stdout
