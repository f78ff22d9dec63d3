"""The memory as tools an agent calls: ``search_memory``, ``recall_page`` and ``expand_page``.

The application builds them from a memory and binds the reader; the model only names pages and queries::

    tools = memory.tools(reader="rapidocr")

    # OpenAI chat completions
    response = client.chat.completions.create(model=..., messages=messages, tools=tools.openai)
    for call in response.choices[0].message.tool_calls or []:
        result = tools.handle(call.function.name, call.function.arguments)
        messages.extend(result.openai_messages(call.id))

    # OpenAI Responses: tools=tools.responses, then input.append(result.responses_item(call.call_id))

    # Anthropic messages
    response = client.messages.create(model=..., messages=messages, tools=tools.anthropic, ...)
    results = [tools.handle(b.name, b.input).anthropic_block(b.id) for b in response.content if b.type == "tool_use"]
    messages.append({"role": "user", "content": results})

- ``search_memory(query, k=5)``: the pages that best match, with their matched verbatim spans and a snippet
  (see :meth:`~optical_memory.memory.OpticalMemory.search`);
- ``recall_page(page_id)``: what the memory holds of a page, each part labelled with where it came from:
  ``text`` (kept exactly), ``exact`` (verbatim spans), ``ocr:<reader>`` (read from the image by the bound
  reader, kept for later searches);
- ``expand_page(page_id)``: the page image at its sharpest available rung.

Every answer is a :class:`ToolResult`. Bad arguments, unknown pages and reader failures come back as a
tool error the model can read and correct, never as an exception in the agent loop. The argument schemas
are pydantic models, so the schemas sent and the checks made are one definition.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from optical_memory.errors import ConfigError, OpticalMemoryError
from optical_memory.images import encode_png
from optical_memory.ladder import Rung
from optical_memory.recall.api import built_reader, reader_name
from optical_memory.recall.base import reader_class

if TYPE_CHECKING:
    from optical_memory.memory import OpticalMemory
    from optical_memory.recall.base import RecallBackend

__all__ = ["MemoryTools", "ToolResult"]

MAX_HITS = 10


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SearchArgs(_Args):
    query: str = Field(min_length=1, description="Words, ids, numbers or names to look for.")
    k: int = Field(default=5, ge=1, le=MAX_HITS, description="How many pages to return.")


class PageArgs(_Args):
    page_id: int = Field(ge=0, description="The page id, as given in the page labels ('page 12').")


_TOOLS: dict[str, tuple[type[_Args], str]] = {
    "search_memory": (
        SearchArgs,
        "Search the earlier conversation, which you see as page images with their exact values listed "
        "beside them ('page 12 · exact: ...'). Returns the best matching page ids, the exact values that "
        "matched, and a matching line. Use it to find where something was said before reading a page.",
    ),
    "recall_page": (
        PageArgs,
        "Read back an earlier page as text: its exact text when it was kept, its exact values, and what "
        "can still be read from its image, each labelled with its source. Quote only 'text' and 'exact' "
        "parts verbatim; 'ocr' parts may misread characters.",
    ),
    "expand_page": (
        PageArgs,
        "Look at an earlier page again as an image, at the sharpest resolution the memory still has.",
    ),
}


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A tool's answer: ``content`` (JSON text), the page image for ``expand_page`` (PNG), and whether the
    call failed (``content`` then says why and what to do)."""

    name: str
    content: str
    image: bytes | None = field(default=None, repr=False)
    is_error: bool = False

    def openai_messages(self, tool_call_id: str) -> list[dict[str, Any]]:
        """The chat-completions messages answering the call: the tool message, then (for an image, which a
        tool message cannot carry) a user message with the image."""
        out: list[dict[str, Any]] = [{"role": "tool", "tool_call_id": tool_call_id, "content": self.content}]
        if self.image is not None:
            url = _data_url(self.image)
            out.append(
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": f"{self.name} result ({tool_call_id}):"},
                        {"type": "image_url", "image_url": {"url": url}},
                    ],
                }
            )
        return out

    def responses_item(self, call_id: str) -> dict[str, Any]:
        """The OpenAI Responses ``function_call_output`` item answering the call (its image inside it)."""
        output: str | list[dict[str, Any]] = self.content
        if self.image is not None:
            output = [
                {"type": "input_text", "text": self.content},
                {"type": "input_image", "image_url": _data_url(self.image)},
            ]
        return {"type": "function_call_output", "call_id": call_id, "output": output}

    def anthropic_block(self, tool_use_id: str) -> dict[str, Any]:
        """The Anthropic ``tool_result`` block answering the call (its image inside it)."""
        content: list[dict[str, Any]] = [{"type": "text", "text": self.content}]
        if self.image is not None:
            data = base64.b64encode(self.image).decode("ascii")
            content.append(
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
            )
        return {
            "type": "tool_result",
            "tool_use_id": tool_use_id,
            "content": content,
            "is_error": self.is_error,
        }


