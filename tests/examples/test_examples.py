"""The numbered examples run as a user runs them (subprocesses), with no network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai.types.chat import ChatCompletionContentPartParam, ChatCompletionMessageParam
from PIL import Image

from tests.formats.test_formats import _validate
from tests.servers import ChatServer, reply

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(
    script: str, cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_01_quickstart(tmp_path: Path) -> None:
    done = _run("01_quickstart.py", tmp_path, "sheet.png")
    assert done.returncode == 0, done.stderr
    assert "deepseek-ocr" in done.stdout and "with a 2,500-token budget" in done.stdout
    assert "saved the contact sheet to sheet.png" in done.stdout
    assert "small" in done.stdout and "large" in done.stdout  # pages have faded
    with Image.open(tmp_path / "sheet.png") as sheet:
        assert sheet.width > 1000


def test_02_without_endpoint_prints_the_request(tmp_path: Path) -> None:
    done = _run("02_openai_agent.py", tmp_path)
    assert done.returncode == 0, done.stderr
    head, _, body = done.stdout.partition("the request that would be sent to /chat/completions:\n")
    assert "OPENAI_BASE_URL is not set" in head
    request = json.loads(body)
    assert request["model"] == "gpt-4o"
    _validate(ChatCompletionMessageParam, ChatCompletionContentPartParam, request["messages"])
    parts = [p for m in request["messages"] if isinstance(m["content"], list) for p in m["content"]]
    assert any(p["type"] == "image_url" for p in parts)
    assert request["messages"][-1] == {
        "role": "user",
        "content": "Which two bugs caused the double counting we found at the start?",
    }


@pytest.fixture
def fake_endpoint() -> Iterator[ChatServer]:
    """A local chat-completions endpoint whose n-th answer is ``fake answer n``."""

    def answer(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        return 200, reply(f"fake answer {len(server.requests)}", model=body["model"], usage=usage)

    server = ChatServer(answer)
    try:
        yield server
    finally:
        server.close()


def test_02_agent_loop_against_a_local_endpoint(tmp_path: Path, fake_endpoint: ChatServer) -> None:
    env = {"OPENAI_BASE_URL": fake_endpoint.url, "OPENAI_API_KEY": "test", "NO_PROXY": "127.0.0.1"}
    done = _run("02_openai_agent.py", tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "assistant: fake answer 1" in done.stdout and "assistant: fake answer 2" in done.stdout
    first, second = fake_endpoint.requests
    assert fake_endpoint.paths[0] == "/v1/chat/completions"
    for request in (first, second):
        _validate(ChatCompletionMessageParam, ChatCompletionContentPartParam, request["messages"])
    # the reply to the first question came back into the memory and is sent with the second
    assert {"role": "assistant", "content": "fake answer 1"} in second["messages"]
    assert second["messages"][-1]["content"].startswith("上海门店新终端")


def test_07_langchain(tmp_path: Path) -> None:
    pytest.importorskip("langchain")
    done = _run("07_langchain.py", tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("the graph keeps 80 messages")
    sent = int(lines[1].split("sent ")[1].split(" messages")[0])
    assert sent < 80 and "x less" in lines[1] and "pages" in lines[2]
