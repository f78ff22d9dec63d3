"""The LangChain adapter in a real ``create_agent`` graph, with LangChain's own fake chat model and real
checkpointers: the model gets page images that fit the budget, the graph state keeps every message, tool
pairs stay intact, and another process continues the thread."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain")
pytest.importorskip("langgraph.checkpoint.sqlite")

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from pydantic import Field

from optical_memory import OpticalMemory
from optical_memory.errors import InputError
from optical_memory.integrations.langchain import (
    OpticalMemoryMiddleware,
    count_tokens,
    optical_messages,
    to_turns,
)

ROOT = Path(__file__).resolve().parents[2]
PROVIDER = "openai:gpt-4o"
BUDGET = 6_000
CONFIG = {"provider": PROVIDER, "recent_turns": 4, "budget": BUDGET}


@tool
def bash(cmd: str) -> str:
    """Run a shell command and return what it prints."""
    n = len(cmd)
    return "\n".join(f"-rw-r--r-- 1 me me {j * 1000 + n} file{j}.py" for j in range(1 + n % 6))


class ScriptedModel(GenericFakeChatModel):
    """LangChain's fake chat model that takes tools and records the messages of every call."""

    calls: list[list[BaseMessage]] = Field(default_factory=list)

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedModel:
        return self

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        self.calls.append(list(messages))
        return super()._generate(messages, *args, **kwargs)


def script(steps: range) -> Iterator[AIMessage]:
    for i in steps:
        call = {"id": f"call_{i}", "name": "bash", "args": {"cmd": f"ls -l dir{i}"}}
        yield AIMessage(content="", tool_calls=[call])
        yield AIMessage(content=f"Step {i}: the largest file in dir{i} is file{i % 6}.py, " + "notes " * 40)


def run_steps(agent: Any, thread: str, steps: range) -> None:
    for i in steps:
        agent.invoke(
            {"messages": [HumanMessage(f"Step {i}: list dir{i} and tell me the largest file.")]},
            {"configurable": {"thread_id": thread}},
        )


def images_in(messages: Sequence[BaseMessage]) -> int:
    return sum(
        1
        for m in messages
        if not isinstance(m.content, str)
        for block in m.content_blocks
        if block.get("type") == "image"
    )


def assert_pairs_intact(messages: Sequence[BaseMessage]) -> None:
    """Every tool call sent as text is answered right after it, and every result follows its call."""
    open_calls: set[str] = set()
    for m in messages:
        if isinstance(m, ToolMessage):
            assert m.tool_call_id in open_calls, f"result {m.tool_call_id} sent without its call"
            open_calls.discard(m.tool_call_id)
        else:
            assert not open_calls, f"calls {open_calls} sent without their results"
            if isinstance(m, AIMessage):
                open_calls = {c["id"] for c in m.tool_calls}
    assert not open_calls


def test_create_agent_sends_pages_within_budget_and_keeps_the_graph_state(tmp_path: Path) -> None:
    model = ScriptedModel(messages=script(range(16)))
    middleware = OpticalMemoryMiddleware(tmp_path / "memory.db", config=CONFIG)
    agent = create_agent(model, [bash], middleware=[middleware], checkpointer=InMemorySaver())
    run_steps(agent, "t1", range(16))

    state = agent.get_state({"configurable": {"thread_id": "t1"}}).values["messages"]
    assert len(state) == 16 * 4  # the graph keeps every message, untouched
    assert all(isinstance(m.content, str) for m in state)
    last = model.calls[-1]
    assert images_in(last) >= 1 and len(last) < len(state)
    assert_pairs_intact(last)
    memory = middleware.threads.get("t1")
    assert len(memory) == len(state) - 1  # all but the model's last answer, which no call has seen yet
    usage = memory.context().usage
    assert usage.image_tokens > 0 and usage.context_tokens <= BUDGET
    # the exact counter agrees with the memory's own price of what the model got
    assert abs(count_tokens(last, provider=PROVIDER) - usage.context_tokens) <= 0.05 * usage.context_tokens
    # every tool call on a page is drawn on the same page as the start of its result
    starts = {}
    for page in memory.pages():
        for span in page.spans:
            starts.setdefault(span.turn, page.page_id)
    for i, message in enumerate(state[: len(memory)]):
        if isinstance(message, ToolMessage) and i in starts:
            assert starts[i] == starts[i - 1]
    middleware.close()


def test_async_agent_uses_awrap_model_call() -> None:
    model = ScriptedModel(messages=script(range(8)))
    middleware = OpticalMemoryMiddleware(config=CONFIG)
    agent = create_agent(model, [bash], middleware=[middleware], checkpointer=InMemorySaver())

    async def run() -> int:
        for i in range(8):
            await agent.ainvoke(
                {"messages": [HumanMessage(f"Step {i}: list dir{i}.")]}, {"configurable": {"thread_id": "a"}}
            )
        return len((await middleware.threads.aget("a")).pages())

    assert asyncio.run(run()) >= 1
    assert images_in(model.calls[-1]) >= 1
    assert_pairs_intact(model.calls[-1])


