"""The ``endpoint`` reader reads a bounded response body: a larger one is a clear RecallError.

The cap holds on the wire (declared or not, error pages too) and for the decoded body (a compressed answer).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import pytest
from PIL import Image

from optical_memory.errors import ConfigError, RecallError
from optical_memory.recall import endpoint
from optical_memory.recall.endpoint import MAX_RESPONSE_BYTES, EndpointReader
from tests.recall.helpers import add_reply_headers
from tests.servers import ChatServer, reply


class _Server(ChatServer):
    """A chat server that answers every request with ``body`` as it is."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b""
        super().__init__(lambda _body, _headers: (self.status, self.body))


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.close()


def _page() -> Image.Image:
    return Image.new("L", (512, 512), 255)


@pytest.mark.parametrize("declare_length", [True, False])
def test_a_body_over_the_cap_is_refused(server: _Server, declare_length: bool) -> None:
    server.declare_length = declare_length
    server.body = json.dumps(reply("x" * 5000)).encode()
    reader = EndpointReader(server.url, retries=0, max_response_bytes=1000)
    with pytest.raises(RecallError, match=r"answered more than 1,000 bytes.*MAX_RESPONSE_BYTES") as info:
        reader.read(_page())
    assert server.url in str(info.value)


@pytest.mark.parametrize("declare_length", [True, False])
def test_a_body_within_the_cap_is_read(server: _Server, declare_length: bool) -> None:
    server.declare_length = declare_length
    server.body = json.dumps(reply("hello")).encode()
    reader = EndpointReader(server.url, retries=0, max_response_bytes=len(server.body))
    assert reader.read(_page()).text == "hello"


def test_the_default_cap_is_the_module_constant(server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    assert EndpointReader(server.url).max_response_bytes == MAX_RESPONSE_BYTES == 16 * 1024 * 1024
    monkeypatch.setattr(endpoint, "MAX_RESPONSE_BYTES", 10)
    server.body = json.dumps(reply("hello")).encode()
    with pytest.raises(RecallError, match="more than 10 bytes"):
        EndpointReader(server.url, retries=0).read(_page())
    with pytest.raises(ConfigError, match="max_response_bytes"):
        EndpointReader(server.url, max_response_bytes=0)


@pytest.mark.parametrize(
    "body", [b"\xff\xfe\x00garbage", b"[" * 100_000 + b"]" * 100_000], ids=["not-utf8", "deep"]
)
def test_undecodable_bodies_are_recall_errors(server: _Server, body: bytes) -> None:
    server.body = body
    with pytest.raises(RecallError, match="did not answer JSON"):
        EndpointReader(server.url, retries=0).read(_page())


@pytest.mark.parametrize("declare_length", [True, False])
def test_an_error_page_over_the_cap_is_not_read_either(server: _Server, declare_length: bool) -> None:
    server.declare_length = declare_length
    server.status = 400
    server.body = b"x" * 50_000
    with pytest.raises(RecallError, match="answered more than 1,000 bytes"):
        EndpointReader(server.url, retries=0, max_response_bytes=1000).read(_page())


def test_a_compressed_answer_is_capped_once_decoded(server: _Server) -> None:
    add_reply_headers(server, {"Content-Encoding": "gzip"})
    server.body = gzip.compress(json.dumps(reply("x" * 50_000)).encode())
    assert len(server.body) < 1000  # small on the wire
    with pytest.raises(RecallError, match="answered more than 1,000 bytes"):
        EndpointReader(server.url, retries=0, max_response_bytes=1000).read(_page())
    assert EndpointReader(server.url, retries=0).read(_page()).text == "x" * 50_000  # under the default cap
    accepted = {k.lower(): v for k, v in server.headers[0].items()}["accept-encoding"]
    assert accepted == "identity"  # compression was not asked for
