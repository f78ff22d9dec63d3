"""Context items and the message formats hosted and local vision-language models take.

A memory's context is a short sequence of items, in order: the system text (if any), then the older
conversation (pages, oldest first, each as an image or, where that is cheaper, as its turns' text), then
the recent turns as text. :func:`build_messages` turns that sequence into the request body of one provider
family:

- ``openai-chat``: OpenAI Chat Completions messages; pages are ``image_url`` parts holding PNG data URLs
  with a ``detail`` setting; tool calls are ``tool_calls`` and ``tool`` messages
  (https://platform.openai.com/docs/guides/images-vision, /function-calling).
- ``openai-responses``: OpenAI Responses ``input`` items; pages are ``input_image`` parts; tool calls are
  ``function_call`` and ``function_call_output`` items.
- ``anthropic``: Anthropic Messages; pages are ``image`` blocks with a base64 source, tool calls are
  ``tool_use`` blocks answered by ``tool_result`` blocks, the system prompt is returned apart (the API
  takes it as a top-level ``system``), and consecutive same-role messages are merged so roles alternate
  (https://docs.anthropic.com/en/api/messages).
- ``gemini``: Gemini ``contents`` with ``parts``; pages are ``inline_data`` parts (with a per-part
  ``media_resolution`` on Gemini 3 pages), tool calls ``functionCall`` parts answered by
  ``functionResponse`` parts, the assistant role is ``model``, and the system prompt is returned apart for
  ``system_instruction`` (https://ai.google.dev/api/generate-content).
- ``hf``: Hugging Face chat-template messages whose content is a list of ``{"type": "image", "image":
  PIL.Image}`` and ``{"type": "text", "text": ...}`` parts, for ``processor.apply_chat_template``; tool
  calls as the templates take them. :func:`jsonable` turns images into PNG data URLs for writing JSON.

Each run of page images is presented as one user message: the first run opens with a sentence telling
the model these are images of the earlier conversation, oldest first; each page has a short label before
its image, and the page's verbatim spans after it, when it has any (``page 3 · exact: ORD-48213 · ...``:
the strings an agent must quote exactly, which pixels keep badly). A tool call and its results keep the provider's tool shapes only where they stand together as
text in the context (the APIs refuse a call without its results, or a result without its call); a call
whose result is on a page image, or the reverse, is written out as plain text (``Called name(args)``,
``Tool result (name):``).
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from PIL import Image

from optical_memory.errors import ConfigError, InputError
from optical_memory.images import decode_png, encode_png
from optical_memory.ladder import Rung, as_rung
from optical_memory.pricing.providers import Provider
from optical_memory.types import ToolCall, TurnImage

FORMATS = ("openai-chat", "openai-responses", "anthropic", "gemini", "hf")
"""The message formats :func:`build_messages` writes."""

EMBEDDINGS = "embeddings"
"""The context format for a self-hosted DeepSeek-OCR language model: input ids and vision-token embeddings
instead of messages (built by the memory, see :mod:`optical_memory.embeddings`)."""

_FAMILY_FORMAT = {
    "openai": "openai-chat",
    "anthropic": "anthropic",
    "gemini": "gemini",
    "qwen2.5-vl": "hf",
    "qwen3-vl": "hf",
    "deepseek-ocr": "hf",
}

PAGES_INTRO = (
    "The earlier part of this conversation is shown as page images of its transcript, oldest first. "
    "Older pages are stored at lower resolution, so they may be blurry."
)
"""The sentence that introduces the page images (the same for any number of pages, so a growing context
keeps its prefix)."""

_OPENAI_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_GEMINI_LEVELS = {"low": "LOW", "medium": "MEDIUM", "high": "HIGH", "ultra_high": "ULTRA_HIGH"}


@dataclass(frozen=True, slots=True)
class TextItem:
    """A turn (or a piece of one) sent as text: the system prompt, a recent turn, or a page's turns.

    Attributes:
        role: ``system``, ``developer``, ``user``, ``assistant`` or ``tool``.
        content: The text.
        name: Optional speaker or tool name (a tool result's function name).
        tool_calls: An assistant turn's calls.
        tool_call_id: The call a tool turn answers.
        turn: The turn's id in the memory (None for items not from a memory).
        images: The images a user turn carries, sent after its text in the provider's image parts.
    """

    role: str
    content: str
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    turn: int | None = None
    images: tuple[TurnImage, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class PageItem:
    """A page of older turns, as an image at its current rung.

    Attributes:
        page_id: The page's id in the memory.
        pixels: The page image at its rung (mode ``L`` or ``RGB``), or None when the item carries only
            ``png`` (read :attr:`image`, which decodes it on first use).
        rung: The rung the image is at (never ``forgotten``: forgotten pages are left out).
        label: A short label shown before the image, e.g. ``page 3, turns 10-14``.
        png: The image's PNG bytes when already at hand (the memory passes the stored PNG of a page shown
            at its stored rung); the formats then send these bytes instead of encoding ``image`` again.
        detail: How the image is sent: an OpenAI ``detail`` or a Gemini 3 ``media_resolution`` level
            (None: the format's default).
        b64: ``png`` as base64 text, when at hand (the memory keeps it per page and rung).
        exact: The page's verbatim spans as the text sent after its image (see
            :func:`optical_memory.spans.line`; "" when it has none).
    """

    page_id: int
    pixels: Image.Image | None = field(repr=False, compare=False)
    rung: Rung
    label: str
    png: bytes | None = field(default=None, repr=False, compare=False)
    detail: str | None = None
    b64: str | None = field(default=None, repr=False, compare=False)
    exact: str = ""

    @functools.cached_property
    def image(self) -> Image.Image:
        """The page image at its rung (``pixels``, or ``png`` decoded once, on first use)."""
        if self.pixels is not None:
            return self.pixels
        if self.png is None:
            raise InputError("a page item needs its pixels or its PNG bytes")
        return decode_png(self.png)

    def base64(self) -> str:
        """The page's PNG as base64 text: ``b64``, else ``png`` encoded, else the image as a PNG."""
        if self.b64 is not None:
            return self.b64
        return base64.b64encode(encode_png(self.image) if self.png is None else self.png).decode("ascii")

    def data_url(self) -> str:
        """The page's PNG as a ``data:image/png;base64,...`` URL."""
        return "data:image/png;base64," + self.base64()


