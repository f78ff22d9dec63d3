"""The Pydantic AI adapter in real ``Agent`` runs, with Pydantic AI's own ``FunctionModel`` and ``TestModel``
and real tools: the model gets page images that fit the budget, ``all_messages()`` keeps every message,
tool pairs stay intact, and another process continues the conversation."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pydantic_ai")

import pydantic_ai.models
from PIL import Image
from pydantic_ai import Agent, ModelRetry, RunContext
from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.messages import (
    BinaryContent,
    ImageUrl,
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelRequest,
    ModelResponse,
    SystemPromptPart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolReturnPart,
    UserContent,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from optical_memory import OpticalMemory
from optical_memory.errors import ConfigError, InputError, ProviderError
from optical_memory.formats import PageItem, TextItem
from optical_memory.integrations.pydantic_ai import OpticalHistory, optical_messages, provider_of, to_turns
from optical_memory.pricing.providers import get_provider

ROOT = Path(__file__).resolve().parents[2]
PROVIDER = "openai:gpt-4o"
BUDGET = 6_000
CONFIG = {"provider": PROVIDER, "recent_turns": 4, "budget": BUDGET}
SYSTEM = "You are a coding agent."


@pytest.fixture(autouse=True)
def no_model_requests(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No real model is ever reached."""
    monkeypatch.setattr(pydantic_ai.models, "ALLOW_MODEL_REQUESTS", False)
    yield


