"""The ``endpoint`` reader: any OpenAI-compatible chat-completions server, for example vLLM serving
DeepSeek-OCR when one machine is not enough.

The page goes to ``POST {base_url}/chat/completions`` as a PNG data URL followed by the OCR prompt, the way
vLLM's DeepSeek-OCR recipe sends images, with greedy decoding (``temperature`` 0). Settings come from the
arguments, else the environment:

=========  ==============================  ==========================================
setting    environment variable            default
=========  ==============================  ==========================================
base_url   ``OPENAI_BASE_URL``             ``http://localhost:8000/v1`` (``vllm serve``)
model      ``OPTICAL_MEMORY_OCR_MODEL``    ``deepseek-ai/DeepSeek-OCR``
api_key    ``OPENAI_API_KEY``              none (vLLM needs none unless started with one)
=========  ==============================  ==========================================

vLLM applies DeepSeek-OCR's no-repeat-n-gram rule only when asked per request; pass
``extra_body={"vllm_xargs": {"ngram_size": 30, "window_size": 90, "whitelist_token_ids": [128821, 128822]}}``
with a server started with ``--logits-processors`` naming ``NGramPerReqLogitsProcessor`` (vLLM's
DeepSeek-OCR recipe).

The request goes through the ``openai`` client (extra ``endpoint``), which owns timeouts and retries:
connection failures, timeouts, HTTP 408, 409, 429 and 5xx are retried with jittered exponential backoff,
honouring ``Retry-After``; other HTTP errors fail at once. A response body is read only up to
:data:`MAX_RESPONSE_BYTES` (``max_response_bytes``): a hook on the client's HTTP layer counts the bytes of
every response as they arrive (error pages too), and the body of the answer is counted again once decoded,
so a compressed answer cannot grow past the cap either. Every failure is a
:class:`~optical_memory.errors.RecallError` on one line that names the URL and the setting to check, never
the API key.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from PIL import Image

from optical_memory.errors import ConfigError, MissingDependencyError, RecallError
from optical_memory.images import encode_png
from optical_memory.ladder import Rung
from optical_memory.recall.base import Reading, resolve_rung

if TYPE_CHECKING:
    import httpx2
    import openai

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MODEL", "MAX_RESPONSE_BYTES", "EndpointReader"]

DEFAULT_BASE_URL = "http://localhost:8000/v1"
DEFAULT_MODEL = "deepseek-ai/DeepSeek-OCR"
DEFAULT_PROMPT = "Free OCR."
"""DeepSeek-OCR's plain-text prompt (the image goes first, as ``<image>\\nFree OCR.``)."""

MAX_RESPONSE_BYTES = 16 * 1024 * 1024
"""Largest response body read from the server, in bytes (a page's chat completion is a few kB to a few
hundred kB even with ``max_tokens`` in the tens of thousands); a larger one is refused with
:class:`~optical_memory.errors.RecallError` instead of being read into memory."""

_Filter = Callable[[Iterable[bytes]], Iterator[bytes]]

_NO_KEY = "no-key"
"""What the openai client is given when there is no API key; its Authorization header is then dropped."""


