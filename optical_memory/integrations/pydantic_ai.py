"""Pydantic AI (v2): the model sees page images of the older conversation, the run keeps it all.

:class:`OpticalHistory` is a capability: ``Agent(model, capabilities=[OpticalHistory("memory.db")])``. On
every model request (its ``before_model_request`` hook) it records the run's message history in the
optical-memory session of the conversation (only the messages new since the last request are laid out),
and sends the model the optical context instead: the system prompts first, then one ``ModelRequest``
whose ``UserPromptPart`` holds the page labels and the page images (``BinaryContent``, PNG), then the
recent turns as the run's own ``ModelMessage`` objects, so tool call ids and part kinds stay exactly as
the framework made them. The change is request-only: ``RunContext.messages`` is never touched, so
``result.all_messages()`` keeps the whole history and is what the next run passes back as
``message_history``. (``ProcessHistory`` is not used on purpose: it writes the processed list back into
the run's history, which would replace the conversation by its pages. For the same reason, do not put
a history processor that drops or rewrites messages before this capability: it rewrites the run's
history, and the memory refuses a history that does not continue what it holds.) Messages an earlier
capability adds to the request only are sent after the optical context.

The thread (the memory session in the SQLite file) is, by default, the run's ``conversation_id``, which
Pydantic AI carries on every message, so a later run, in this process or another one that reloads the
history (``ModelMessagesTypeAdapter``), continues the same session. Pass ``thread_id="..."`` or
``thread_id=lambda ctx: ctx.deps.user_id`` to name it yourself (do so for histories built by hand, which
carry no conversation id).

What is stored per message: each ``UserPromptPart`` as a user turn (text, ``TextContent``, images),
each ``ToolReturnPart`` as a tool turn with its ``tool_call_id`` and tool name (its text as the model is
shown it, errors wrapped as ``{"error": ...}``; a legacy ``RetryPromptPart`` or a ``RetryFeedbackPart`` as
the tool or user turn the model is shown), and each ``ModelResponse`` as one assistant turn: its
``TextPart`` text and its ``ToolCallPart`` calls (id, name, arguments as JSON text). ``SystemPromptPart``,
instructions and the framework's bookkeeping parts (instruction and tool-availability records) are not
stored: those of older messages are sent, in order, in front of the pages. ``ThinkingPart`` is the model's
scratch work and is not stored (recent responses keep it, as they are sent as they were). Images a user
pastes (``BinaryContent`` images, ``ImageUrl`` holding a data URL) are stored with the user turn, priced
at the provider's image price while recent and drawn as thumbnails on its page; an ``ImageUrl`` on the web
is kept as a marker (nothing is downloaded), and so is an image in a tool result or a model response (the
memory keeps images of user turns only). Audio, video, documents, uploaded files and an opaque compaction
cannot be priced or drawn on a page: each is stored as a short text marker
(``[audio part: audio/wav; not kept in optical memory]``) and a warning is logged once per kind; the
run's history keeps the part itself, and a recent message is sent with it.

The recent window is counted in turns (``recent_turns``, 8 by default): a model response and the tool
results answering it leave the window together, so keep ``recent_turns`` at least one more than the most
tool calls one response makes; a larger step goes to a page at once and the model reads its results there.

The context is priced for the capability's ``provider``, else the request's model when it is a known
one (``openai:gpt-4o``, ``anthropic:...``, ``google-gla:gemini-...``), else the memory config's; the
budget covers the conversation, not the system prompt and tool definitions. ``last_context`` holds the
:class:`~optical_memory.context.Context` of the latest request (its ``usage`` says what it cost).
:func:`optical_messages` maps messages to the optical context with a memory of your own (for direct
``Model.request`` calls), and :func:`to_turns` shows what is stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload
from urllib.parse import unquote_to_bytes

from optical_memory.config import Budget, MemoryConfig
from optical_memory.context import Context
from optical_memory.errors import InputError
from optical_memory.formats import PageItem, TextItem, call_text, intro_text, tool_text
from optical_memory.images import encode_png
from optical_memory.integrations.parts import image_part, text_part, unsupported_part, url_image_part
from optical_memory.integrations.threads import Threads, provider_name, require
from optical_memory.memory import OpticalMemory
from optical_memory.pricing.providers import get_provider
from optical_memory.types import as_turn

require("pydantic_ai", "pydantic-ai", "the Pydantic AI adapter")

from pydantic_ai import RunContext  # noqa: E402
from pydantic_ai.capabilities import AbstractCapability  # noqa: E402
from pydantic_ai.messages import (  # noqa: E402
    AudioUrl,
    BinaryContent,
    CachePoint,
    CompactionPart,
    DocumentUrl,
    FilePart,
    ImageUrl,
    ModelMessage,
    ModelRequest,
    ModelResponse,
    NativeToolCallPart,
    NativeToolReturnPart,
    RetryFeedbackPart,
    RetryPromptPart,
    SpeechPart,
    TextContent,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolReturnPart,
    UploadedFile,
    UserContent,
    UserPromptPart,
    VideoUrl,
)

if TYPE_CHECKING:
    from pydantic_ai.models import AbstractModel, ModelRequestContext

logger = logging.getLogger(__name__)

__all__ = ["OpticalHistory", "optical_messages", "provider_of", "to_turns"]

_SYSTEMS = {
    "openai": "openai",
    "azure": "openai",
    "anthropic": "anthropic",
    "google": "gemini",
    "google-gla": "gemini",
    "google-vertex": "gemini",
    "google-cloud": "gemini",
}
"""Pydantic AI model ``system`` names (its provider) -> our provider families."""
_GEMINI_LEVELS = {"low": "LOW", "medium": "MEDIUM", "high": "HIGH", "ultra_high": "ULTRA_HIGH"}


# --- messages -> turns -------------------------------------------------------------------------------


class _Piece:
    """One stored turn and where it comes from: a message, and the part of a request (None: a response).

    The turn is converted when first read: a model call reads only the turns the memory does not hold
    yet (and the newest one it holds), so pasted images of older messages are not encoded again.
    """

    __slots__ = ("_turn", "message", "part", "source")

    def __init__(
        self, source: Any, message: int, part: int | None, turn: dict[str, Any] | None = None
    ) -> None:
        self.source = source
        self.message = message
        self.part = part
        self._turn = turn

    @property
    def turn(self) -> dict[str, Any]:
        if self._turn is None:
            self._turn = _request_turn(self.source)
        assert self._turn is not None
        return self._turn

    def calls(self) -> list[str]:
        """The ids of the tool calls this turn makes."""
        if self.part is not None:
            return []
        return [p.tool_call_id for p in self.source.parts if isinstance(p, ToolCallPart)]

    def answers(self) -> str | None:
        """The id of the tool call this turn answers, if any."""
        part = self.source
        if isinstance(part, ToolReturnPart) or (
            isinstance(part, RetryPromptPart) and part.tool_name is not None
        ):
            return part.tool_call_id
        return None


class _Turns(Sequence[dict[str, Any]]):
    """The turns of pieces, converted as they are read (what :meth:`OpticalMemory.sync` is handed)."""

    def __init__(self, pieces: Sequence[_Piece]) -> None:
        self._pieces = pieces

    def __len__(self) -> int:
        return len(self._pieces)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [piece.turn for piece in self._pieces[index]]
        return self._pieces[index].turn


_TURN_PARTS = (UserPromptPart, ToolReturnPart, RetryPromptPart, RetryFeedbackPart, SpeechPart, CompactionPart)
"""The request parts that are conversation turns (the others are instructions and bookkeeping)."""


def _file_part(item: Any, what: str) -> dict[str, Any]:
    """An image part for an image, a marker for any other file (``what`` says where it was)."""
    if isinstance(item, BinaryContent):
        if item.is_image:
            return image_part(item.data, item.media_type)
        kind = item.media_type.split("/", 1)[0]
        return unsupported_part(kind if kind in ("audio", "video") else "document", item.media_type)
    if isinstance(item, ImageUrl):
        if item.url.startswith("data:") and ";base64," in item.url:
            head, data = item.url[5:].split(";base64,", 1)
            return image_part(data, head or "image/png")
        if item.url.startswith("data:"):
            head, _, data = item.url[5:].partition(",")
            return image_part(unquote_to_bytes(data), head or "image/png")
        return url_image_part(item.url)
    if isinstance(item, AudioUrl):
        return unsupported_part("audio", item.url[:80])
    if isinstance(item, VideoUrl):
        return unsupported_part("video", item.url[:80])
    if isinstance(item, DocumentUrl):
        return unsupported_part("document", item.url[:80])
    if isinstance(item, UploadedFile):
        return unsupported_part("file", str(getattr(item, "file_id", ""))[:80])
    return unsupported_part(str(getattr(item, "kind", type(item).__name__)), what)


def _user_content(content: str | Sequence[UserContent]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [text_part(content)]
    parts: list[dict[str, Any]] = []
    for item in content:
        if isinstance(item, str):
            parts.append(text_part(item))
        elif isinstance(item, TextContent):  # StructuredContent too: its rendered text
            parts.append(text_part(item.content))
        elif isinstance(item, CachePoint):
            continue  # a marker for the provider's prompt cache, not content
        else:
            parts.append(_file_part(item, "a user prompt"))
    return parts


def _tool_content(part: ToolReturnPart) -> list[dict[str, Any]]:
    """A tool result as the model is shown it: its text (errors wrapped as ``{"error": ...}``), its files."""
    parts: list[dict[str, Any]] = []
    for item in part.content_items(mode="str"):
        parts.append(text_part(item) if isinstance(item, str) else _file_part(item, "a tool result"))
    return parts


def _request_turn(part: Any) -> dict[str, Any] | None:
    """The turn one request part is stored as (None: not a conversation turn)."""
    if isinstance(part, UserPromptPart):
        return {"role": "user", "content": _user_content(part.content)}
    if isinstance(part, ToolReturnPart):
        return {
            "role": "tool",
            "tool_call_id": part.tool_call_id,
            "name": part.tool_name,
            "content": _tool_content(part),
        }
    if isinstance(part, RetryPromptPart):  # deprecated, still found in stored histories
        if part.tool_name is not None:
            return {
                "role": "tool",
                "tool_call_id": part.tool_call_id,
                "name": part.tool_name,
                "content": part.model_response(),
            }
        return {"role": "user", "content": part.model_response()}
    if isinstance(part, RetryFeedbackPart):
        return {"role": "user", "content": part.model_response()}
    if isinstance(part, SpeechPart):
        if part.transcript is not None:
            return {"role": "user", "content": part.transcript}
        return {"role": "user", "content": [unsupported_part("audio", "speech without a transcript")]}
    if isinstance(part, CompactionPart):  # a summary the application wrote
        return {"role": "user", "content": [_compaction(part)]}
    return None  # system prompts, instruction and tool-availability records: kept, never stored


def _compaction(part: CompactionPart) -> dict[str, Any]:
    if part.content:
        return text_part(f"Summary of the earlier conversation:\n{part.content}")
    return unsupported_part("compaction", "an encrypted summary")


def _response_turn(message: ModelResponse) -> dict[str, Any] | None:
    """A response as one assistant turn (None when it holds nothing but thinking)."""
    content: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            if part.content:
                content.append(text_part(part.content))
        elif isinstance(part, ToolCallPart):
            function = {"name": part.tool_name, "arguments": part.args_as_json_str()}
            calls.append({"id": part.tool_call_id, "type": "function", "function": function})
        elif isinstance(part, ThinkingPart):
            continue  # scratch work: not stored
        elif isinstance(part, NativeToolCallPart):
            content.append(
                text_part(f"Called {part.tool_name} (run by the provider)({part.args_as_json_str()})")
            )
        elif isinstance(part, NativeToolReturnPart):
            result = part.model_response_str()
            content.append(text_part(f"Result of {part.tool_name} (run by the provider):\n{result}"))
        elif isinstance(part, FilePart):
            content.append(_file_part(part.content, "a model response"))
        elif isinstance(part, SpeechPart):
            if part.transcript is not None:
                content.append(text_part(part.transcript))
        elif isinstance(part, CompactionPart):
            content.append(_compaction(part))
        else:
            content.append(unsupported_part(str(getattr(part, "part_kind", type(part).__name__)), ""))
    if not content and not calls:
        return None
    turn: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        turn["tool_calls"] = calls
    return turn


def _pieces(messages: Sequence[ModelMessage]) -> list[_Piece]:
    pieces: list[_Piece] = []
    for i, message in enumerate(messages):
        if isinstance(message, ModelRequest):
            for j, part in enumerate(message.parts):
                if isinstance(part, _TURN_PARTS):
                    pieces.append(_Piece(part, i, j))
        elif isinstance(message, ModelResponse):
            turn = _response_turn(message)
            if turn is not None:
                pieces.append(_Piece(message, i, None, turn))
        else:
            raise InputError(
                f"message {i} is a {type(message).__name__}, not a ModelRequest or ModelResponse: "
                "pass the run's messages (result.all_messages())"
            )
    return pieces


def to_turns(messages: Sequence[ModelMessage]) -> list[dict[str, Any]]:
    """Pydantic AI messages as the OpenAI chat turns the memory stores (see the module docstring).

    Raises:
        InputError: For something that is not a ``ModelRequest`` or ``ModelResponse``.
    """
    return [piece.turn for piece in _pieces(messages)]


def _check(pieces: Sequence[_Piece], stored: int) -> None:
    """Check the turns not stored yet before storing any, so a bad history stores nothing.

    Raises:
        InputError: For a malformed turn, or a tool result answering a call no earlier response made.
    """
    calls: set[str] = set()
    for n, piece in enumerate(pieces):
        if n >= stored:
            try:
                as_turn(piece.turn)
            except InputError as exc:
                raise InputError(
                    f"message {piece.message} cannot be stored in optical memory: {exc}"
                ) from None
            call = piece.answers()
            if call is not None and call not in calls:
                raise InputError(
                    f"message {piece.message} holds the result of tool call {call!r} "
                    f"({piece.turn.get('name')}), but no earlier ModelResponse made that call: pass the "
                    "history with the response that made it (nothing was stored)"
                )
        calls.update(piece.calls())


# --- the optical context -----------------------------------------------------------------------------


def provider_of(model: AbstractModel | None) -> str | None:
    """The provider name a Pydantic AI model is billed as (None when it is not a known provider's model)."""
    if model is None:
        return None
    try:
        family = _SYSTEMS.get(str(model.system).lower())
        name = model.model_name
    except Exception:  # a test or wrapper model without a provider
        return None
    return provider_name(family, name)


def optical_messages(
    memory: OpticalMemory,
    messages: Sequence[ModelMessage],
    *,
    provider: str | None = None,
    budget: Budget | Literal["config"] = "config",
) -> list[ModelMessage]:
    """The optical context of a run's messages, as Pydantic AI messages (blocking: it lays out pages).

    ``memory`` takes the messages it does not hold yet (see :meth:`OpticalMemory.sync`); the result holds
    the older messages' system prompts (and the framework's instruction records) in a first request with
    one user prompt of page images, then the recent messages as they are. A history with no page yet comes
    back as it is.

    Raises:
        InputError: If ``messages`` does not continue what ``memory`` holds, or holds a message it cannot
            store (nothing is stored then).
    """
    return _optical(memory, messages, provider, budget)[0]


def _optical(
    memory: OpticalMemory,
    messages: Sequence[ModelMessage],
    provider: str | None,
    budget: Budget | Literal["config"],
) -> tuple[list[ModelMessage], Context]:
    pieces = _pieces(messages)
    _check(pieces, len(memory))
    memory.sync(_Turns(pieces))
    context = memory.context(provider=provider, budget=budget, format="openai-chat")
    start = 1 + max((page.turns[1] for page in memory.pages()), default=-1)  # the recent window's first turn
    if start == 0:
        return list(messages), context
    return _rebuild(messages, pieces, context, start), context


def _rebuild(
    messages: Sequence[ModelMessage], pieces: Sequence[_Piece], context: Context, start: int
) -> list[ModelMessage]:
    """The messages to send: kept parts and the pages first, then the recent messages from turn ``start``."""
    older: list[UserContent] = []
    family = get_provider(context.provider).family
    for item in context.items:
        if isinstance(item, PageItem):
            png = item.png if item.png is not None else encode_png(item.image)
            older += [
                item.label,
                BinaryContent(png, media_type="image/png", vendor_metadata=_vendor(item, family)),
            ]
        elif isinstance(item, TextItem) and item.turn is not None and item.turn < start:
            older.append(_item_text(item))  # a page cheaper as its text than as an image
    # the recent messages: from the message holding turn `start` (without its parts already on pages)
    first = pieces[start].message if start < len(pieces) else len(messages)
    paged_parts = {p.part for p in pieces[:start] if p.message == first}
    turn_parts: dict[int, set[int | None]] = {}
    for piece in pieces[:start]:
        turn_parts.setdefault(piece.message, set()).add(piece.part)
    kept: list[Any] = []  # the non-turn parts of older messages: system prompts, instruction records
    for i, message in enumerate(messages[:first]):
        if isinstance(message, ModelRequest):
            kept += [part for j, part in enumerate(message.parts) if j not in turn_parts.get(i, ())]
    recent = list(messages[first:])
    if recent and paged_parts and isinstance(recent[0], ModelRequest):
        head = recent[0]
        recent[0] = replace(head, parts=[p for j, p in enumerate(head.parts) if j not in paged_parts])
    recent = _without_orphans(recent, older)
    front: list[Any] = [*kept]
    if older:
        front.append(UserPromptPart([intro_text(), *older]))
    if not front:
        return recent if recent else list(messages)
    return [ModelRequest(parts=front), *recent]


def _vendor(item: PageItem, family: str) -> dict[str, Any] | None:
    """How the page image is sent: the detail it was priced at (OpenAI), its Gemini 3 resolution."""
    if family == "openai":
        return {"detail": item.detail or "high"}
    if family == "gemini" and item.detail in _GEMINI_LEVELS:
        return {"media_resolution": {"level": f"MEDIA_RESOLUTION_{_GEMINI_LEVELS[item.detail]}"}}
    return None


def _item_text(item: TextItem) -> str:
    if item.role == "tool":
        return tool_text(item)
    lines = [item.content] if item.content else []
    lines += [call_text(call) for call in item.tool_calls]
    return f"{item.role.capitalize()}:\n" + "\n".join(lines)


def _without_orphans(recent: list[ModelMessage], older: list[UserContent]) -> list[ModelMessage]:
    """Move tool results whose call is not among the recent messages to the older text.

    The memory never lets a call leave the recent window without its results, so this finds nothing in
    a history it laid out; it guards the rule the providers enforce (no result without its call).
    """
    calls: set[str] = set()
    out: list[ModelMessage] = []
    for message in recent:
        if isinstance(message, ModelResponse):
            calls.update(p.tool_call_id for p in message.parts if isinstance(p, ToolCallPart))
            out.append(message)
            continue
        orphans = [
            p
            for p in message.parts
            if isinstance(p, ToolReturnPart | RetryPromptPart) and getattr(p, "tool_name", None) is not None
            if p.tool_call_id not in calls
        ]
        if not orphans:
            out.append(message)
            continue
        for part in orphans:
            turn = _request_turn(part) or {}
            text = " ".join(c["text"] for c in turn.get("content", ()) if isinstance(c, dict) and "text" in c)
            older.append(tool_text(TextItem("tool", text or str(turn.get("content", "")), part.tool_name)))
        rest = [p for p in message.parts if not any(p is o for o in orphans)]
        if rest:
            out.append(replace(message, parts=rest))
    return out


# --- the capability ----------------------------------------------------------------------------------


@dataclass
class OpticalHistory(AbstractCapability[Any]):
    """A capability that sends the model the optical context of the conversation (request-only).

    Args:
        path: The SQLite file holding every conversation's memory (created when missing; None: in RAM,
            for this process only), or a :class:`~optical_memory.integrations.threads.Threads` to share.
        thread_id: The memory session of a run: a fixed name, a function of the ``RunContext`` (for
            example ``lambda ctx: ctx.deps.user_id``), or None (the default) for the run's
            ``conversation_id``.
        config: The memory config of new sessions (a :class:`MemoryConfig` or a dict of its fields).
        provider: The provider the context is priced for; by default the request's model when it is a
            known one, else the config's.
        budget: Most tokens the context may cost, in the provider's tokens (see
            :meth:`OpticalMemory.context`); the config's budget by default.

    Raises:
        ConfigError: If ``config`` is invalid.
        ProviderError: If ``provider`` is unknown.
    """

    path: str | Path | Threads | None = None
    _: KW_ONLY
    thread_id: str | Callable[[RunContext[Any]], str] | None = None
    config: MemoryConfig | Mapping[str, Any] | None = None
    provider: str | None = None
    budget: Budget | Literal["config"] = "config"
    threads: Threads = field(init=False, repr=False, compare=False)
    last_context: Context | None = field(default=None, init=False, repr=False, compare=False)
    """The context of the latest model request (its ``usage`` says what it cost)."""

    def __post_init__(self) -> None:
        if isinstance(self.path, Threads):
            self.threads = self.path
        else:
            self.threads = Threads(self.path, config=self.config)
        if self.provider is not None:
            self.provider = get_provider(self.provider).name

    @classmethod
    def get_serialization_name(cls) -> str | None:
        return None  # holds open files: not built from agent specs

    def thread_of(self, ctx: RunContext[Any]) -> str:
        """The memory session of a run (see ``thread_id``)."""
        if callable(self.thread_id):
            return self.thread_id(ctx)
        if self.thread_id is not None:
            return self.thread_id
        conversation = getattr(ctx, "conversation_id", None)
        return str(conversation) if conversation else "default"

    async def process(
        self, ctx: RunContext[Any], messages: list[ModelMessage], model: AbstractModel | None = None
    ) -> list[ModelMessage]:
        """The messages to send instead of ``messages`` (records them in the run's memory session first).

        What :meth:`before_model_request` sends; ``model`` is the model priced for when the capability
        has no ``provider`` (by default the run's). Not a history processor for ``ProcessHistory``, which
        would write the result back into the run's history.

        Raises:
            InputError: If ``messages`` does not continue what the session holds, or holds a message it
                cannot store (nothing is stored then).
        """
        memory = await self.threads.aget(self.thread_of(ctx))
        provider = self.provider or provider_of(model if model is not None else ctx.model)
        out, context = await asyncio.to_thread(_optical, memory, messages, provider, self.budget)
        self.last_context = context
        return out

    async def before_model_request(
        self, ctx: RunContext[Any], request_context: ModelRequestContext
    ) -> ModelRequestContext:
        """Send the optical context of the run's history; the history itself is left as it is."""
        history = list(ctx.messages)
        request = request_context.messages
        extra: list[ModelMessage] = []
        if len(request) >= len(history) and all(a is b for a, b in zip(request, history, strict=False)):
            extra = list(request[len(history) :])  # request-only messages an earlier capability added
        else:
            logger.warning(
                "an earlier capability rewrote the messages of this request without changing the run's "
                "history: optical memory sends its context of the history instead (list OpticalHistory "
                "before it)"
            )
        request_context.messages = [*await self.process(ctx, history, request_context.model), *extra]
        return request_context

    def close(self) -> None:
        """Close the conversations' memories (idempotent)."""
        self.threads.close()