@pytest.fixture(autouse=True)
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """The event loop ``run_sync`` runs on, closed after the test (``run_sync`` leaves its own open)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    asyncio.set_event_loop(None)
    loop.close()


class Script:
    """A scripted model: step ``i`` lists dir ``i`` (every third step reads a file too, in parallel; step 5
    first reads a missing file and retries), then answers; it records the messages of every call."""

    def __init__(self) -> None:
        self.step = 0
        self.calls: list[list[ModelMessage]] = []

    def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        self.calls.append(list(messages))
        i, last = self.step, messages[-1]
        assert isinstance(last, ModelRequest)
        returns = [p for p in last.parts if isinstance(p, ToolReturnPart)]
        if any(p.outcome == "retried" for p in returns):
            return ModelResponse(
                parts=[ToolCallPart("read", {"file": f"dir{i}/file1.py"}, tool_call_id=f"read_{i}")]
            )
        if returns:
            return ModelResponse(
                parts=[
                    ThinkingPart(f"secret plan {i}"),
                    TextPart(f"The largest file in dir{i} is file{i % 6}.py."),
                ]
            )
        parts: list[Any] = [
            TextPart(f"Looking at dir{i}."),
            ToolCallPart("ls", {"path": f"dir{i}"}, tool_call_id=f"ls_{i}"),
        ]
        if i % 3 == 0:
            parts.append(ToolCallPart("read", {"file": f"dir{i}/file0.py"}, tool_call_id=f"read_{i}"))
        if i == 5:
            parts.append(ToolCallPart("read", {"file": "missing.py"}, tool_call_id=f"bad_{i}"))
        return ModelResponse(parts=parts)


def ls(path: str) -> str:
    """List a directory."""
    return "\n".join(
        f"-rw-r--r-- 1 me me {j * 1000 + len(path)} {path}/file{j}.py" for j in range(1 + len(path) % 6)
    )


def read(file: str) -> str:
    """Read a file."""
    if "missing" in file:
        raise ModelRetry(f"{file} does not exist: read a file that ls listed")
    return f"# {file}\n" + "\n".join(f"def f{j}(x):\n    return x * {j}" for j in range(8))


def make_agent(script: Script, capability: OpticalHistory) -> Agent[None, str]:
    return Agent(FunctionModel(script), system_prompt=SYSTEM, tools=[ls, read], capabilities=[capability])


def drive(
    agent: Agent[None, str], script: Script, steps: range, history: list[ModelMessage]
) -> list[ModelMessage]:
    for i in steps:
        script.step = i
        result = agent.run_sync(
            f"Step {i}: list dir{i} and tell me the largest file.", message_history=history
        )
        history = result.all_messages()
    return history


def thread(history: list[ModelMessage]) -> str:
    """The memory session of a conversation: its Pydantic AI conversation id."""
    conversation = history[-1].conversation_id
    assert conversation is not None
    return conversation


def check_pairs(messages: list[ModelMessage]) -> set[str]:
    """Every tool result the model got follows its call, and every call got its result; the call ids."""
    calls: dict[str, str] = {}
    answered: set[str] = set()
    for message in messages:
        for part in message.parts:
            if isinstance(part, ToolCallPart):
                calls[part.tool_call_id] = part.tool_name
            if isinstance(part, ToolReturnPart):
                assert calls.get(part.tool_call_id) == part.tool_name, f"orphan result {part.tool_call_id}"
                answered.add(part.tool_call_id)
    assert set(calls) == answered, f"calls without results: {set(calls) - answered}"
    return answered


def page_images(messages: list[ModelMessage]) -> list[BinaryContent]:
    first = messages[0]
    assert isinstance(first, ModelRequest)
    return [
        item
        for part in first.parts
        if isinstance(part, UserPromptPart) and not isinstance(part.content, str)
        for item in part.content
        if isinstance(item, BinaryContent)
    ]


def test_a_long_run_sends_pages_within_budget_and_keeps_the_history(tmp_path: Path) -> None:
    script = Script()
    capability = OpticalHistory(tmp_path / "memory.db", config=CONFIG)
    agent = make_agent(script, capability)
    steps = 14
    history = drive(agent, script, range(steps), [])

    # the model got page images, priced within the budget
    context = capability.last_context
    assert context is not None
    usage = context.usage
    assert usage.image_tokens > 0 and usage.context_tokens <= BUDGET
    assert usage.history_text_tokens > usage.context_tokens
    last = script.calls[-1]
    images = page_images(last)
    pages = [item for item in context.items if isinstance(item, PageItem)]
    assert len(images) == len(pages) > 0
    provider = get_provider(PROVIDER)
    priced = 0
    for image in images:
        assert image.media_type == "image/png" and image.vendor_metadata is not None
        with Image.open(io.BytesIO(image.data)) as page:
            priced += provider.image_tokens(page.width, page.height, image.vendor_metadata["detail"])
    assert priced == usage.image_tokens
    first = last[0]
    assert isinstance(first, ModelRequest) and isinstance(first.parts[0], SystemPromptPart)
    assert first.parts[0].content == SYSTEM

    # the run's own history keeps every message
    prompts = [
        p.content
        for m in history
        if isinstance(m, ModelRequest)
        for p in m.parts
        if isinstance(p, UserPromptPart)
    ]
    assert prompts == [f"Step {i}: list dir{i} and tell me the largest file." for i in range(steps)]
    assert isinstance(history[0], ModelRequest) and isinstance(history[0].parts[0], SystemPromptPart)
    made = [
        p.tool_call_id
        for m in history
        if isinstance(m, ModelResponse)
        for p in m.parts
        if isinstance(p, ToolCallPart)
    ]
    assert len(made) == steps + steps // 3 + 1 + 2  # ls each step, reads every third, a bad and a good read
    memory = capability.threads.get(thread(history))
    assert len(memory) == len(to_turns(history)) - 1  # all but the last answer, stored on the next call

    # every model call got whole tool pairs; a pair not sent as text is on the pages sent
    start = 1 + max(p.turns[1] for p in memory.pages())
    turns = to_turns(history)
    on_pages = set().union(
        *(
            range(p.turns[0], p.turns[1] + 1)
            for p in memory.pages()
            if p.page_id in {x.page_id for x in pages}
        )
    )
    on_pages |= {
        item.turn
        for item in context.items
        if isinstance(item, TextItem) and item.turn is not None and item.turn < start
    }
    for call in script.calls:
        check_pairs(call)
    in_text = check_pairs(last)
    for n, turn in enumerate(turns[: len(memory)]):
        ids = [c["id"] for c in turn.get("tool_calls", ())] + [turn.get("tool_call_id")] * (
            "tool_call_id" in turn
        )
        for call_id in ids:
            assert call_id in in_text or n in on_pages, f"tool turn {n} ({call_id}) reached the model nowhere"
    # the retried call and its retry reached the model too (as text, or on a page)
    assert any(t.get("tool_call_id") == "bad_5" for t in turns)
    # thinking is not stored, and recent responses are sent as they were
    assert not any("secret plan" in json.dumps(t) for t in turns)
    capability.close()


def test_the_framework_messages_are_kept_in_the_recent_window(tmp_path: Path) -> None:
    script = Script()
    capability = OpticalHistory(None, config={**CONFIG, "recent_turns": 6})
    agent = make_agent(script, capability)
    history = drive(agent, script, range(8), [])
    last = script.calls[-1]
    # the recent messages are the run's own objects: same parts, same tool call ids
    tail = [m for m in last[1:]]
    assert all(any(m is h for h in history) or isinstance(m, ModelRequest) for m in tail)
    sent = [p for m in tail for p in m.parts if isinstance(p, ToolCallPart | ToolReturnPart | ThinkingPart)]
    kept = [
        p for m in history for p in m.parts if isinstance(p, ToolCallPart | ToolReturnPart | ThinkingPart)
    ]
    assert sent and all(any(p is q for q in kept) for p in sent)
    assert any(isinstance(p, ThinkingPart) for p in sent)


@dataclass
class Reminder(AbstractCapability[Any]):
    """A capability that adds a request-only reminder after the history."""

    async def before_model_request(self, ctx: RunContext[Any], request_context: Any) -> Any:
        reminder = ModelRequest(parts=[UserPromptPart("Reminder: be brief.")])
        request_context.messages = [*request_context.messages, reminder]
        return request_context


def test_request_only_messages_of_an_earlier_capability_are_kept() -> None:
    script = Script()
    capability = OpticalHistory(None, config=CONFIG)
    agent = Agent(
        FunctionModel(script), system_prompt=SYSTEM, tools=[ls, read], capabilities=[Reminder(), capability]
    )
    history = drive(agent, script, range(6), [])
    last = script.calls[-1]
    assert page_images(last)
    prompts = [p.content for m in last for p in m.parts if isinstance(p, UserPromptPart)]
    assert prompts[-1] == "Reminder: be brief."
    assert not any(
        p.content == "Reminder: be brief." for m in history for p in m.parts if isinstance(p, UserPromptPart)
    )
    memory = capability.threads.get(thread(history))
    assert len(memory) == len(to_turns(history)) - 1  # the reminder is not stored


def test_another_process_continues_the_conversation(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    script = Script()
    capability = OpticalHistory(path, config=CONFIG)
    history = drive(make_agent(script, capability), script, range(10), [])
    conversation = history[-1].conversation_id
    assert conversation is not None
    memory = capability.threads.get(conversation)
    stored, pages = len(memory), len(memory.pages())
    capability.close()
    (tmp_path / "history.json").write_bytes(ModelMessagesTypeAdapter.dump_json(history))

    child = textwrap.dedent(
        f"""
        import json
        from pathlib import Path

        import pydantic_ai.models
        from pydantic_ai import Agent
        from pydantic_ai.messages import BinaryContent, ModelMessagesTypeAdapter, ModelResponse, TextPart
        from pydantic_ai.models.function import FunctionModel

        from optical_memory.integrations.pydantic_ai import OpticalHistory

        pydantic_ai.models.ALLOW_MODEL_REQUESTS = False
        seen = []

        def model(messages, info):
            seen.append(sum(isinstance(x, BinaryContent) for p in messages[0].parts for x in getattr(p, "content", "")
                            if not isinstance(x, str)))
            return ModelResponse(parts=[TextPart("Noted.")])

        history = ModelMessagesTypeAdapter.validate_json(Path("history.json").read_bytes())
        with_memory = OpticalHistory({str(path)!r})
        agent = Agent(FunctionModel(model), system_prompt={SYSTEM!r}, capabilities=[with_memory])
        result = agent.run_sync("Summarise what we did.", message_history=history)
        memory = with_memory.threads.get({conversation!r})
        print(json.dumps({{"images": seen[-1], "turns": len(memory), "pages": len(memory.pages()),
                          "conversation": result.all_messages()[-1].conversation_id}}))
        with_memory.close()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", child], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["conversation"] == conversation
    assert report["images"] > 0
    assert report["turns"] == stored + 2  # the last answer of this process, and the new prompt
    assert report["pages"] >= pages

    # and this process picks up from the other one's state
    with OpticalMemory.open(path, session=conversation) as reopened:
        assert len(reopened) == stored + 2