Item = TextItem | PageItem


@dataclass(frozen=True)
class FormattedContext:
    """Messages in one provider family's format.

    Attributes:
        messages: The messages (``input`` items for Responses, ``contents`` for Gemini). Plain JSON-able
            dicts, except in the ``hf`` format, whose image parts hold PIL images.
        system: The system prompt, for the formats that take it apart (Anthropic ``system``, Gemini
            ``system_instruction``); None otherwise, or when there is no system text.
        format: Which format this is.
    """

    messages: list[dict[str, Any]]
    system: str | None
    format: str


def page_label(page_id: int, turns: tuple[int, int]) -> str:
    """The label shown before a page image, e.g. ``page 3, turns 10-14`` (the same at every rung).

    Args:
        page_id: The page's id.
        turns: The first and last turn ids the page holds.
    """
    first, last = turns
    span = f"turn {first}" if first == last else f"turns {first}-{last}"
    return f"page {page_id}, {span}"


def default_format(provider: Provider) -> str:
    """The message format a provider family takes (OpenAI -> ``openai-chat``, local models -> ``hf``)."""
    return _FAMILY_FORMAT.get(provider.family, "openai-chat")


def check_format(name: str) -> str:
    """Validate a format name (case-insensitive) and return it in canonical form.

    Raises:
        ConfigError: If the name is not one of :data:`FORMATS`.
    """
    canonical = str(name).strip().lower()
    if canonical not in FORMATS:
        raise ConfigError(f"unknown message format {name!r}: use one of {', '.join(FORMATS)}")
    return canonical


def data_url(image: Image.Image) -> str:
    """A ``data:image/png;base64,...`` URL of an image (deterministic PNG bytes)."""
    return "data:image/png;base64," + base64.b64encode(encode_png(image)).decode("ascii")


def frame_text(items: Sequence[Item]) -> str:
    """The text the formats add around the pages (the introduction, the labels and the verbatim spans), one
    per line.

    Useful to count the text tokens a context spends on presenting its pages.
    """
    pages = [item for item in items if isinstance(item, PageItem)]
    if not pages:
        return ""
    return "\n".join([intro_text(), *(t for item in pages for t in (item.label, item.exact) if t)])


def intro_text() -> str:
    """The sentence introducing the page images."""
    return PAGES_INTRO


def call_text(call: ToolCall) -> str:
    """A tool call written out as text (when its result is not beside it): ``Called name({...})``."""
    return f"Called {call.name}({call.arguments})"


def tool_text(item: TextItem) -> str:
    """A tool result written out as user text: ``Tool result (name):`` and the result."""
    who = f"Tool result ({item.name})" if item.name else "Tool result"
    return f"{who}:\n{item.content}"


