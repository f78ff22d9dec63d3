"""The Agents SDK adapter under the SDK's real ``Runner`` with its own ``ScriptedModel`` and a real function
tool: the model gets page images that fit the budget, the raw history keeps every item, tool-call pairs stay
intact, ``pop_item`` / ``clear_session`` / ``get_items(limit)`` behave as ``SQLiteSession``'s, bad items
change nothing, and another process continues the session."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

pytest.importorskip("agents")

from agents import Agent, RunConfig, Runner, SQLiteSession, function_tool
from agents.memory import Session
from agents.run_config import CallModelData, ModelInputData
from agents.testing import ScriptedModel, assistant_message, function_call
from PIL import Image

from optical_memory.errors import InputError
from optical_memory.integrations.openai_agents import OpticalSession, items_to_turns

ROOT = Path(__file__).resolve().parents[2]
PROVIDER = "openai:gpt-4o"
BUDGET = 6_000
CONFIG = {"provider": PROVIDER, "recent_turns": 6, "budget": BUDGET}
RUN = RunConfig(tracing_disabled=True)
_T = TypeVar("_T")


def run(coro: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(coro)


@function_tool
def bash(cmd: str) -> str:
    """Run a shell command and return what it prints."""
    n = len(cmd)
    return "\n".join(f"-rw-r--r-- 1 me me {j * 1000 + n} file{j}.py" for j in range(1 + n % 6))


def listing(cmd: str) -> str:
    n = len(cmd)
    return "\n".join(f"-rw-r--r-- 1 me me {j * 1000 + n} file{j}.py" for j in range(1 + n % 6))


def script(steps: range) -> list[Any]:
    """Two model responses per user turn: a note with two parallel calls, then the answer."""
    out: list[Any] = []
    for i in steps:
        out.append(
            [
                assistant_message(f"Looking at dir{i}.", item_id=f"msg_{i}_a"),
                function_call("bash", {"cmd": f"ls -l dir{i}"}, call_id=f"call_{i}_a"),
                function_call("bash", {"cmd": f"du -sh dir{i}"}, call_id=f"call_{i}_b"),
            ]
        )
        answer = f"Step {i}: the largest file in dir{i} is file{i % 6}.py. " + "notes " * 40
        out.append([assistant_message(answer, item_id=f"msg_{i}_b")])
    return out


def agent_for(model: ScriptedModel) -> Agent[Any]:
    return Agent(name="coder", instructions="You are a coding agent.", model=model, tools=[bash])


def run_steps(session: Session, model: ScriptedModel, steps: range) -> None:
    agent = agent_for(model)

    async def go() -> None:
        for i in steps:
            await Runner.run(
                agent, f"Step {i}: list dir{i} and tell me the largest file.", session=session, run_config=RUN
            )

    run(go())


def images_in(items: Sequence[Any]) -> list[str]:
    """The data URLs of every ``input_image`` part in a model input."""
    return [
        part["image_url"]
        for item in items
        if isinstance(item, dict) and isinstance(item.get("content"), list)
        for part in item["content"]
        if part.get("type") == "input_image"
    ]


def assert_pairs_intact(items: Sequence[Any]) -> set[str]:
    """Every function_call in a model input is answered right after it, and every output answers a call."""
    calls = [i["call_id"] for i in items if i.get("type") == "function_call"]
    outputs = [i["call_id"] for i in items if i.get("type") == "function_call_output"]
    assert sorted(calls) == sorted(outputs), (calls, outputs)
    for n, item in enumerate(items):
        if item.get("type") == "function_call_output":
            assert any(
                i.get("call_id") == item["call_id"] for i in items[:n] if i.get("type") == "function_call"
            )
    return set(calls)


def all_raw(path: Path, session_id: str) -> list[Any]:
    """The whole history as the SDK's own SQLiteSession reads it from the same file."""
    inner = SQLiteSession(session_id, path)
    try:
        return run(inner.get_items())
    finally:
        inner.close()


# --- a long agent run ----------------------------------------------------------------------------------