def test_bad_input_is_refused_and_stores_nothing(tmp_path: Path) -> None:
    script = Script()
    capability = OpticalHistory(tmp_path / "memory.db", config=CONFIG)
    agent = make_agent(script, capability)
    history = drive(agent, script, range(4), [])
    memory = capability.threads.get(thread(history))
    stored = len(memory)

    # a history cut upstream does not continue the session
    script.step = 4
    with pytest.raises(InputError, match="removed upstream"):
        agent.run_sync("Step 4: go on.", message_history=history[:4])
    assert len(memory) == stored

    # a result whose call no response made
    fresh = OpticalMemory({"recent_turns": 2})
    orphan = ModelRequest(parts=[ToolReturnPart("ls", "a.py", tool_call_id="nope")])
    start = ModelRequest(parts=[UserPromptPart("hi")])
    with pytest.raises(InputError, match="no earlier ModelResponse made that call"):
        optical_messages(fresh, [start, ModelResponse(parts=[TextPart("hello")]), orphan])
    assert len(fresh) == 0
    with pytest.raises(InputError, match="not a ModelRequest or ModelResponse"):
        to_turns([{"role": "user", "content": "hi"}])  # type: ignore[list-item]

    with pytest.raises(ProviderError):
        OpticalHistory(None, provider="nope:model")
    empty = OpticalHistory(None, thread_id=lambda ctx: "", config=CONFIG)
    with pytest.raises(ConfigError, match="thread id"):
        make_agent(Script(), empty).run_sync("Step 0: hi")
    capability.close()


