"""Context items and the message formats hosted and local vision-language models take.

A memory's context is a short sequence of items, in order: the system text (if any), then the pages of
the older conversation (oldest first), then the recent turns as text. :func:`build_messages` turns that
sequence into the request body of one provider family:

- ``openai-chat``: OpenAI Chat Completions messages; pages are ``image_url`` parts holding PNG data URLs
  with a ``detail`` setting (https://platform.openai.com/docs/guides/images-vision).
- ``openai-responses``: OpenAI Responses ``input`` items; pages are ``input_image`` parts.
- ``anthropic``: Anthropic Messages; pages are ``image`` blocks with a base64 source, the system prompt is
  returned apart (the API takes it as a top-level ``system``), and consecutive same-role messages are merged
  so roles alternate (https://docs.anthropic.com/en/api/messages).
- ``gemini``: Gemini ``contents`` with ``parts``; pages are ``inline_data`` parts, the assistant role is
  ``model``, and the system prompt is returned apart for ``system_instruction``
  (https://ai.google.dev/api/generate-content).
- ``hf``: Hugging Face chat-template messages whose content is a list of ``{"type": "image", "image":
  PIL.Image}`` and ``{"type": "text", "text": ...}`` parts, for ``processor.apply_chat_template``.
  :func:`jsonable` turns their images into PNG data URLs when the messages must be written as JSON.

The pages are presented as one user message: a sentence telling the model these are images of the
earlier conversation, oldest first, then per page a short label and the image. Tool turns carry no call
id here (the memory stores only their text), so the hosted formats send them as user text introduced by
``Tool result (name):``; the ``hf`` format keeps the ``tool`` role, which chat templates understand.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from optical_memory.errors import ConfigError, InputError
from optical_memory.images import encode_png
from optical_memory.ladder import Rung, as_rung
from optical_memory.providers import Provider

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
    "deepseek-ocr": "hf",
}

PAGES_INTRO = (
    "The earlier part of this conversation is shown as {count} page {noun} of its transcript, oldest first. "
    "Older pages are stored at lower resolution, so they may be blurry."
)
"""The sentence that introduces the page images (``count`` and ``noun`` are filled in)."""

_OPENAI_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class TextItem:
    """A turn kept as text: the system prompt or a recent turn.

    Attributes:
        role: ``system``, ``developer``, ``user``, ``assistant`` or ``tool``.
        content: The text.
        name: Optional speaker or tool name.
    """

    role: str
    content: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class PageItem:
    """A page of older turns, as an image at its current rung.

    Attributes:
        page_id: The page's id in the memory.
        image: The page image at its rung (square, mode ``L`` or ``RGB``).
        rung: The rung the image is at (never ``forgotten``: forgotten pages are left out).
        label: A short label shown before the image, e.g. ``page 3 (turns 10-14, small)``.
        png: The image's PNG bytes when already at hand (the memory passes the stored PNG of a page shown
            at its stored rung); the formats then send these bytes instead of encoding ``image`` again.
    """

    page_id: int
    image: Image.Image = field(repr=False, compare=False)
    rung: Rung
    label: str
    png: bytes | None = field(default=None, repr=False, compare=False)


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


def page_label(page_id: int, turns: tuple[int, int], rung: Rung | str) -> str:
    """The label shown before a page image, e.g. ``page 3 (turns 10-14, small)``.

    Args:
        page_id: The page's id.
        turns: The first and last turn ids the page holds.
        rung: The page's current rung.
    """
    first, last = turns
    span = f"turn {first}" if first == last else f"turns {first}-{last}"
    return f"page {page_id} ({span}, {as_rung(rung).value})"


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


def data_url(image: Image.Image, png: bytes | None = None) -> str:
    """A ``data:image/png;base64,...`` URL of an image (deterministic PNG bytes; ``png`` when given)."""
    return "data:image/png;base64," + _b64(image, png)


def _b64(image: Image.Image, png: bytes | None = None) -> str:
    return base64.b64encode(encode_png(image) if png is None else png).decode("ascii")


def frame_text(items: Sequence[Item]) -> str:
    """The text the formats add around the pages (the introduction and the labels), one per line.

    Useful to count the text tokens a context spends on presenting its pages.
    """
    pages = [item for item in items if isinstance(item, PageItem)]
    if not pages:
        return ""
    return "\n".join([intro_text(len(pages)), *(item.label for item in pages)])


def intro_text(count: int) -> str:
    """The sentence introducing ``count`` page images."""
    return PAGES_INTRO.format(count=count, noun="image" if count == 1 else "images")


def _split(items: Sequence[Item]) -> tuple[list[TextItem], list[PageItem], list[TextItem]]:
    """Split items into system text, pages and recent turns, checking the documented order."""
    system: list[TextItem] = []
    pages: list[PageItem] = []
    recent: list[TextItem] = []
    for i, item in enumerate(items):
        if isinstance(item, PageItem):
            if recent:
                raise InputError(f"item {i}: pages must come before the recent turns")
            if as_rung(item.rung) is Rung.FORGOTTEN:
                raise InputError(f"item {i}: page {item.page_id} is forgotten and has no image; leave it out")
            pages.append(item)
        elif isinstance(item, TextItem):
            if item.role in ("system", "developer") and not pages and not recent:
                system.append(item)
            else:
                recent.append(item)
        else:
            raise InputError(f"item {i}: expected a TextItem or PageItem, got {type(item).__name__}")
    return system, pages, recent


def _tool_text(item: TextItem) -> str:
    who = f"Tool result ({item.name})" if item.name else "Tool result"
    return f"{who}:\n{item.content}"


def build_messages(items: Sequence[Item], *, format: str, detail: str | None = None) -> FormattedContext:
    """Turn context items into one provider family's messages.

    Args:
        items: System text first (if any), then pages oldest first, then recent turns as text.
        format: One of :data:`FORMATS`.
        detail: OpenAI image detail (``high``, ``low`` or ``auto``); ``high`` when None, which is what
            the memory's cost accounting assumes. Ignored by the other formats.

    Raises:
        ConfigError: For an unknown format or detail.
        InputError: For items out of order, a forgotten page, or something that is not an item.
    """
    fmt = check_format(format)
    detail = "high" if detail is None else detail
    if detail not in ("high", "low", "auto"):
        raise ConfigError(f"OpenAI image detail must be 'high', 'low' or 'auto', got {detail!r}")
    system, pages, recent = _split(items)
    builder = _BUILDERS[fmt]
    return builder(system, pages, recent, detail)


# --- OpenAI ---------------------------------------------------------------------------------------------


def _openai_chat(
    system: list[TextItem], pages: list[PageItem], recent: list[TextItem], detail: str
) -> FormattedContext:
    messages: list[dict[str, Any]] = [_openai_text_message(item) for item in system]
    if pages:
        parts: list[dict[str, Any]] = [{"type": "text", "text": intro_text(len(pages))}]
        for page in pages:
            parts.append({"type": "text", "text": page.label})
            parts.append(
                {"type": "image_url", "image_url": {"url": data_url(page.image, page.png), "detail": detail}}
            )
        messages.append({"role": "user", "content": parts})
    messages.extend(_openai_text_message(item) for item in recent)
    return FormattedContext(messages, None, "openai-chat")


def _openai_text_message(item: TextItem) -> dict[str, Any]:
    if item.role == "tool":
        return {"role": "user", "content": _tool_text(item)}
    message: dict[str, Any] = {"role": item.role, "content": item.content}
    if item.name and _OPENAI_NAME.match(item.name):
        message["name"] = item.name
    return message


def _openai_responses(
    system: list[TextItem], pages: list[PageItem], recent: list[TextItem], detail: str
) -> FormattedContext:
    messages: list[dict[str, Any]] = [{"role": item.role, "content": item.content} for item in system]
    if pages:
        parts: list[dict[str, Any]] = [{"type": "input_text", "text": intro_text(len(pages))}]
        for page in pages:
            parts.append({"type": "input_text", "text": page.label})
            parts.append(
                {"type": "input_image", "image_url": data_url(page.image, page.png), "detail": detail}
            )
        messages.append({"role": "user", "content": parts})
    for item in recent:
        if item.role == "tool":
            messages.append({"role": "user", "content": _tool_text(item)})
        else:
            messages.append({"role": item.role, "content": item.content})
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


def _anthropic(
    system: list[TextItem], pages: list[PageItem], recent: list[TextItem], detail: str
) -> FormattedContext:
    messages: list[dict[str, Any]] = []
    if pages:
        blocks: list[dict[str, Any]] = [{"type": "text", "text": intro_text(len(pages))}]
        for page in pages:
            blocks.append({"type": "text", "text": page.label})
            source = {"type": "base64", "media_type": "image/png", "data": _b64(page.image, page.png)}
            blocks.append({"type": "image", "source": source})
        messages.append({"role": "user", "content": blocks})
    for item in recent:
        role, text = plain_role(item)
        if text:  # the API refuses empty text blocks
            messages.append({"role": role, "content": [{"type": "text", "text": text}]})
    return FormattedContext(_merge(messages, "content"), _system_text(system), "anthropic")


def plain_role(item: TextItem) -> tuple[str, str]:
    """Role (``user`` or ``assistant``) and text for formats that know only those two roles.

    Tool turns become ``Tool result (name):`` user text, later system turns ``System note:`` user text.
    """
    if item.role == "assistant":
        return "assistant", item.content
    if item.role == "tool":
        return "user", _tool_text(item)
    if item.role in ("system", "developer"):
        return "user", f"System note:\n{item.content}"
    return "user", item.content


def _gemini(
    system: list[TextItem], pages: list[PageItem], recent: list[TextItem], detail: str
) -> FormattedContext:
    contents: list[dict[str, Any]] = []
    if pages:
        parts: list[dict[str, Any]] = [{"text": intro_text(len(pages))}]
        for page in pages:
            parts.append({"text": page.label})
            parts.append({"inline_data": {"mime_type": "image/png", "data": _b64(page.image, page.png)}})
        contents.append({"role": "user", "parts": parts})
    for item in recent:
        role, text = plain_role(item)
        if not text:  # an empty part is refused
            continue
        contents.append({"role": "model" if role == "assistant" else "user", "parts": [{"text": text}]})
    return FormattedContext(_merge(contents, "parts"), _system_text(system), "gemini")


# --- Hugging Face chat templates -------------------------------------------------------------------------


def _hf(
    system: list[TextItem], pages: list[PageItem], recent: list[TextItem], detail: str
) -> FormattedContext:
    messages: list[dict[str, Any]] = [_hf_text_message(item) for item in system]
    if pages:
        parts: list[dict[str, Any]] = [{"type": "text", "text": intro_text(len(pages))}]
        for page in pages:
            parts.append({"type": "text", "text": page.label})
            parts.append({"type": "image", "image": page.image})
        messages.append({"role": "user", "content": parts})
    messages.extend(_hf_text_message(item) for item in recent)
    return FormattedContext(messages, None, "hf")


def _hf_text_message(item: TextItem) -> dict[str, Any]:
    role = "system" if item.role == "developer" else item.role
    message: dict[str, Any] = {"role": role, "content": [{"type": "text", "text": item.content}]}
    if item.name:
        message["name"] = item.name
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