def test_a_long_agent_run_sends_pages_within_budget_and_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "agents.db"
    model = ScriptedModel(script(range(24)))
    with OpticalSession("user-42", path, config=CONFIG) as session:
        assert isinstance(session, Session)
        run_steps(session, model, range(24))
        model.assert_complete()
        usage = session.last_context.usage if session.last_context else None
        pages = session.memory.pages()
        n_turns = len(session.memory)

    # the model received page images of the older conversation, priced within the budget
    assert usage is not None and usage.image_tokens > 0 and usage.context_tokens <= BUDGET
    assert usage.history_text_tokens > usage.context_tokens
    last_input = model.calls[-1].input
    urls = images_in(last_input)
    assert urls and all(u.startswith("data:image/png;base64,") for u in urls)
    with Image.open(io.BytesIO(base64.b64decode(urls[0].split(",", 1)[1]))) as page:
        assert page.width > 100
    assert any(images_in(call.input) for call in model.calls[:8]) is False  # short history: text only
    assert sum(bool(images_in(call.input)) for call in model.calls) > len(model.calls) // 2

    # the SDK's own store (a SQLiteSession on the same file) holds the whole raw history
    raw = all_raw(path, "user-42")
    assert len(raw) == 24 * 7  # user, note, two calls, two outputs, answer
    assert [i["content"] for i in raw if i.get("role") == "user"] == [
        f"Step {i}: list dir{i} and tell me the largest file." for i in range(24)
    ]
    outputs = {i["call_id"]: i["output"] for i in raw if i.get("type") == "function_call_output"}
    assert outputs["call_5_a"] == listing("ls -l dir5") and len(outputs) == 48  # the real tool ran
    assert n_turns == len(items_to_turns(raw)) == 24 * 6  # the two calls share one assistant turn

    # every call/output pair reached each model call intact, or its turns are on a page
    for call in model.calls:
        assert_pairs_intact(call.input)
    shown = assert_pairs_intact(last_input)
    on_pages = {t for p in pages for t in range(p.turns[0], p.turns[1] + 1)}
    turns = items_to_turns(raw)
    for tid, turn in enumerate(turns):
        for call_ in turn.get("tool_calls", []):
            assert call_["id"] in shown or tid in on_pages, call_["id"]
    assert {"call_23_a", "call_23_b"} <= shown

    # the history the SDK handed the model starts with the pages, never saved back as turns
    assert last_input[0]["role"] == "user" and images_in(last_input[:1])
    assert not any(images_in([i]) for i in raw)


