"""The ``endpoint`` reader (the openai client) against a small OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from optical_memory.errors import ConfigError, MissingDependencyError, RecallError
from optical_memory.ladder import Rung
from optical_memory.recall import get_reader
from optical_memory.recall.endpoint import EndpointReader
from tests.recall.helpers import add_reply_headers
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

    def header(self, index: int, name: str) -> str | None:
        """A header of the index-th request, whatever its case."""
        return {k.lower(): v for k, v in self.headers[index].items()}.get(name.lower())


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
    assert body == reader.request_body(_page())  # exactly the documented body, no field added or lost
    assert body["model"] == "ocr-model" and body["temperature"] == 0.0 and body["max_tokens"] == 123
    image_part, text_part = body["messages"][0]["content"]
    assert text_part == {"type": "text", "text": "Free OCR."}
    url = image_part["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert sent.size == (640, 640)
    assert server.paths == ["/v1/chat/completions"]
    assert server.header(0, "Authorization") == "Bearer secret"


def test_settings_come_from_the_environment(server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/")
    monkeypatch.setenv("OPTICAL_MEMORY_OCR_MODEL", "env-model")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    reader = get_reader("endpoint", extra_body={"vllm_xargs": {"ngram_size": 30}, "max_tokens": 50})
    reader.read(_page())
    assert server.requests[0]["model"] == "env-model"
    assert server.requests[0]["vllm_xargs"] == {"ngram_size": 30}
    assert server.requests[0]["max_tokens"] == 50  # extra_body overrides the reader's own fields
    assert server.header(0, "Authorization") is None  # no key: no header at all


def test_retries_server_errors_honouring_retry_after(server: _Server) -> None:
    add_reply_headers(server, {"Retry-After-Ms": "10"})  # the default backoff starts at half a second
    server.replies = [(503, {"error": "warming up"}), (429, {"error": "slow down"})]
    reading = EndpointReader(server.url, retries=2).read(_page())
    assert reading.text.endswith("hello from the page")
    assert len(server.requests) == 3
    assert [server.header(i, "x-stainless-retry-count") for i in range(3)] == ["0", "1", "2"]


def test_a_429_waits_as_long_as_retry_after_says(server: _Server) -> None:
    # in seconds, and longer than the client's own first backoff (at most 0.5 s)
    add_reply_headers(server, {"Retry-After": "0.6"})
    server.replies = [(429, {"error": "slow down"})]
    start = time.monotonic()
    reading = EndpointReader(server.url, retries=1, timeout=5).read(_page())
    assert time.monotonic() - start >= 0.6
    assert reading.text.endswith("hello from the page") and len(server.requests) == 2


@pytest.mark.parametrize("status", [500, 503])
def test_gives_up_after_the_retries(server: _Server, status: int) -> None:
    add_reply_headers(server, {"Retry-After-Ms": "10"})
    server.replies = [(status, {"error": "busy"})] * 3
    with pytest.raises(
        RecallError, match=rf"still answered HTTP {status} after 2 attempt\(s\): .*busy.*raise retries"
    ) as info:
        EndpointReader(server.url, retries=1, timeout=5).read(_page())
    assert server.url in str(info.value) and len(server.requests) == 2


def test_client_errors_fail_at_once_with_a_hint(server: _Server) -> None:
    server.replies = [(401, {"error": "bad key"})]
    with pytest.raises(RecallError, match=r"401.*OPENAI_API_KEY"):
        EndpointReader(server.url, retries=3).read(_page())
    assert len(server.requests) == 1
    server.replies = [(404, {"error": "no such model"})]
    with pytest.raises(RecallError, match=r"404.*OPTICAL_MEMORY_OCR_MODEL"):
        EndpointReader(server.url).read(_page())


def test_error_messages_are_one_line_and_never_show_the_key() -> None:
    def echo(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
        auth = {k.lower(): v for k, v in headers.items()}["authorization"]
        return 403, {"error": {"message": f"key\n{auth}\nis not allowed here"}}

    echoing = ChatServer(echo)
    try:
        with pytest.raises(RecallError) as info:
            EndpointReader(echoing.url, api_key="sk-very-secret-123").read(_page())
    finally:
        echoing.close()
    message = str(info.value)
    assert "sk-very-secret-123" not in message and "***" in message
    assert "\n" not in message and "HTTP 403" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__  # nor in a chained error


def test_a_reply_that_is_not_a_completion_is_an_error(server: _Server) -> None:
    server.replies = [(200, {"object": "something else"})]
    with pytest.raises(RecallError, match="not a chat completion"):
        EndpointReader(server.url).read(_page())
    server.replies = [(200, b"<html>proxy page</html>")]
    with pytest.raises(RecallError, match="did not answer JSON"):
        EndpointReader(server.url).read(_page())
    server.replies = [(200, [1, 2])]
    with pytest.raises(RecallError, match="answered list, not an object"):
        EndpointReader(server.url).read(_page())


def test_content_as_text_parts_is_joined(server: _Server) -> None:
    parts = [{"type": "text", "text": "one "}, {"type": "text", "text": "two"}]
    server.replies = [(200, {"choices": [{"message": {"role": "assistant", "content": parts}}]})]
    assert EndpointReader(server.url).read(_page()).text == "one two"


def test_a_silent_server_times_out_with_a_clear_error() -> None:
    with socket.socket() as sock:  # takes the connection (the kernel's backlog), never answers
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        with pytest.raises(RecallError, match=r"did not answer within 0.2 s, 1 attempt\(s\): raise timeout"):
            EndpointReader(url, timeout=0.2, retries=0).read(_page())


def test_unreachable_server_is_a_clear_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    reader = EndpointReader(f"http://127.0.0.1:{port}/v1", retries=1, timeout=2)
    with pytest.raises(
        RecallError,
        match=rf"cannot reach the OCR endpoint http://127.0.0.1:{port}/v1/chat/completions after 2 attempt\(s\).*OPENAI_BASE_URL",
    ):
        reader.read(_page())


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="http"):
        EndpointReader("ftp://example.org")
    with pytest.raises(ConfigError):
        EndpointReader("http://127.0.0.1:1/v1", timeout=0)
    with pytest.raises(ConfigError):
        EndpointReader("http://127.0.0.1:1/v1", retries=-1)


def test_without_the_client_the_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)  # import openai now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"optical-memory\[endpoint\]") as info:
        EndpointReader("http://127.0.0.1:1/v1")
    assert info.value.package == "openai" and info.value.extra == "endpoint"