RESUME = textwrap.dedent(
    """
    import sqlite3, sys
    sys.path.append({root!r})
    from langchain.agents import create_agent
    from langchain_core.messages import HumanMessage
    from langgraph.checkpoint.sqlite import SqliteSaver
    from optical_memory.integrations.langchain import OpticalMemoryMiddleware
    from tests.integrations.test_langchain import CONFIG, ScriptedModel, bash, images_in, script

    model = ScriptedModel(messages=script(range(10, 11)))
    middleware = OpticalMemoryMiddleware({db!r}, config=CONFIG)
    saver = SqliteSaver(sqlite3.connect({graph!r}, check_same_thread=False))
    agent = create_agent(model, [bash], middleware=[middleware], checkpointer=saver)
    config = {{"configurable": {{"thread_id": "t"}}}}
    agent.invoke({{"messages": [HumanMessage("Step 10: list dir10.")]}}, config)
    state = agent.get_state(config).values["messages"]
    print(len(state), len(middleware.threads.get("t")), images_in(model.calls[0]))
    """
)


def test_another_process_continues_the_thread_with_sqlite_saver(tmp_path: Path) -> None:
    db, graph = tmp_path / "memory.db", tmp_path / "graph.db"
    model = ScriptedModel(messages=script(range(10)))
    saver = SqliteSaver(sqlite3.connect(graph, check_same_thread=False))
    middleware = OpticalMemoryMiddleware(db, config=CONFIG)
    agent = create_agent(model, [bash], middleware=[middleware], checkpointer=saver)
    run_steps(agent, "t", range(10))
    middleware.close()
    saver.conn.close()

    code = RESUME.format(root=str(ROOT), db=str(db), graph=str(graph))
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    state, stored, images = map(int, done.stdout.split())
    assert state == 44 and stored == 43  # the thread went on from where the first process left it
    assert images >= 1


def test_optical_messages_in_a_custom_node_keeps_system_and_refuses_rewritten_history() -> None:
    from langchain_core.messages import SystemMessage

    memory = OpticalMemory({**CONFIG, "budget": None})
    history: list[BaseMessage] = [SystemMessage("You are terse.")]
    for i in range(12):
        history += [HumanMessage(f"question {i} " + "words " * 80), AIMessage(f"answer {i} " + "more " * 80)]
    sent = optical_messages(memory, history)
    assert isinstance(sent[0], SystemMessage) and images_in(sent) >= 1
    assert len(memory) == 24  # the system message is the graph's, not stored
    before = len(memory.pages())
    with pytest.raises(InputError, match="rewritten upstream"):
        optical_messages(memory, [*history[:-1], HumanMessage("edited"), AIMessage("x")])
    with pytest.raises(InputError, match="removed upstream"):
        optical_messages(memory, history[:5])
    assert len(memory) == 24 and len(memory.pages()) == before  # nothing stored changed


def test_to_turns_keeps_tool_calls_and_marks_what_it_cannot_price(caplog: pytest.LogCaptureFixture) -> None:
    messages = [
        HumanMessage(
            content=[
                {"type": "text", "text": "what does this say?"},
                {"type": "audio", "base64": "AAAA", "mime_type": "audio/wav"},
            ]
        ),
        AIMessage(
            content=[{"type": "reasoning", "reasoning": "think"}, {"type": "text", "text": "checking"}],
            tool_calls=[{"id": "c1", "name": "bash", "args": {"cmd": "ls"}}],
        ),
        ToolMessage("a.py", tool_call_id="c1", name="bash"),
    ]
    turns = to_turns(messages)
    assert turns[0]["content"][1]["text"].startswith("[audio part: audio/wav")
    assert [p["text"] for p in turns[1]["content"]] == ["checking"]  # reasoning is not stored
    assert json.loads(turns[1]["tool_calls"][0]["function"]["arguments"]) == {"cmd": "ls"}
    assert turns[2] == {
        "role": "tool",
        "content": [{"type": "text", "text": "a.py"}],
        "name": "bash",
        "tool_call_id": "c1",
    }
    memory = OpticalMemory()
    memory.sync(turns)
    assert len(memory) == 3


def test_count_tokens_prices_images_exactly() -> None:
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (1280, 1280), 255).save(buffer, format="PNG")
    image = {
        "type": "image",
        "base64": base64.b64encode(buffer.getvalue()).decode(),
        "mime_type": "image/png",
    }
    message = HumanMessage(content=[{"type": "text", "text": "page"}, image])
    text_only = count_tokens([HumanMessage("page")], provider=PROVIDER)
    assert count_tokens([message], provider=PROVIDER) - text_only == 765  # 4 tiles x 170 + 85
    assert (
        count_tokens([message], provider="anthropic:claude-sonnet-4-5")
        > count_tokens([HumanMessage("page")], provider="anthropic:claude-sonnet-4-5") + 1000
    )
