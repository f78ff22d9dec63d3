"""Small value types passed between the stages: a chat turn, its tool calls and images, and a rendered page.

A :class:`Turn` is what an agent hands us; :func:`as_turn` accepts the forms agents actually have (an
OpenAI-style dict whose content is a string, None, or a list of text and ``image_url`` parts, with
``tool_calls`` on an assistant turn and ``tool_call_id`` on a tool result; or a plain string). A
:class:`ToolCall` is one call an assistant turn makes; a :class:`TurnImage` an image a user pasted. A
:class:`RenderedPage` is what a renderer produces: the page image at the top rung plus what it holds.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from optical_memory.errors import InputError

ROLES = ("system", "user", "assistant", "tool", "developer")
IMAGE_MIMES = ("image/png", "image/jpeg", "image/gif", "image/webp")
"""The image types a turn may carry (what every hosted vision API takes)."""
MAX_IMAGE_BYTES = 20 * 1024 * 1024
"""The largest pasted image a turn may carry (the hosted APIs' own per-image limit is about this)."""


@dataclass(frozen=True, slots=True)
class TurnImage:
    """An image a user pasted into a turn, kept as its encoded bytes.

    Attributes:
        data: The encoded image (PNG, JPEG, GIF or WebP), as given.
        mime: Its media type.
        width: Its width in pixels.
        height: Its height in pixels.
    """

    data: bytes = field(repr=False)
    mime: str
    width: int
    height: int

    @classmethod
    def from_bytes(cls, data: bytes) -> TurnImage:
        """Read an encoded image's type and size.

        Raises:
            InputError: If ``data`` is not a PNG, JPEG, GIF or WebP image, or is over 20 MiB.
        """
        if len(data) > MAX_IMAGE_BYTES:
            raise InputError(
                f"a pasted image may be at most {MAX_IMAGE_BYTES >> 20} MiB; got {len(data) >> 20} MiB"
            )
        try:
            with Image.open(io.BytesIO(data)) as image:
                mime = Image.MIME.get(image.format or "", "")
                size = image.size
        except (OSError, ValueError) as exc:
            raise InputError(f"an image part does not hold a readable image ({exc})") from None
        if mime not in IMAGE_MIMES:
            raise InputError(
                f"image type {mime or 'unknown'!r} is not supported; send one of {', '.join(IMAGE_MIMES)}"
            )
        return cls(data, mime, *size)

    @classmethod
    def from_data_url(cls, url: str) -> TurnImage:
        """An image from a ``data:image/...;base64,...`` URL.

        Raises:
            InputError: If the URL is not a base64 data URL of a supported image.
        """
        head, _, payload = url.partition(",")
        if not head.startswith("data:") or not head.endswith(";base64") or not payload:
            raise InputError(
                f"an image part must hold a base64 data URL ('data:image/png;base64,...'); got {url[:40]!r}"
            )
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise InputError("an image part's data URL is not valid base64") from None
        return cls.from_bytes(data)

    def data_url(self) -> str:
        """The image as a base64 data URL."""
        return f"data:{self.mime};base64,{self.b64()}"

    def b64(self) -> str:
        """The encoded image as base64 text."""
        return base64.b64encode(self.data).decode("ascii")

    def open(self) -> Image.Image:
        """The decoded image."""
        with Image.open(io.BytesIO(self.data)) as image:
            image.load()
            return image.copy()

    def label(self, index: int) -> str:
        """The marker a turn's text holds where the image was: ``[image 1: 800x600 png]``."""
        return f"[image {index}: {self.width}x{self.height} {self.mime.removeprefix('image/')}]"


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call an assistant turn makes.

    Attributes:
        id: The call id its result answers with (``tool_call_id``).
        name: The function's name.
        arguments: The arguments as JSON text, exactly as the model wrote them.
    """

    id: str
    name: str
    arguments: str = "{}"

    def __post_init__(self) -> None:
        for key in ("id", "name"):
            value = getattr(self, key)
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"a tool call needs a non-empty string {key}; got {value!r:.80}")
        if not isinstance(self.arguments, str):
            raise InputError(
                f"tool call {self.id}: arguments must be JSON text; got {type(self.arguments).__name__}"
            )
        try:
            json.loads(self.arguments)
        except ValueError as exc:
            raise InputError(
                f"tool call {self.id} ({self.name}): arguments are not valid JSON ({exc}): {self.arguments!r:.120}"
            ) from None

    def minified(self) -> str:
        """The arguments as compact JSON (no spaces after separators, non-ASCII kept)."""
        return json.dumps(json.loads(self.arguments), separators=(",", ":"), ensure_ascii=False)

    def to_dict(self) -> dict[str, object]:
        """The OpenAI chat form ``{"id", "type": "function", "function": {"name", "arguments"}}``."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True, slots=True)
class Turn:
    """One chat turn.

    Attributes:
        role: ``system``, ``user``, ``assistant``, ``tool`` or ``developer``.
        content: The text of the turn (Markdown, possibly with fenced code); may be empty for an
            assistant turn that only calls tools.
        name: Optional speaker or tool name, shown beside the role label.
        tool_calls: The calls an assistant turn makes, in order.
        tool_call_id: The call a tool turn answers.
        images: Images a user turn carries (its ``content`` holds a marker where each was, see
            :meth:`TurnImage.label`).
    """

    role: str
    content: str
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    images: tuple[TurnImage, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.role, str) or self.role not in ROLES:
            raise InputError(f"turn role must be one of {', '.join(ROLES)}; got {self.role!r}")
        if not isinstance(self.content, str):
            raise InputError(
                f"turn content must be a string (or a list of text parts in a dict); "
                f"got {type(self.content).__name__}"
            )
        if self.name is not None and not isinstance(self.name, str):
            raise InputError(f"turn name must be a string; got {type(self.name).__name__}")
        if not isinstance(self.tool_calls, tuple) or not all(
            isinstance(c, ToolCall) for c in self.tool_calls
        ):
            raise InputError("turn tool_calls must be a tuple of ToolCall")
        if self.tool_calls and self.role != "assistant":
            raise InputError(f"only assistant turns make tool calls; this turn's role is {self.role!r}")
        if len({c.id for c in self.tool_calls}) != len(self.tool_calls):
            raise InputError(f"tool call ids repeat within one turn: {[c.id for c in self.tool_calls]}")
        if self.tool_call_id is not None:
            if self.role != "tool":
                raise InputError(
                    f"only tool turns answer a call (tool_call_id); this turn's role is {self.role!r}"
                )
            if not isinstance(self.tool_call_id, str) or not self.tool_call_id.strip():
                raise InputError(f"tool_call_id must be a non-empty string; got {self.tool_call_id!r}")
        if not isinstance(self.images, tuple) or not all(isinstance(i, TurnImage) for i in self.images):
            raise InputError("turn images must be a tuple of TurnImage")
        if self.images and self.role != "user":
            raise InputError(f"only user turns carry images; this turn's role is {self.role!r}")

    def to_dict(self) -> dict[str, object]:
        """The OpenAI chat form ``{"role", "content"}`` (with ``name``, ``tool_calls``, ``tool_call_id`` when set;
        a turn with images has a list of parts: its text, then each image as an ``image_url`` data URL)."""
        content: object = self.content
        if self.images:
            urls = [{"type": "image_url", "image_url": {"url": i.data_url()}} for i in self.images]
            content = [{"type": "text", "text": self.content}, *urls]
        out: dict[str, object] = {"role": self.role, "content": content}
        if self.name:
            out["name"] = self.name
        if self.tool_calls:
            out["tool_calls"] = [c.to_dict() for c in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        return out


def _content(content: Any, role: str) -> tuple[str, tuple[TurnImage, ...]]:
    """The text and images of an OpenAI content value (a string, or a list of parts).

    Text parts are joined with blank lines. An ``image_url`` part holding a data URL becomes an image of a
    user turn, with a marker in the text where it was; one holding a web address (nothing is downloaded),
    or an image in a turn of another role, is kept as a marker only.
    """
    if content is None:
        return "", ()
    if isinstance(content, str):
        return content, ()
    if not isinstance(content, list):
        raise InputError(f"turn content must be a string or a list of parts; got {type(content).__name__}")
    texts: list[str] = []
    images: list[TurnImage] = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part, Mapping) and part.get("type") == "image_url":
            spec = part.get("image_url")
            url = spec.get("url") if isinstance(spec, Mapping) else spec
            if not isinstance(url, str):
                raise InputError("an image_url part needs a 'url' string")
            if not url.startswith("data:"):
                texts.append(f"[image: {url}]")
            elif role != "user":
                image = TurnImage.from_data_url(url)
                texts.append(
                    f"[image: {image.width}x{image.height} {image.mime}; only user turns keep images]"
                )
            else:
                images.append(TurnImage.from_data_url(url))
                texts.append(images[-1].label(len(images)))
        elif isinstance(part, Mapping):
            kind = part.get("type", "?")
            raise InputError(
                f"content part of type {kind!r} is not supported: only text parts and image_url parts "
                "(data URLs of PNG, JPEG, GIF or WebP images) can be stored in optical memory"
            )
        else:
            raise InputError(f"content parts must be dicts or strings; got {type(part).__name__}")
    return "\n\n".join(texts), tuple(images)


def as_tool_call(call: ToolCall | Mapping[str, Any]) -> ToolCall:
    """A :class:`ToolCall` from the OpenAI form ``{"id", "function": {"name", "arguments"}}`` or a flat
    ``{"id", "name", "arguments"}``; arguments given as a dict or list are written as JSON text.

    Raises:
        InputError: If the call is malformed or its arguments are not JSON.
    """
    if isinstance(call, ToolCall):
        return call
    if not isinstance(call, Mapping):
        raise InputError(f"a tool call must be a dict; got {type(call).__name__}")
    function = call.get("function", call)
    if not isinstance(function, Mapping):
        raise InputError(f"tool call {call.get('id')!r}: 'function' must be a dict")
    arguments = function.get("arguments", "{}")
    if isinstance(arguments, Mapping | list):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return ToolCall(call.get("id"), function.get("name"), arguments)  # type: ignore[arg-type]


def as_turn(turn: Turn | Mapping[str, Any] | str, *, role: str | None = None) -> Turn:
    """Normalise what an agent hands us into a :class:`Turn`.

    Args:
        turn: A Turn, an OpenAI-style dict ``{"role", "content"[, "name", "tool_calls", "tool_call_id"]}``,
            or a string.
        role: The role of a string turn (required then), or an override for a dict.

    Raises:
        InputError: For a missing role, an unknown role, content that is not text, or a malformed tool call.
    """
    if isinstance(turn, Turn):
        if role is None or role == turn.role:
            return turn
        return Turn(role, turn.content, turn.name, turn.tool_calls, turn.tool_call_id, turn.images)
    if isinstance(turn, str):
        if role is None:
            raise InputError("a string turn needs a role: add(text, role='user')")
        return Turn(role, turn)
    if isinstance(turn, Mapping):
        r = role or turn.get("role")
        if r is None:
            raise InputError(f"turn dict has no 'role': {dict(turn)!r:.120}")
        name = turn.get("name")
        calls = turn.get("tool_calls") or ()
        if not isinstance(calls, Sequence) or isinstance(calls, str | bytes):
            raise InputError(f"tool_calls must be a list of calls; got {type(calls).__name__}")
        text, images = _content(turn.get("content"), r)
        return Turn(
            r,
            text,
            name if isinstance(name, str) else None,
            tuple(as_tool_call(c) for c in calls),
            turn.get("tool_call_id"),
            images,
        )
    raise InputError(f"a turn must be a Turn, a dict or a string; got {type(turn).__name__}")


@dataclass(frozen=True, slots=True)
class TurnSpan:
    """The part of one turn a page holds: characters ``start:end`` of the turn's content.

    ``turn`` is the turn's index in the sequence handed to the renderer (or its id in a memory).
    """

    turn: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class RenderedPage:
    """A page image at the top rung and what it holds.

    Attributes:
        image: Square grayscale (mode ``L``) page image.
        spans: Which turns, and which character ranges of them, the page holds, in order.
        text: Exactly the text drawn on the page, in reading order, one drawn line per line.
        text_tokens: Tokens of ``text`` in the counting encoding (o200k_base unless configured).
        missing_glyphs: Characters no bundled font covers, drawn as a visible replacement.
    """

    image: Image.Image = field(repr=False, compare=False)
    spans: tuple[TurnSpan, ...]
    text: str
    text_tokens: int
    missing_glyphs: int

    @property
    def size(self) -> int:
        """Side of the square page in pixels."""
        return self.image.width
