"""Small value types passed between the stages: a chat turn, its tool calls, and a rendered page.

A :class:`Turn` is what an agent hands us; :func:`as_turn` accepts the forms agents actually have (an
OpenAI-style dict whose content is a string, a list of text parts or None, with ``tool_calls`` on an
assistant turn and ``tool_call_id`` on a tool result; or a plain string). A :class:`ToolCall` is one call
an assistant turn makes. A :class:`RenderedPage` is what a renderer produces: the page image at the top
rung plus what it holds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from optical_memory.errors import InputError

ROLES = ("system", "user", "assistant", "tool", "developer")


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
    """

    role: str
    content: str
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

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

    def to_dict(self) -> dict[str, object]:
        """The OpenAI chat form ``{"role", "content"}`` (with ``name``, ``tool_calls``, ``tool_call_id`` when set)."""
        out: dict[str, object] = {"role": self.role, "content": self.content}
        if self.name:
            out["name"] = self.name
        if self.tool_calls:
            out["tool_calls"] = [c.to_dict() for c in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        return out


def _content_text(content: Any) -> str:
    """Join an OpenAI content value (a string, or a list of parts) into text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(part, Mapping):
                kind = part.get("type", "?")
                raise InputError(
                    f"content part of type {kind!r} is not supported: only text parts "
                    '({"type": "text", "text": ...}) can be stored in optical memory'
                )
            else:
                raise InputError(f"content parts must be dicts or strings; got {type(part).__name__}")
        return "\n\n".join(texts)
    raise InputError(f"turn content must be a string or a list of text parts; got {type(content).__name__}")


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
        return Turn(role, turn.content, turn.name, turn.tool_calls, turn.tool_call_id)
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
        return Turn(
            r,
            _content_text(turn.get("content")),
            name if isinstance(name, str) else None,
            tuple(as_tool_call(c) for c in calls),
            turn.get("tool_call_id"),
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