def test_a_second_process_continues_the_session(tmp_path: Path) -> None:
    path = tmp_path / "agents.db"
    model = ScriptedModel(script(range(10)))
    with OpticalSession("user-7", path, config=CONFIG) as session:
        run_steps(session, model, range(10))
        before = len(session.memory)
    script_file = tmp_path / "continue.py"
    script_file.write_text(
        textwrap.dedent(
            f"""
            import asyncio, json
            from agents import Agent, RunConfig, Runner, function_tool
            from agents.testing import ScriptedModel, assistant_message, function_call
            from optical_memory.integrations.openai_agents import OpticalSession

            @function_tool
            def bash(cmd: str) -> str:
                \"\"\"Run a shell command.\"\"\"
                return "ok " + cmd

            model = ScriptedModel([
                [function_call("bash", {{"cmd": "ls dir10"}}, call_id="call_10_a")],
                [assistant_message("Step 10 done.", item_id="msg_10_b")],
            ])
            agent = Agent(name="coder", instructions="You are a coding agent.", model=model, tools=[bash])

            async def main():
                with OpticalSession("user-7", {str(path)!r}) as session:
                    await Runner.run(agent, "Step 10: list dir10.", session=session,
                                     run_config=RunConfig(tracing_disabled=True))
                    first = model.calls[0].input
                    print(json.dumps({{
                        "images": sum(p.get("type") == "input_image" for i in first
                                      if isinstance(i.get("content"), list) for p in i["content"]),
                        "texts": [i.get("content") for i in first if isinstance(i.get("content"), str)],
                        "turns": len(session.memory),
                        "provider": session.memory.config.provider,
                        "recent": session.memory.config.recent_turns,
                    }}))

            asyncio.run(main())
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    done = subprocess.run(
        [sys.executable, str(script_file)], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["images"] > 0  # the earlier conversation arrived as pages
    assert "Step 9: list dir9 and tell me the largest file." in seen["texts"]  # recent turns as text
    assert seen["texts"][-1] == "Step 10: list dir10."
    assert seen["turns"] == before + 4  # user, call, output, answer
    assert (seen["provider"], seen["recent"]) == (PROVIDER, 6)  # the stored config was kept
    raw = all_raw(path, "user-7")
    assert raw[-1]["content"][0]["text"] == "Step 10 done." and len(raw) == 10 * 7 + 4


# --- the Session protocol as SQLiteSession has it --------------------------------------------------------


def conversation(n: int = 3, filler: int = 0) -> list[Any]:
    """Raw items of ``n`` user turns, each answered after a reasoning item and two parallel calls."""
    items: list[dict[str, Any]] = []
    for i in range(n):
        items += [
            {"role": "user", "content": f"question {i}"},
            {"type": "reasoning", "id": f"rs_{i}", "summary": []},
            {"type": "function_call", "call_id": f"c{i}a", "name": "bash", "arguments": '{"cmd": "ls"}'},
            {"type": "function_call", "call_id": f"c{i}b", "name": "bash", "arguments": '{"cmd": "pwd"}'},
            {"type": "function_call_output", "call_id": f"c{i}a", "output": "a.py"},
            {"type": "function_call_output", "call_id": f"c{i}b", "output": "/home"},
            {
                "id": f"msg_{i}",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [
                    {
                        "type": "output_text",
                        "text": f"answer {i}"
                        + "".join(f" src/pkg{j % 7}/file{i}_{j}.py" for j in range(filler)),
                        "annotations": [],
                    }
                ],
            },
        ]
    return items


def test_pop_item_and_get_items_limit_match_sqlite_session() -> None:
    async def go() -> None:
        items = conversation()
        plain = SQLiteSession("s")
        with OpticalSession("s", config={"recent_turns": 40}) as session:
            await plain.add_items(items)
            await session.add_items(items)
            for limit in (1, 3, 7, 100):
                assert await session.get_items(limit) == await plain.get_items(limit)
            assert len(session.memory) == 15
            popped = []
            while (item := await plain.pop_item()) is not None:
                assert await session.pop_item() == item
                popped.append(item)
                assert len(session.memory) == len(items_to_turns(items[: len(items) - len(popped)]))
                assert await session.get_items(2) == await plain.get_items(2)
            assert await session.pop_item() is None
            assert await session.get_items() == [] and len(session.memory) == 0
            await session.add_items(items[:4])  # the session takes new items after pops
            (call,) = [t for t in items_to_turns(items[:4]) if t.get("tool_calls")]
            assert [c["id"] for c in call["tool_calls"]] == ["c0a", "c0b"]
            context: list[Any] = await session.get_items()
            assert [i.get("call_id") for i in context] == [None, None]  # calls without outputs go as text
            assert context[1]["content"] == 'Called bash({"cmd": "ls"})\nCalled bash({"cmd": "pwd"})'
        plain.close()

    run(go())


def test_calls_split_across_batches_join_one_turn_and_pop_one_by_one() -> None:
    async def go() -> None:
        items = conversation()[:7]
        with OpticalSession("s") as session:
            for item in items:  # one item per add_items call
                await session.add_items([item])
            assert len(session.memory) == 5  # user, one turn of two calls, two outputs, answer
            context: list[Any] = await session.get_items()
            assert [i.get("type") for i in context] == [
                None,
                "function_call",
                "function_call",
                "function_call_output",
                "function_call_output",
                None,
            ]
            for _ in range(3):
                await session.pop_item()  # answer, output b, output a
            popped: Any = await session.pop_item()
            assert popped["call_id"] == "c0b"
            assert len(session.memory) == 2
            context = await session.get_items()
            assert "Called bash" in json.dumps(context) and "c0b" not in json.dumps(context)
            await session.add_items(items[3:5])  # call b again, then output a
            await session.add_items(items[5:])
            assert len(session.memory) == 5
            assert_pairs_intact(await session.get_items())

    run(go())


def test_pop_item_refuses_a_turn_already_on_a_page() -> None:
    async def go() -> None:
        with OpticalSession("s", config={"recent_turns": 0}) as session:
            await session.add_items(
                [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]
            )
            assert len(session.memory.pages()) == 1
            with pytest.raises(InputError, match="already laid out on a page"):
                await session.pop_item()
            assert len(await session.inner.get_items()) == 2 and len(session.memory) == 2

    run(go())


def test_clear_session_empties_both_stores(tmp_path: Path) -> None:
    path = tmp_path / "agents.db"

    async def go() -> None:
        with OpticalSession("s", path, config=CONFIG) as session:
            await session.add_items(conversation())
            await session.clear_session()
            assert await session.get_items() == [] and len(session.memory) == 0
            assert await session.inner.get_items() == []
            await session.add_items(conversation()[:1])
        with OpticalSession("s", path) as session:
            assert await session.get_items() == [{"role": "user", "content": "question 0"}]

    run(go())
    assert all_raw(path, "s") == [{"role": "user", "content": "question 0"}]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"type": "function_call_output", "call_id": "nope", "output": "x"}, "answers call 'nope'"),
        (
            {"type": "function_call", "call_id": "c9", "name": "bash", "arguments": "{not json"},
            "not valid JSON",
        ),
        ({"type": "function_call", "call_id": "c9", "arguments": "{}"}, "non-empty string 'name'"),
        ({"role": "tool", "content": "x"}, "message role must be"),
        ({"role": "user"}, "needs 'content'"),
        ({"content": "no role or type"}, "needs a 'type' or a 'role'"),
        ("just a string", "must be a dict"),
        ({"role": "user", "content": [{"type": "input_text"}]}, "needs a string 'text'"),
    ],
)
def test_bad_items_are_refused_and_change_nothing(tmp_path: Path, bad: Any, message: str) -> None:
    path = tmp_path / "agents.db"

    async def go() -> None:
        with OpticalSession("s", path, config=CONFIG) as session:
            await session.add_items(conversation()[:6])
            before = (await session.get_items(), len(session.memory))
            with pytest.raises(InputError, match=message):
                await session.add_items([{"role": "user", "content": "fine"}, bad])
            assert (await session.get_items(), len(session.memory)) == before
            assert len(await session.inner.get_items()) == 6

    run(go())


def test_items_become_chat_turns() -> None:
    items: list[Any] = [
        {"role": "system", "content": "instructions travel apart"},
        {"role": "developer", "content": "so do these"},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "read this"},
                {
                    "type": "input_file",
                    "filename": "report.pdf",
                    "file_data": "data:application/pdf;base64,AAAA",
                },
                {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
            ],
        },
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "thinking"}]},
        {
            "type": "web_search_call",
            "id": "ws_1",
            "status": "completed",
            "action": {"type": "search", "query": "x"},
        },
        {"type": "custom_tool_call", "call_id": "ct_1", "name": "patch", "input": "*** diff"},
        {"type": "custom_tool_call_output", "call_id": "ct_1", "output": "applied"},
        {"type": "item_reference", "id": "msg_0"},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "I cannot"}]},
    ]
    turns = items_to_turns(items)
    assert [t["role"] for t in turns] == ["user", "assistant", "assistant", "user", "assistant"]
    user = turns[0]["content"]
    assert user[0] == {"type": "text", "text": "read this"}
    assert "report.pdf" in user[1]["text"] and "not kept" in user[1]["text"]
    assert "audio part: wav" in user[2]["text"]
    assert turns[1]["content"].startswith("Called web_search_call") and '"query":"x"' in turns[1]["content"]
    assert turns[2]["content"] == "Called patch(*** diff)"
    assert turns[3]["content"][0]["text"] == "Tool result (custom_tool_call_output):"
    assert turns[4]["content"][0]["text"] == "[refusal] I cannot"


def test_an_input_image_is_stored_as_an_image_part() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "white").save(buffer, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    item: Any = {
        "role": "user",
        "content": [
            {"type": "input_text", "text": "look"},
            {"type": "input_image", "image_url": url, "detail": "auto"},
        ],
    }
    assert items_to_turns([item])[0]["content"][1] == {"type": "image_url", "image_url": {"url": url}}

    async def go() -> None:
        with OpticalSession("s") as session:
            await session.add_items([item])
            assert len(session.memory) == 1

    run(go())


def test_a_ram_memory_catches_up_with_a_persistent_inner_session(tmp_path: Path) -> None:
    path = tmp_path / "raw.db"

    async def go() -> None:
        inner = SQLiteSession("s", path)
        await inner.add_items(conversation(8, filler=60))
        with OpticalSession("s", inner=inner, config={"recent_turns": 4, "provider": PROVIDER}) as session:
            context = await session.get_items()
            assert len(session.memory) == 40 and images_in(context)
            assert_pairs_intact(context)
        inner.close()

    run(go())


def test_the_example_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "03_openai_agents.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "page images" in done.stdout and (tmp_path / "memory.db").exists()


@function_tool
def read_file(path: str) -> str:
    """Read a file of the repository."""
    return "\n".join(f"{path}:{n}: value_{n} = compute({n}, {len(path) * n}) # step {n}" for n in range(40))


LONG_RUN_BUDGET = 6_000


def test_the_input_filter_keeps_a_long_run_optical() -> None:
    rounds = 24
    outputs: list[Any] = [
        [function_call("read_file", {"path": f"src/mod{i}.py"}, call_id=f"read_{i}")] for i in range(rounds)
    ]
    outputs.append([assistant_message("All files read.", item_id="msg_done")])

    def one_run(with_filter: bool) -> tuple[ScriptedModel, OpticalSession]:
        model = ScriptedModel(outputs)
        agent = Agent(name="reader", instructions="Read files.", model=model, tools=[read_file])
        session = OpticalSession("s", config={**CONFIG, "budget": LONG_RUN_BUDGET})
        config = RunConfig(tracing_disabled=True)
        if with_filter:
            config = RunConfig(tracing_disabled=True, call_model_input_filter=session.call_model_input_filter)
        run(Runner.run(agent, "Read every module.", session=session, run_config=config, max_turns=100))
        model.assert_complete()
        return model, session

    bare_model, bare_session = one_run(False)
    model, session = one_run(True)
    with bare_session, session:
        # without the filter the run's own items pile up as text: the session was read once, empty
        assert not any(images_in(call.input) for call in bare_model.calls)
        # with it, later calls of the same run get page images of the run's earlier rounds, within budget
        assert images_in(model.calls[-1].input) and sum(bool(images_in(c.input)) for c in model.calls) > 5
        usage = session.last_context.usage if session.last_context else None
        assert usage is not None and usage.image_tokens > 0 and usage.context_tokens <= LONG_RUN_BUDGET
        for call in model.calls:
            shown = assert_pairs_intact(call.input)
        assert f"read_{rounds - 1}" in shown  # the newest call and its output, as they are
        assert len(model.calls[-1].input) < len(bare_model.calls[-1].input) // 2
        assert [c.input[:1] for c in model.calls[:2]] == [c.input[:1] for c in bare_model.calls[:2]]
        raw = run(session.inner.get_items())
        assert raw == run(bare_session.inner.get_items()) and len(raw) == 2 + 2 * rounds


def test_the_input_filter_leaves_an_input_it_does_not_recognise() -> None:
    async def go() -> None:
        with OpticalSession("s", config=CONFIG) as session:
            await session.add_items(conversation(8, filler=60))
            await session.get_items()
            await session.add_items(conversation(2)[:1])
            data = CallModelData(
                ModelInputData(input=[{"role": "user", "content": "other"}], instructions="x"),
                agent_for(ScriptedModel()),
                None,
            )
            assert await session.call_model_input_filter(data) is data.model_data

    run(go())


def test_without_the_sdk_the_error_names_the_extra(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['agents'] = None\n"
        "try:\n    import optical_memory.integrations.openai_agents\n"
        "except ImportError as exc:\n    print(type(exc).__name__, exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert "MissingDependencyError" in done.stdout and "optical-memory[openai-agents]" in done.stdout, (
        done.stderr
    )
