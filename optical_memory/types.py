"""Small value types passed between the stages: a chat turn and a rendered page.

A :class:`Turn` is what an agent hands us; :func:`as_turn` accepts the forms agents actually have
(an OpenAI-style dict whose content is a string or a list of text parts, or a plain string).
A :class:`RenderedPage` is what a renderer produces: the page image at the top rung plus what it holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from optical_memory.errors import InputError

ROLES = ("system", "user", "assistant", "tool", "developer")


@dataclass(frozen=True, slots=True)
class Turn:
    """One chat turn.

    Attributes:
        role: ``system``, ``user``, ``assistant``, ``tool`` or ``developer``.
        content: The text of the turn (Markdown, possibly with fenced code).
        name: Optional speaker or tool name, shown beside the role label.
    """

    role: str
    content: str
    name: str | None = None

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

    def to_dict(self) -> dict[str, str]:
        """The OpenAI-style ``{"role", "content"}`` form (with ``name`` when set)."""
        out = {"role": self.role, "content": self.content}
        if self.name:
            out["name"] = self.name
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


def as_turn(turn: Turn | Mapping[str, Any] | str, *, role: str | None = None) -> Turn:
    """Normalise what an agent hands us into a :class:`Turn`.

    Args:
        turn: A Turn, an OpenAI-style dict ``{"role", "content"[, "name"]}``, or a string.
        role: The role of a string turn (required then), or an override for a dict.

    Raises:
        InputError: For a missing role, an unknown role, or content that is not text.
    """
    if isinstance(turn, Turn):
        return turn if role is None else Turn(role, turn.content, turn.name)
    if isinstance(turn, str):
        if role is None:
            raise InputError("a string turn needs a role: add(text, role='user')")
        return Turn(role, turn)
    if isinstance(turn, Mapping):
        r = role or turn.get("role")
        if r is None:
            raise InputError(f"turn dict has no 'role': {dict(turn)!r:.120}")
        name = turn.get("name")
        return Turn(r, _content_text(turn.get("content")), name if isinstance(name, str) else None)
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