def test_thread_id_from_deps_and_test_model() -> None:
    capability = OpticalHistory(
        None, thread_id=lambda ctx: ctx.deps["user"], config={**CONFIG, "recent_turns": 2}
    )
    agent: Agent[dict[str, str], str] = Agent(
        TestModel(), deps_type=dict, tools=[ls], capabilities=[capability], system_prompt=SYSTEM
    )
    history: list[ModelMessage] = []
    for i in range(6):
        history = agent.run_sync(f"list dir{i}", deps={"user": "ada"}, message_history=history).all_messages()
    memory = capability.threads.get("ada")
    assert len(memory) == len(to_turns(history)) - 1
    assert memory.pages() and capability.last_context is not None  # short turns: a page goes as its text
    assert capability.last_context.usage.context_tokens <= BUDGET
    assert capability.threads.get("ada") is memory


def test_async_runs_and_markers_for_what_cannot_be_priced(loop: asyncio.AbstractEventLoop) -> None:
    script = Script()
    capability = OpticalHistory(None, config={**CONFIG, "recent_turns": 8})
    agent = make_agent(script, capability)

    async def run() -> list[ModelMessage]:
        prompt: list[UserContent] = [
            "Listen to this and read the spec.",
            BinaryContent(b"RIFF0000WAVE", media_type="audio/wav"),
        ]
        first = await agent.run(prompt)
        return first.all_messages()

    history = loop.run_until_complete(run())
    memory = capability.threads.get(thread(history))
    items = memory.context(budget=None).items
    texts = [item.content for item in items if isinstance(item, TextItem)]
    assert any("[audio part: audio/wav; not kept in optical memory]" in t for t in texts)
    assert any("Listen to this" in t for t in texts)


