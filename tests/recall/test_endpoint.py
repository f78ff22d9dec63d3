"""The ``endpoint`` reader against a small OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from optical_memory.errors import ConfigError, RecallError
from optical_memory.ladder import Rung
from optical_memory.recall import get_reader
from optical_memory.recall.endpoint import EndpointReader
from tests.servers import ChatServer, reply


class _Server(ChatServer):
    """Answers chat completions with canned replies; records what it was sent."""

    def __init__(self) -> None:
        self.replies: list[tuple[int, Any]] = []  # (status, body) consumed in order; then a default reply
        super().__init__(self._answer)

    def _answer(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
        status, out = self.replies.pop(0) if self.replies else (200, None)
        return status, reply(
            "User\nhello from the page", usage={"completion_tokens": 7}
        ) if out is None else out


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.close()


def _page() -> Image.Image:
    return Image.new("L", (640, 640), 255)


def test_reads_a_page_through_the_server(server: _Server) -> None:
    reader = EndpointReader(server.url, model="ocr-model", api_key="secret", max_tokens=123)
    reading = reader.read(_page())
    assert reading.text == "User\nhello from the page"
    assert reading.reader == "endpoint" and reading.rung is Rung.SMALL and reading.tokens == 7
    body = server.requests[0]
    assert body["model"] == "ocr-model" and body["temperature"] == 0.0 and body["max_tokens"] == 123
    image_part, text_part = body["messages"][0]["content"]
    assert text_part == {"type": "text", "text": "Free OCR."}
    url = image_part["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert sent.size == (640, 640)
    assert server.headers[0]["Authorization"] == "Bearer secret"


def test_settings_come_from_the_environment(server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/")
    monkeypatch.setenv("OPTICAL_MEMORY_OCR_MODEL", "env-model")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    reader = get_reader("endpoint", extra_body={"vllm_xargs": {"ngram_size": 30}})
    reader.read(_page())
    assert server.requests[0]["model"] == "env-model"
    assert server.requests[0]["vllm_xargs"] == {"ngram_size": 30}
    assert "Authorization" not in server.headers[0]


def test_retries_server_errors_with_backoff(server: _Server) -> None:
    server.replies = [(503, {"error": "warming up"}), (500, {"error": "oops"})]
    reading = EndpointReader(server.url, retries=2, backoff=0.01).read(_page())
    assert reading.text.endswith("hello from the page")
    assert len(server.requests) == 3


def test_gives_up_after_the_retries(server: _Server) -> None:
    server.replies = [(503, {"error": "busy"})] * 3
    with pytest.raises(RecallError, match=r"after 2 attempt\(s\).*503"):
        EndpointReader(server.url, retries=1, backoff=0.01).read(_page())


def test_client_errors_fail_at_once_with_a_hint(server: _Server) -> None:
    server.replies = [(401, {"error": "bad key"})]
    with pytest.raises(RecallError, match=r"401.*OPENAI_API_KEY"):
        EndpointReader(server.url, retries=3, backoff=0.01).read(_page())
    assert len(server.requests) == 1


def test_a_reply_that_is_not_a_completion_is_an_error(server: _Server) -> None:
    server.replies = [(200, {"object": "something else"})]
    with pytest.raises(RecallError, match="not a chat completion"):
        EndpointReader(server.url).read(_page())
    server.replies = [(200, b"<html>proxy page</html>")]
    with pytest.raises(RecallError, match="did not answer JSON"):
        EndpointReader(server.url).read(_page())


def test_unreachable_server_is_a_clear_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    reader = EndpointReader(f"http://127.0.0.1:{port}/v1", retries=1, backoff=0.01, timeout=2)
    with pytest.raises(
        RecallError, match=rf"cannot reach the OCR endpoint http://127.0.0.1:{port}/v1.*OPENAI_BASE_URL"
    ):
        reader.read(_page())


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="http"):
        EndpointReader("ftp://example.org")
    with pytest.raises(ConfigError):
        EndpointReader("http://127.0.0.1:1/v1", timeout=0)