class MemoryTools:
    """The tools of one memory, with the reader the application bound (see the module docstring).

    Args:
        memory: The memory the tools read.
        reader: The reader ``recall_page`` reads page images with: a name or a reader object (built once,
            for this memory only); None for ``rapidocr`` when its extra is installed.
    """

    def __init__(self, memory: OpticalMemory, reader: str | RecallBackend | None = None) -> None:
        if reader is not None and reader_name(reader) == "exact":
            raise ConfigError(
                "the tools give kept text as it is: bind a reader of page images, such as 'rapidocr'"
            )
        if isinstance(reader, str):
            reader_class(reader)  # an unknown name fails here, not at the model's first call
        self.memory = memory
        self._reader = reader
        self._built: RecallBackend | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """The tools' names."""
        return tuple(_TOOLS)

    @property
    def openai(self) -> list[dict[str, Any]]:
        """The tools as OpenAI chat-completions function tools."""
        return [
            {"type": "function", "function": {"name": n, "description": d, "parameters": _schema(a)}}
            for n, (a, d) in _TOOLS.items()
        ]

    @property
    def responses(self) -> list[dict[str, Any]]:
        """The tools as OpenAI Responses function tools (the OpenAI Agents SDK's model input)."""
        return [
            {"type": "function", "name": n, "description": d, "parameters": _schema(a), "strict": False}
            for n, (a, d) in _TOOLS.items()
        ]

    @property
    def anthropic(self) -> list[dict[str, Any]]:
        """The tools as Anthropic tool definitions."""
        return [{"name": n, "description": d, "input_schema": _schema(a)} for n, (a, d) in _TOOLS.items()]

    def handle(self, name: str, arguments: str | Mapping[str, Any] | None) -> ToolResult:
        """Answer one tool call: its name and its arguments (the JSON string an API returns, or parsed)."""
        if name not in _TOOLS:
            return _error(str(name), f"unknown tool {name!r}: use one of {', '.join(_TOOLS)}")
        try:
            parsed = json.loads(arguments or "{}") if isinstance(arguments, str) else dict(arguments or {})
            args = _TOOLS[name][0].model_validate(parsed)
        except json.JSONDecodeError as exc:
            return _error(name, f"arguments are not valid JSON: {exc}")
        except (pydantic.ValidationError, TypeError, ValueError) as exc:
            return _error(name, _explain(exc))
        try:
            if isinstance(args, SearchArgs):
                return self._search(args)
            assert isinstance(args, PageArgs)
            return self._recall(args.page_id) if name == "recall_page" else self._expand(args.page_id)
        except OpticalMemoryError as exc:
            return _error(name, str(exc))

    def _search(self, args: SearchArgs) -> ToolResult:
        found = [h.to_dict() for h in self.memory.search(args.query, args.k)]
        return _ok("search_memory", {"query": args.query, "hits": found})

    def _recall(self, page_id: int) -> ToolResult:
        info = next((p for p in self.memory.pages() if p.page_id == page_id), None)
        if info is None:
            return _error("recall_page", f"no page {page_id}: page ids are in the page labels ('page 12')")
        parts: list[dict[str, Any]] = []
        text = self.memory.page_text(page_id)
        if text is not None:
            parts.append({"source": "text", "text": text})
        if info.exact:
            parts.append({"source": "exact", "spans": [span for _, span, _ in info.exact]})
        note = None
        if text is None and info.rung is not Rung.FORGOTTEN:
            try:
                reading = self.memory.recall(page_id, reader=self._backend())
                parts.append({"source": f"ocr:{reading.reader}", "text": reading.text})
            except OpticalMemoryError as exc:  # the reader failed, or its extra is missing
                note = f"the page image could not be read: {exc}"
        if not parts:
            return _error("recall_page", note or f"page {page_id} was forgotten: nothing of it is left")
        answer: dict[str, Any] = {"page_id": page_id, "rung": info.rung.value, "parts": parts}
        if note:
            answer["note"] = note
        return _ok("recall_page", answer)

    def _expand(self, page_id: int) -> ToolResult:
        image = self.memory.page_image(page_id, sharpest=True)
        answer = {"page_id": page_id, "width": image.width, "height": image.height}
        return ToolResult("expand_page", json.dumps(answer), encode_png(image))

    def _backend(self) -> RecallBackend:
        if self._built is None:
            self._built = built_reader(self._reader or "rapidocr")
        return self._built


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _schema(args: type[_Args]) -> dict[str, Any]:
    schema = args.model_json_schema()
    schema.pop("title", None)
    for prop in schema["properties"].values():
        prop.pop("title", None)
    return schema


def _ok(name: str, answer: Mapping[str, Any]) -> ToolResult:
    return ToolResult(name, json.dumps(answer, ensure_ascii=False))


def _error(name: str, message: str) -> ToolResult:
    return ToolResult(name, json.dumps({"error": message}, ensure_ascii=False), is_error=True)


def _explain(exc: Exception) -> str:
    if not isinstance(exc, pydantic.ValidationError):
        return f"arguments must be a JSON object: {exc}"
    problems = [f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors()]
    return "bad arguments: " + "; ".join(problems)