# --- the item sequence ---------------------------------------------------------------------------------


Segment = list[PageItem] | TextItem


def _split(items: Sequence[Item]) -> tuple[list[TextItem], list[Segment]]:
    """System items, then the rest as text items and runs of consecutive pages, in order."""
    system: list[TextItem] = []
    rest: list[Segment] = []
    for i, item in enumerate(items):
        if isinstance(item, PageItem):
            if as_rung(item.rung) is Rung.FORGOTTEN:
                raise InputError(f"item {i}: page {item.page_id} is forgotten and has no image; leave it out")
            if rest and isinstance(rest[-1], list):
                rest[-1].append(item)
            else:
                rest.append([item])
        elif isinstance(item, TextItem):
            if item.role in ("system", "developer") and not rest:
                system.append(item)
            else:
                rest.append(item)
        else:
            raise InputError(f"item {i}: expected a TextItem or PageItem, got {type(item).__name__}")
    return system, _pair_tools(rest)


def _pair_tools(segments: list[Segment]) -> list[Segment]:
    """Keep tool shapes only for a call turn followed directly by text results for all its calls.

    A call whose results are not all right behind it (they are on a page image, or not yet added) is
    written out as text; so is a result whose call does not stand right before it.
    """
    out: list[Segment] = []
    i = 0
    while i < len(segments):
        seg = segments[i]
        if isinstance(seg, TextItem) and seg.tool_calls:
            ids = [c.id for c in seg.tool_calls]
            j = i + 1
            answered: list[TextItem] = []
            while j < len(segments):
                nxt = segments[j]
                if not (isinstance(nxt, TextItem) and nxt.role == "tool" and nxt.tool_call_id in ids):
                    break
                answered.append(nxt)
                j += 1
            if sorted(ids) == sorted(a.tool_call_id for a in answered):  # type: ignore[type-var]
                out.append(seg)
                out.extend(answered)
                i = j
                continue
            seg = _calls_as_text(seg)
        elif isinstance(seg, TextItem) and seg.role == "tool" and seg.tool_call_id is not None:
            seg = replace(seg, tool_call_id=None)
        out.append(seg)
        i += 1
    return out


def _calls_as_text(item: TextItem) -> TextItem:
    lines = [item.content] if item.content else []
    lines += [call_text(c) for c in item.tool_calls]
    return replace(item, content="\n".join(lines), tool_calls=())


def build_messages(items: Sequence[Item], *, format: str, detail: str | None = None) -> FormattedContext:
    """Turn context items into one provider family's messages.

    Args:
        items: System text first (if any), then the older conversation (pages and text, in order), then
            the recent turns as text.
        format: One of :data:`FORMATS`.
        detail: OpenAI image detail for every page (``high``, ``low``, ``auto`` or ``original``),
            overriding each page's own; pages without one are sent at ``high``, which is what the cost
            model assumes. Ignored by the other formats.

    Raises:
        ConfigError: For an unknown format or detail.
        InputError: For a forgotten page, or something that is not an item.
    """
    fmt = check_format(format)
    if detail is not None and detail not in ("high", "low", "auto", "original"):
        raise ConfigError(f"OpenAI image detail must be 'high', 'low', 'auto' or 'original', got {detail!r}")
    system, rest = _split(items)
    return _BUILDERS[fmt](system, rest, detail)


def _page_runs(rest: list[Segment]) -> list[tuple[bool, Segment]]:
    """Each segment with whether it is the first run of pages (which carries the introduction)."""
    seen = False
    out = []
    for seg in rest:
        first = isinstance(seg, list) and not seen
        seen = seen or isinstance(seg, list)
        out.append((first, seg))
    return out


def _arguments(call: ToolCall) -> dict[str, Any]:
    """A call's arguments as a JSON object (a non-object is wrapped as ``{"value": ...}``)."""
    value = json.loads(call.arguments)
    return value if isinstance(value, dict) else {"value": value}


# --- OpenAI ---------------------------------------------------------------------------------------------


def _openai_chat(system: list[TextItem], rest: list[Segment], detail: str | None) -> FormattedContext:
    messages: list[dict[str, Any]] = [_openai_text_message(item) for item in system]
    for first, seg in _page_runs(rest):
        if isinstance(seg, list):
            parts: list[dict[str, Any]] = [{"type": "text", "text": intro_text()}] if first else []
            for page in seg:
                url = {"url": page.data_url(), "detail": detail or page.detail or "high"}
                parts += [{"type": "text", "text": page.label}, {"type": "image_url", "image_url": url}]
                parts += [{"type": "text", "text": page.exact}] if page.exact else []
            messages.append({"role": "user", "content": parts})
        else:
            messages.append(_openai_text_message(seg))
    return FormattedContext(messages, None, "openai-chat")


