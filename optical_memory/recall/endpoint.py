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

Only the standard library is used (``urllib``). Connection failures, timeouts, HTTP 429 and 5xx are retried
with exponential backoff; other HTTP errors fail at once. A response body is read only up to
:data:`MAX_RESPONSE_BYTES` (``max_response_bytes``). What cannot be reached is a
:class:`~optical_memory.errors.RecallError` that names the URL and the settings to check.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from PIL import Image

from optical_memory.errors import ConfigError, RecallError
from optical_memory.images import encode_png
from optical_memory.ladder import Rung
from optical_memory.recall.base import Reading, resolve_rung

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MODEL", "MAX_RESPONSE_BYTES", "EndpointReader"]

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "http://localhost:8000/v1"
DEFAULT_MODEL = "deepseek-ai/DeepSeek-OCR"
DEFAULT_PROMPT = "Free OCR."
"""DeepSeek-OCR's plain-text prompt (the image goes first, as ``<image>\\nFree OCR.``)."""

MAX_RESPONSE_BYTES = 16 * 1024 * 1024
"""Largest response body read from the server, in bytes (a page's chat completion is a few kB to a few
hundred kB even with ``max_tokens`` in the tens of thousands); a larger one is refused with
:class:`~optical_memory.errors.RecallError` instead of being read into memory."""

_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class _Retryable(Exception):
    """A failure worth another attempt (network error, timeout, 429, 5xx)."""


class EndpointReader:
    """Reads a page by asking an OpenAI-compatible server.

    Args:
        base_url: Server root including ``/v1`` (default ``OPENAI_BASE_URL``, else ``http://localhost:8000/v1``).
        model: Model name the server knows (default ``OPTICAL_MEMORY_OCR_MODEL``, else DeepSeek-OCR).
        api_key: Bearer token (default ``OPENAI_API_KEY``; none sent when unset).
        prompt: The text after the image.
        max_tokens: Bound on the tokens generated per page.
        timeout: Seconds per attempt (connect and read).
        retries: Attempts after the first one for retryable failures.
        backoff: Seconds before the first retry; doubled for each further one.
        extra_body: Extra JSON fields merged into the request (e.g. ``vllm_xargs``).
        max_response_bytes: Largest response body read (default :data:`MAX_RESPONSE_BYTES`).

    Raises:
        ConfigError: For a base URL that is not http(s), or non-positive limits.
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
        backoff: float = 1.0,
        extra_body: Mapping[str, Any] | None = None,
        max_response_bytes: int | None = None,
    ) -> None:
        url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"endpoint base_url must start with http:// or https://, got {url!r}")
        if max_tokens <= 0 or timeout <= 0 or retries < 0 or backoff < 0:
            raise ConfigError("endpoint max_tokens and timeout must be positive, retries and backoff >= 0")
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
        self.backoff = backoff
        self.extra_body = dict(extra_body or {})

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

    def _post_once(self, url: str, payload: bytes) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(url, data=payload, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = self._read_body(url, resp)
        except urllib.error.HTTPError as exc:
            detail = exc.read(2000).decode("utf-8", "replace").strip()
            if exc.code in _RETRY_STATUS:
                raise _Retryable(f"HTTP {exc.code} {exc.reason}: {detail[:300]}") from exc
            hint = " (check api_key / OPENAI_API_KEY)" if exc.code in (401, 403) else ""
            hint = hint or (" (check model / OPTICAL_MEMORY_OCR_MODEL)" if exc.code == 404 else "")
            raise RecallError(
                f"the OCR endpoint {url} answered HTTP {exc.code}: {detail[:500]}{hint}"
            ) from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise _Retryable(str(reason) or type(exc).__name__) from exc
        try:
            answer = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, or nested too deeply
            raise RecallError(f"the OCR endpoint {url} did not answer JSON: {raw[:200]!r}") from exc
        if not isinstance(answer, dict):
            raise RecallError(f"the OCR endpoint {url} answered {type(answer).__name__}, not an object")
        return answer

    def _read_body(self, url: str, resp: Any) -> bytes:
        """The response body, refused over :attr:`max_response_bytes` (by its Content-Length, else as read).

        Raises:
            RecallError: If the body is larger than the cap.
        """
        cap = self.max_response_bytes
        too_big = RecallError(
            f"the OCR endpoint {url} answered more than {cap:,} bytes, the cap on one response "
            "(max_response_bytes, default optical_memory.recall.endpoint.MAX_RESPONSE_BYTES): is base_url "
            "an OCR server? lower max_tokens or raise the cap"
        )
        declared = resp.headers.get("Content-Length")
        if declared is not None and declared.strip().isdigit() and int(declared) > cap:
            raise too_big
        raw: bytes = resp.read(cap + 1)
        if len(raw) > cap:
            raise too_big
        return raw

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/chat/completions"
        payload = json.dumps(body).encode("utf-8")
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                delay = self.backoff * 2 ** (attempt - 1)
                logger.info("retrying %s in %.1f s (%s)", url, delay, last)
                time.sleep(delay)
            try:
                return self._post_once(url, payload)
            except _Retryable as exc:
                last = str(exc)
        raise RecallError(
            f"cannot reach the OCR endpoint {url} after {self.retries + 1} attempt(s): {last}; start the "
            "server (e.g. vllm serve deepseek-ai/DeepSeek-OCR) or point base_url / OPENAI_BASE_URL at it"
        )

    def read(
        self,
        image: Image.Image,
        *,
        rung: Rung | str | None = None,
        page: int | None = None,
    ) -> Reading:
        """Send the page to the server and return its answer.

        Raises:
            RecallError: If the server cannot be reached after the retries, answers an HTTP error, or
                answers something that is not a chat completion.
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