def test_streamed_runs_get_the_optical_context(loop: asyncio.AbstractEventLoop) -> None:
    received: list[list[ModelMessage]] = []

    async def stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
        received.append(list(messages))
        yield "Noted. " * 30

    capability = OpticalHistory(None, config={**CONFIG, "recent_turns": 2})
    agent = Agent(FunctionModel(stream_function=stream), capabilities=[capability])

    async def run() -> list[ModelMessage]:
        history: list[ModelMessage] = []
        for i in range(5):
            async with agent.run_stream(
                f"Note {i}: " + "the build is green. " * 60, message_history=history
            ) as r:
                await r.get_output()
            history = r.all_messages()
        return history

    history = loop.run_until_complete(run())
    assert len(history) == 10 and page_images(received[-1])
    assert capability.last_context is not None and capability.last_context.usage.context_tokens <= BUDGET


def test_images_in_prompts_are_stored() -> None:
    script = Script()
    script.step = 1  # one tool call: its pair fits the recent window
    capability = OpticalHistory(None, config={**CONFIG, "recent_turns": 4})
    agent = make_agent(script, capability)
    png = io.BytesIO()
    Image.new("RGB", (64, 48), "white").save(png, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    prompt: list[UserContent] = [
        "What is in this screenshot?",
        BinaryContent(png.getvalue(), media_type="image/png"),
        ImageUrl(url),
        ImageUrl("https://example.com/chart.png"),
    ]
    result = agent.run_sync(prompt)
    memory = capability.threads.get(thread(result.all_messages()))
    items = memory.context(budget=None).items
    first = next(item for item in items if isinstance(item, TextItem) and item.role == "user")
    assert "What is in this screenshot?" in first.content and len(first.images) == 2
    assert "https://example.com/chart.png" in first.content  # a web image is a marker: nothing downloaded
    # the model got the user's images as they were (the recent turns are the run's own messages)
    sent = script.calls[0][-1].parts[-1]
    assert isinstance(sent, UserPromptPart) and sent.content == prompt


def test_a_step_larger_than_the_recent_window_stays_text_while_newest() -> None:
    received: list[list[ModelMessage]] = []

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        received.append(list(messages))
        if len(received) == 1:
            calls = [ToolCallPart("ls", {"path": f"d{j}"}, tool_call_id=f"c{j}") for j in range(3)]
            return ModelResponse(parts=calls)
        return ModelResponse(parts=[TextPart("Done.")])

    capability = OpticalHistory(None, config={**CONFIG, "recent_turns": 2})
    agent = Agent(FunctionModel(model), system_prompt=SYSTEM, tools=[ls], capabilities=[capability])
    result = agent.run_sync("List three dirs.")
    assert result.output == "Done."
    # the newest step stays text however large: the model reads the results it asked for as they are
    second = received[1]
    assert check_pairs(second) == {"c0", "c1", "c2"} and not page_images(second)
    returns = [
        p for m in second if isinstance(m, ModelRequest) for p in m.parts if isinstance(p, ToolReturnPart)
    ]
    assert [r.tool_call_id for r in returns] == ["c0", "c1", "c2"]
    assert len(result.all_messages()) == 4


def test_provider_of_models_and_a_provider_given() -> None:
    assert provider_of(FunctionModel(Script())) is None
    assert provider_of(TestModel()) is None
    assert provider_of(None) is None
    received: list[list[ModelMessage]] = []

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        received.append(list(messages))
        return ModelResponse(parts=[TextPart("Noted: " + "the plan is fine and the tests pass. " * 20)])

    capability = OpticalHistory(None, provider="anthropic:claude-sonnet-4-5", config={"recent_turns": 2})
    agent = Agent(FunctionModel(model), capabilities=[capability])
    history: list[ModelMessage] = []
    for i in range(4):
        prompt = f"Note {i}: " + " ".join(f"item {i}.{j} is the step after {i}.{j - 1};" for j in range(60))
        history = agent.run_sync(prompt, message_history=history).all_messages()
    assert (
        capability.last_context is not None
        and capability.last_context.provider == "anthropic:claude-sonnet-4-5"
    )
    images = page_images(received[-1])
    assert images and all(image.vendor_metadata is None for image in images)  # no OpenAI detail for Anthropic


def test_example_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "05_pydantic_ai.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "page images" in done.stdout
    assert "continued in a new process" in done.stdout