def _openai_text_message(item: TextItem) -> dict[str, Any]:
    if item.role == "tool":
        if item.tool_call_id is None:
            return {"role": "user", "content": tool_text(item)}
        return {"role": "tool", "tool_call_id": item.tool_call_id, "content": item.content}
    message: dict[str, Any] = {"role": item.role, "content": item.content}
    if item.images:
        urls = [{"type": "image_url", "image_url": {"url": i.data_url()}} for i in item.images]
        message["content"] = [{"type": "text", "text": item.content}, *urls]
    if item.tool_calls:
        message["content"] = item.content or None
        message["tool_calls"] = [c.to_dict() for c in item.tool_calls]
    if item.name and _OPENAI_NAME.match(item.name):
        message["name"] = item.name
    return message


def _openai_responses(system: list[TextItem], rest: list[Segment], detail: str | None) -> FormattedContext:
    messages: list[dict[str, Any]] = [{"role": item.role, "content": item.content} for item in system]
    for first, seg in _page_runs(rest):
        if isinstance(seg, list):
            parts: list[dict[str, Any]] = [{"type": "input_text", "text": intro_text()}] if first else []
            for page in seg:
                parts.append({"type": "input_text", "text": page.label})
                parts.append(
                    {
                        "type": "input_image",
                        "image_url": page.data_url(),
                        "detail": detail or page.detail or "high",
                    }
                )
                parts += [{"type": "input_text", "text": page.exact}] if page.exact else []
            messages.append({"role": "user", "content": parts})
        elif seg.role == "tool":
            if seg.tool_call_id is None:
                messages.append({"role": "user", "content": tool_text(seg)})
            else:
                messages.append(
                    {"type": "function_call_output", "call_id": seg.tool_call_id, "output": seg.content}
                )
        else:
            if seg.images:
                pictures = [
                    {"type": "input_image", "image_url": i.data_url(), "detail": "auto"} for i in seg.images
                ]
                messages.append(
                    {"role": seg.role, "content": [{"type": "input_text", "text": seg.content}, *pictures]}
                )
            elif seg.content or not seg.tool_calls:
                messages.append({"role": seg.role, "content": seg.content})
            messages += [
                {"type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments}
                for c in seg.tool_calls
            ]
    return FormattedContext(messages, None, "openai-responses")


# --- Anthropic and Gemini: system apart, alternating roles ----------------------------------------------


def _system_text(system: list[TextItem]) -> str | None:
    return "\n\n".join(item.content for item in system) if system else None


def _merge(messages: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Merge consecutive messages of the same role by concatenating their part lists under ``key``."""
    merged: list[dict[str, Any]] = []
    for message in messages:
        if merged and merged[-1]["role"] == message["role"]:
            merged[-1][key].extend(message[key])
        else:
            merged.append({"role": message["role"], key: list(message[key])})
    return merged


_ANTHROPIC_ID = re.compile(r"[^A-Za-z0-9_-]")


def _anthropic_id(call_id: str) -> str:
    """A call id as Anthropic accepts it (letters, digits, ``_`` and ``-``)."""
    return _ANTHROPIC_ID.sub("_", call_id)


def _anthropic(system: list[TextItem], rest: list[Segment], detail: str | None) -> FormattedContext:
    messages: list[dict[str, Any]] = []
    for first, seg in _page_runs(rest):
        if isinstance(seg, list):
            blocks: list[dict[str, Any]] = [{"type": "text", "text": intro_text()}] if first else []
            for page in seg:
                blocks.append({"type": "text", "text": page.label})
                source = {"type": "base64", "media_type": "image/png", "data": page.base64()}
                blocks.append({"type": "image", "source": source})
                blocks += [{"type": "text", "text": page.exact}] if page.exact else []
            messages.append({"role": "user", "content": blocks})
        elif seg.role == "tool" and seg.tool_call_id is not None:
            result = {
                "type": "tool_result",
                "tool_use_id": _anthropic_id(seg.tool_call_id),
                "content": seg.content,
            }
            messages.append({"role": "user", "content": [result]})
        else:
            role, text = plain_role(seg)
            content: list[dict[str, Any]] = (
                [{"type": "text", "text": text}] if text else []
            )  # no empty blocks
            content += [
                {"type": "image", "source": {"type": "base64", "media_type": i.mime, "data": i.b64()}}
                for i in seg.images
            ]
            for call in seg.tool_calls:
                content.append(
                    {
                        "type": "tool_use",
                        "id": _anthropic_id(call.id),
                        "name": call.name,
                        "input": _arguments(call),
                    }
                )
            if content:
                messages.append({"role": role, "content": content})
    return FormattedContext(_merge(messages, "content"), _system_text(system), "anthropic")


def plain_role(item: TextItem) -> tuple[str, str]:
    """Role (``user`` or ``assistant``) and text for formats that know only those two roles.

    Tool turns become ``Tool result (name):`` user text, later system turns ``System note:`` user text.
    """
    if item.role == "assistant":
        return "assistant", item.content
    if item.role == "tool":
        return "user", tool_text(item)
    if item.role in ("system", "developer"):
        return "user", f"System note:\n{item.content}"
    return "user", item.content


def _gemini(system: list[TextItem], rest: list[Segment], detail: str | None) -> FormattedContext:
    contents: list[dict[str, Any]] = []
    for first, seg in _page_runs(rest):
        if isinstance(seg, list):
            parts: list[dict[str, Any]] = [{"text": intro_text()}] if first else []
            for page in seg:
                parts.append({"text": page.label})
                part: dict[str, Any] = {"inline_data": {"mime_type": "image/png", "data": page.base64()}}
                if page.detail in _GEMINI_LEVELS:
                    part["media_resolution"] = {"level": f"MEDIA_RESOLUTION_{_GEMINI_LEVELS[page.detail]}"}
                parts.append(part)
                parts += [{"text": page.exact}] if page.exact else []
            contents.append({"role": "user", "parts": parts})
        elif seg.role == "tool" and seg.tool_call_id is not None:
            response = {
                "id": seg.tool_call_id,
                "name": seg.name or "tool",
                "response": {"result": seg.content},
            }
            contents.append({"role": "user", "parts": [{"functionResponse": response}]})
        else:
            role, text = plain_role(seg)
            parts = [{"text": text}] if text else []  # an empty part is refused
            parts += [{"inline_data": {"mime_type": i.mime, "data": i.b64()}} for i in seg.images]
            parts += [
                {"functionCall": {"id": c.id, "name": c.name, "args": _arguments(c)}} for c in seg.tool_calls
            ]
            if parts:
                contents.append({"role": "model" if role == "assistant" else "user", "parts": parts})
    return FormattedContext(_merge(contents, "parts"), _system_text(system), "gemini")


# --- Hugging Face chat templates -------------------------------------------------------------------------


def _hf(system: list[TextItem], rest: list[Segment], detail: str | None) -> FormattedContext:
    messages: list[dict[str, Any]] = [_hf_text_message(item) for item in system]
    for first, seg in _page_runs(rest):
        if isinstance(seg, list):
            parts: list[dict[str, Any]] = [{"type": "text", "text": intro_text()}] if first else []
            for page in seg:
                parts.append({"type": "text", "text": page.label})
                parts.append({"type": "image", "image": page.image})
                parts += [{"type": "text", "text": page.exact}] if page.exact else []
            messages.append({"role": "user", "content": parts})
        else:
            messages.append(_hf_text_message(seg))
    return FormattedContext(messages, None, "hf")


def _hf_text_message(item: TextItem) -> dict[str, Any]:
    role = "system" if item.role == "developer" else item.role
    message: dict[str, Any] = {"role": role, "content": [{"type": "text", "text": item.content}]}
    message["content"] += [{"type": "image", "image": i.open()} for i in item.images]
    if item.name:
        message["name"] = item.name
    if item.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": _arguments(c)}}
            for c in item.tool_calls
        ]
    if item.tool_call_id is not None:
        message["tool_call_id"] = item.tool_call_id
    return message


def jsonable(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A copy of messages with every PIL image replaced by its PNG data URL, so it can be written as JSON.

    Only ``hf`` messages hold images; the other formats come back unchanged (as copies).
    """
    return [_jsonable_value(message) for message in messages]


def _jsonable_value(value: Any) -> Any:
    if isinstance(value, Image.Image):
        return data_url(value)
    if isinstance(value, Mapping):
        return {key: _jsonable_value(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable_value(v) for v in value]
    return value


_BUILDERS = {
    "openai-chat": _openai_chat,
    "openai-responses": _openai_responses,
    "anthropic": _anthropic,
    "gemini": _gemini,
    "hf": _hf,
}