class EndpointReader:
    """Reads a page by asking an OpenAI-compatible server.

    Args:
        base_url: Server root including ``/v1`` (default ``OPENAI_BASE_URL``, else ``http://localhost:8000/v1``).
        model: Model name the server knows (default ``OPTICAL_MEMORY_OCR_MODEL``, else DeepSeek-OCR).
        api_key: Bearer token (default ``OPENAI_API_KEY``; none sent when unset).
        prompt: The text after the image.
        max_tokens: Bound on the tokens generated per page.
        timeout: Seconds per attempt (connect, and each read).
        retries: Attempts after the first one for retryable failures (the client's ``max_retries``).
        extra_body: Extra JSON fields merged into the request (e.g. ``vllm_xargs``).
        max_response_bytes: Largest response body read (default :data:`MAX_RESPONSE_BYTES`).

    Raises:
        ConfigError: For a base URL that is not http(s), or non-positive limits.
        MissingDependencyError: If ``openai`` or ``httpx2`` is not installed (extra ``endpoint``).
    """

    name = "endpoint"

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        *,
        prompt: str = DEFAULT_PROMPT,
        max_tokens: int = 4096,
        timeout: float = 120.0,
        retries: int = 3,
        extra_body: Mapping[str, Any] | None = None,
        max_response_bytes: int | None = None,
    ) -> None:
        _import_client()
        url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"endpoint base_url must start with http:// or https://, got {url!r}")
        if max_tokens <= 0 or timeout <= 0 or not isinstance(retries, int) or retries < 0:
            raise ConfigError("endpoint max_tokens and timeout must be positive, retries a whole number >= 0")
        cap = MAX_RESPONSE_BYTES if max_response_bytes is None else max_response_bytes
        if not isinstance(cap, int) or cap <= 0:
            raise ConfigError(f"endpoint max_response_bytes must be a positive number of bytes, got {cap!r}")
        self.max_response_bytes = cap
        self.base_url = url
        self.model = model or os.environ.get("OPTICAL_MEMORY_OCR_MODEL") or DEFAULT_MODEL
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.prompt = prompt
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.retries = retries
        self.extra_body = dict(extra_body or {})

    @property
    def url(self) -> str:
        """The chat-completions URL requests go to."""
        return f"{self.base_url}/chat/completions"

    def request_body(self, image: Image.Image) -> dict[str, Any]:
        """The JSON body sent for one page."""
        data_url = "data:image/png;base64," + base64.b64encode(encode_png(image)).decode("ascii")
        content = [
            {"type": "image_url", "image_url": {"url": data_url}},
            {"type": "text", "text": self.prompt},
        ]
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": content}],
            "temperature": 0.0,
            "max_tokens": self.max_tokens,
        }
        body.update(self.extra_body)
        return body

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Send ``body`` through the openai client and return the answer's JSON object.

        Raises:
            RecallError: For every failure, with the message of :meth:`_failure`.
        """
        openai, _ = _import_client()
        fields = dict(body)
        # Everything but model and messages goes as extra_body: the server gets exactly request_body(),
        # and the user's extra_body still overrides temperature and max_tokens, as it always did.
        model, messages = fields.pop("model"), fields.pop("messages")
        headers: dict[str, Any] = {} if self.api_key else {"Authorization": openai.omit}
        http = openai.DefaultHttpx2Client(event_hooks={"response": [self._cap_wire]})
        try:
            with (
                openai.OpenAI(
                    base_url=self.base_url,
                    api_key=self.api_key or _NO_KEY,
                    timeout=self.timeout,
                    max_retries=self.retries,
                    default_headers={"Accept-Encoding": "identity"},  # so wire bytes are body bytes
                    http_client=http,
                ) as client,
                client.chat.completions.with_streaming_response.create(
                    model=model, messages=messages, extra_body=fields, extra_headers=headers
                ) as response,
            ):
                raw = b"".join(self._capped(response.iter_bytes()))
        except openai.APIStatusError as exc:
            # not chained: the client's message repeats the body, which a server may use to echo the key
            raise RecallError(self._failure(exc)) from None
        except openai.APIError as exc:
            raise RecallError(self._failure(exc)) from exc
        try:
            answer = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, or nested too deeply
            raise RecallError(f"the OCR endpoint {self.url} did not answer JSON: {raw[:200]!r}") from exc
        if not isinstance(answer, dict):
            raise RecallError(f"the OCR endpoint {self.url} answered {type(answer).__name__}, not an object")
        return answer

    def _too_big(self) -> RecallError:
        return RecallError(
            f"the OCR endpoint {self.url} answered more than {self.max_response_bytes:,} bytes, the cap on one "
            "response (max_response_bytes, default optical_memory.recall.endpoint.MAX_RESPONSE_BYTES): is "
            "base_url an OCR server? lower max_tokens or raise the cap"
        )

    def _capped(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """Pass ``chunks`` on, refused as soon as they add up to more than :attr:`max_response_bytes`.

        Raises:
            RecallError: If the body is larger than the cap.
        """
        size = 0
        for chunk in chunks:
            size += len(chunk)
            if size > self.max_response_bytes:
                raise self._too_big()
            yield chunk

    def _cap_wire(self, response: httpx2.Response) -> None:
        """Response hook: refuse a declared Content-Length over the cap, count the rest as it arrives.

        Raised here, a RecallError is no transport error to the openai client: it is not retried and comes
        out as it is, the half-read response closed.
        """
        declared = response.headers.get("Content-Length", "").strip()
        if declared.isdigit() and int(declared) > self.max_response_bytes:
            raise self._too_big()
        response.stream = _capped_stream(response.stream, self._capped)

    def _failure(self, exc: openai.APIError) -> str:
        """One line saying what went wrong and what to check, with the API key masked."""
        import openai

        # the client numbers each attempt in a request header; without it, assume every retry was spent
        request = getattr(exc, "request", None)
        sent = request.headers.get("x-stainless-retry-count", "") if request is not None else ""
        attempts = int(sent) + 1 if sent.isdigit() else self.retries + 1
        if isinstance(exc, openai.APIStatusError):
            code = exc.status_code
            detail = _one_line(exc.response.text)[:500]
            if code in (408, 409, 429) or code >= 500:
                message = (
                    f"the OCR endpoint {self.url} still answered HTTP {code} after {attempts} attempt(s): "
                    f"{detail}; is the server overloaded or still starting? raise retries or try later"
                )
            else:
                hint = {401: " (check api_key / OPENAI_API_KEY)", 403: " (check api_key / OPENAI_API_KEY)"}
                hint[404] = " (check model / OPTICAL_MEMORY_OCR_MODEL and base_url / OPENAI_BASE_URL)"
                message = f"the OCR endpoint {self.url} answered HTTP {code}: {detail}{hint.get(code, '')}"
        elif isinstance(exc, openai.APITimeoutError):
            message = (
                f"the OCR endpoint {self.url} did not answer within {self.timeout:g} s, {attempts} attempt(s): "
                "raise timeout, lower max_tokens, or check that the server is not stuck"
            )
        else:
            cause = _one_line(str(exc.__cause__ or exc)) or type(exc).__name__
            message = (
                f"cannot reach the OCR endpoint {self.url} after {attempts} attempt(s): {cause}; start the "
                "server (e.g. vllm serve deepseek-ai/DeepSeek-OCR) or point base_url / OPENAI_BASE_URL at it"
            )
        return message.replace(self.api_key, "***") if self.api_key else message

    def read(
        self,
        image: Image.Image,
        *,
        rung: Rung | str | None = None,
        page: int | None = None,
    ) -> Reading:
        """Send the page to the server and return its answer.

        Raises:
            RecallError: If the server cannot be reached after the retries, answers an HTTP error, answers
                more than :attr:`max_response_bytes`, or answers something that is not a chat completion.
        """
        r = resolve_rung(image, rung)
        start = time.perf_counter()
        answer = self._post(self.request_body(image))
        text = _message_text(answer)
        usage = answer.get("usage")
        tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
        return Reading(
            text, self.name, r, time.perf_counter() - start, tokens if isinstance(tokens, int) else None
        )


def _import_client() -> tuple[Any, Any]:
    try:
        import httpx2
        import openai
    except ImportError as exc:
        missing = "httpx2" if getattr(exc, "name", "") == "httpx2" else "openai"
        raise MissingDependencyError(missing, "endpoint", "the endpoint reader") from exc
    return openai, httpx2


def _capped_stream(
    stream: httpx2.SyncByteStream | httpx2.AsyncByteStream, count: _Filter
) -> httpx2.SyncByteStream:
    """``stream`` with its chunks passed through ``count`` (a sync client's stream is always sync)."""
    import httpx2

    assert isinstance(stream, httpx2.SyncByteStream)
    return _capped_stream_type()(stream, count)


@functools.cache
def _capped_stream_type() -> Callable[[httpx2.SyncByteStream, _Filter], httpx2.SyncByteStream]:
    """The stream class of :func:`_capped_stream`, built on first use so importing this module never
    imports httpx2.
    """
    import httpx2

    class CappedStream(httpx2.SyncByteStream):
        def __init__(self, inner: httpx2.SyncByteStream, count: _Filter) -> None:
            self._inner = inner
            self._count = count

        def __iter__(self) -> Iterator[bytes]:
            yield from self._count(self._inner)

        def close(self) -> None:
            self._inner.close()

        @property
        def elapsed(self) -> Any:  # what the client's timing stream reports once closed
            return getattr(self._inner, "elapsed", None)

    return CappedStream


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _message_text(answer: Mapping[str, Any]) -> str:
    """The assistant text of a chat completion (string content or a list of text parts)."""
    try:
        content = answer["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise RecallError(f"the OCR endpoint's answer is not a chat completion: {str(answer)[:300]}") from exc
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    raise RecallError(f"the OCR endpoint answered content of type {type(content).__name__}")
