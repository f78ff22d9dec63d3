"""LlamaIndex: :class:`OpticalMemoryBlock`, a long-term ``BaseMemoryBlock`` that shows flushed turns as page images.

How it plugs in: LlamaIndex's ``Memory`` keeps a short-term FIFO of chat messages in its chat store (a
``SQLAlchemyChatStore``; SQLite through ``aiosqlite`` or any async database URL). When the FIFO grows
past ``token_limit * chat_history_token_ratio`` (counted with Memory's own estimate), ``Memory`` marks
the oldest messages *archived* in its store (they stay there: ``memory.aget_all()`` still returns the
whole history), cutting only right before a user message so a tool call always leaves with its results,
and hands those messages, in order, to every memory block's ``aput``. This block converts them to OpenAI
chat turns and adds them to an optical-memory session: one per ``Memory.session_id`` (through
:class:`~optical_memory.integrations.threads.Threads`, in one SQLite file or in RAM), or one explicit
:class:`~optical_memory.memory.OpticalMemory`.

On every ``Memory.aget()`` (which agents call before each model call) the block returns the session's
:meth:`~optical_memory.memory.OpticalMemory.context`, priced for ``provider`` and fitted to ``budget`` in
that provider's tokens, as LlamaIndex ``ChatMessage`` objects: one user message of page images
(``ImageBlock`` holding the PNG, each after a ``TextBlock`` label such as ``page 3, turns 10-14``, the
first run opening with a sentence saying what the images are), plus any turn that is still text (a
flushed system message, which stays text for good, or a page cheaper as text than as an image). Pages
left out to fit the budget are simply absent. ``Memory`` puts messages a block returns in front of the
active short-term messages, so the model sees: the agent's system prompt, the older conversation as
pages, then the recent messages as text. (A block returning *content blocks* instead would go through
``Memory``'s template, which keeps only images given by URL or path and puts them into the system message
by default, where OpenAI and Anthropic accept no image; so this block returns messages, and
``insert_method`` does not affect it.)

What it stores: only what ``Memory`` flushes. The short-term FIFO already holds the recent messages as
text, so the memories this block creates lay out every turn they receive at once (``recent_turns=0``,
unless the config sets it); an assistant turn whose tool calls are unanswered waits as text until its
results come (``Memory`` flushes a call with its results, so this does not happen there). Text of a
ChatMessage becomes text, tool calls (``ToolCallBlock`` blocks, or ``additional_kwargs["tool_calls"]``
in OpenAI, Anthropic or ``ToolSelection`` shape) become ``tool_calls``, and a ``tool`` message answers
the call named by ``additional_kwargs["tool_call_id"]``. Images (``ImageBlock`` with bytes, a stream, a
file path or a data URL) become ``image_url`` parts holding a data URL, which the memory keeps as it keeps
any pasted image (see :meth:`~optical_memory.memory.OpticalMemory.add`); an image given by an ``http(s)``
URL is handed over as that URL (nothing is downloaded). Audio, video and document blocks cannot be priced or drawn: each becomes a short text marker
(``[audio part: ...; not kept in optical memory]``, see :mod:`optical_memory.integrations.parts`) and a
warning is logged once per kind; the chat store keeps the original. Thinking blocks and cache points are
not part of the conversation and are dropped. A batch that cannot be stored (a tool result answering an
unknown call, tool arguments that are not JSON, a tool message without ``tool_call_id``) raises
:class:`~optical_memory.errors.InputError` from ``Memory.aput`` and nothing of the batch is stored; as
``Memory`` archives messages before handing them over, those messages then stay in the chat store only.

Costs: ``Memory`` prices an image at a flat ``image_token_size_estimate`` (256 by default) when it weighs
blocks against ``token_limit``; it has no hook for a block's real cost. The real cost is fitted here, in
``provider``'s tokens: give the block a ``budget`` that leaves room for the short-term messages and the
system prompt. Keep ``priority=0`` (the default), so ``Memory`` never truncates the block on its flat
estimate. :attr:`OpticalMemoryBlock.last_context` holds the last context built (``.usage`` says what it
costs).

A ``budget`` smaller than the open page (the page still filling, which always goes) makes ``Memory.aget``
raise :class:`~optical_memory.errors.ConfigError`: give the block at least a page's worth (about 800
tokens on gpt-4o).

The memory is append-only: after ``Memory.aset(...)`` or ``Memory.areset()`` (which rewrite or empty the
chat store) clear the optical session too (``block.memory_for(session_id).clear()``).

Example::

    from llama_index.core.memory import Memory
    from optical_memory.integrations.llamaindex import OpticalMemoryBlock

    block = OpticalMemoryBlock(path="optical.db", config={"provider": "openai:gpt-4o"}, budget=20_000)
    memory = Memory.from_defaults(
        session_id="user-42", token_limit=40_000, memory_blocks=[block],
        async_database_uri="sqlite+aiosqlite:///chat.db",
    )
    # agent.run("...", memory=memory): older turns reach the model as page images
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from io import IOBase
from pathlib import Path
from typing import Any, Literal

from optical_memory.config import MemoryConfig, as_config
from optical_memory.context import Context
from optical_memory.errors import InputError, MissingDependencyError
from optical_memory.integrations.parts import image_part, text_part, unsupported_part, url_image_part
from optical_memory.integrations.threads import Threads
from optical_memory.memory import OpticalMemory

try:
    from llama_index.core.base.llms.types import (
        AudioBlock,
        CachePoint,
        ChatMessage,
        CitableBlock,
        CitationBlock,
        DocumentBlock,
        ImageBlock,
        MessageRole,
        TextBlock,
        ThinkingBlock,
        ToolCallBlock,
        VideoBlock,
    )
    from llama_index.core.bridge.pydantic import Field, PrivateAttr
    from llama_index.core.memory.memory import BaseMemoryBlock
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise MissingDependencyError("llama-index-core", "llamaindex", "OpticalMemoryBlock") from exc

__all__ = ["OpticalMemoryBlock", "from_openai_messages", "to_openai_turns"]

DEFAULT_SESSION = "default"
"""The session of messages handed over without a session id (``aput`` called directly)."""

_ROLES = {
    "system": "system",
    "developer": "developer",
    "user": "user",
    "assistant": "assistant",
    "chatbot": "assistant",
    "model": "assistant",
    "tool": "tool",
    "function": "tool",
}
_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?:;[^,]*)?;base64,(?P<data>.*)$", re.DOTALL)

Budget = int | Literal["window", "config"] | None


class OpticalMemoryBlock(BaseMemoryBlock[list[ChatMessage]]):
    """A ``Memory`` block that keeps flushed messages in optical memory and returns them as page images.

    Args:
        name: The block's name in ``Memory`` (unique among its blocks).
        path: The SQLite file the sessions live in (one per ``Memory.session_id``); None keeps them in RAM
            for the life of the block.
        config: The config of the sessions (a :class:`~optical_memory.config.MemoryConfig` or a dict of
            its fields); ``recent_turns`` defaults to 0 here (see the module docstring).
        provider: The model the context is priced for, e.g. ``"openai:gpt-4o"`` (None: the config's).
        budget: Most tokens the block's messages may cost, in ``provider``'s tokens: a number,
            ``"window"`` (half the model's context window), None (no bound) or ``"config"`` (the config's
            ``budget``, the default).
        memory: One explicit memory to use for every session id instead (``path`` and ``config`` are then
            not used).
        threads: A :class:`Threads` to share with other code instead of opening one from ``path``.

    Raises:
        ConfigError: If ``config`` is invalid.
    """

    name: str = Field(default="optical_memory", description="The name of the memory block.")
    description: str | None = Field(
        default="The earlier conversation, as page images of its transcript.",
        description="A description of the memory block.",
    )
    path: str | Path | None = Field(default=None, description="SQLite file of the sessions (None: RAM).")
    config: MemoryConfig | dict[str, Any] | None = Field(
        default=None, description="Optical-memory config of the sessions (recent_turns defaults to 0)."
    )
    provider: str | None = Field(default=None, description="Provider the context is priced for.")
    budget: Budget = Field(default="config", description="Most tokens the block's messages may cost.")
    memory: OpticalMemory | None = Field(default=None, exclude=True, description="One explicit memory.")
    threads: Threads | None = Field(default=None, exclude=True, description="Shared per-session memories.")

    _threads: Threads | None = PrivateAttr(default=None)
    _owns_threads: bool = PrivateAttr(default=False)
    _last_context: Context | None = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        # after pydantic's own validation, so a bad config raises ConfigError itself (not wrapped)
        if self.memory is not None:
            return
        if self.threads is not None:
            self._threads = self.threads
            return
        self.config = _flush_config(self.config)
        self._threads = Threads(self.path, config=self.config)  # files open on a session's first use
        self._owns_threads = True

    # --- sessions -------------------------------------------------------------------------------------

    def memory_for(self, session_id: str | None = None) -> OpticalMemory:
        """The optical memory of ``session_id`` (a ``Memory.session_id``), opened on first use."""
        if self.memory is not None:
            return self.memory
        assert self._threads is not None
        return self._threads.get(session_id or DEFAULT_SESSION)

    async def amemory_for(self, session_id: str | None = None) -> OpticalMemory:
        """:meth:`memory_for` without blocking the event loop."""
        if self.memory is not None:
            return self.memory
        assert self._threads is not None
        return await self._threads.aget(session_id or DEFAULT_SESSION)

    @property
    def last_context(self) -> Context | None:
        """The context the last ``aget`` built (its ``usage`` is what the block's messages cost)."""
        return self._last_context

    def close(self) -> None:
        """Close the memories this block opened (not an explicit ``memory`` or shared ``threads``)."""
        if self._owns_threads and self._threads is not None:
            self._threads.close()

    # --- the BaseMemoryBlock contract -----------------------------------------------------------------

    async def _aput(self, messages: list[ChatMessage]) -> None:
        """Add the messages ``Memory`` flushed out of its short-term FIFO (all or nothing).

        Raises:
            InputError: If a message cannot be stored (nothing of the batch is stored then).
        """
        if not messages:
            return
        session = messages[0].additional_kwargs.get("session_id")
        memory = await self.amemory_for(session if isinstance(session, str) else None)
        turns = to_openai_turns(messages)
        await asyncio.to_thread(memory.extend, turns)

    async def _aget(
        self, messages: list[ChatMessage] | None = None, **block_kwargs: Any
    ) -> list[ChatMessage]:
        """The older conversation as messages of page images, priced for ``provider`` within ``budget``."""
        session = block_kwargs.get("session_id")
        memory = await self.amemory_for(session if isinstance(session, str) else None)
        if not len(memory):
            return []
        context = await memory.acontext(provider=self.provider, budget=self.budget, format="openai-chat")
        self._last_context = context
        return from_openai_messages(context.messages)


def _flush_config(config: MemoryConfig | Mapping[str, Any] | None) -> MemoryConfig:
    """``config`` with ``recent_turns=0`` unless it sets the window itself."""
    if isinstance(config, MemoryConfig):
        fields = config.model_fields_set
        if "recent_turns" in fields or "recent_tokens" in fields:
            return config
        return as_config({**config.model_dump(exclude_unset=True), "recent_turns": 0})
    settings = dict(config or {})
    if "recent_turns" not in settings and "recent_tokens" not in settings:
        settings["recent_turns"] = 0
    return as_config(settings)


# --- LlamaIndex messages -> OpenAI chat turns -------------------------------------------------------------


def to_openai_turns(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """LlamaIndex chat messages as OpenAI chat dicts (what :meth:`OpticalMemory.add` takes).

    Raises:
        InputError: For a message that cannot be converted (a tool message without ``tool_call_id``, a
            tool call without an id, an unreadable image file).
    """
    return [_to_openai(i, m) for i, m in enumerate(messages)]


def _to_openai(index: int, message: ChatMessage) -> dict[str, Any]:
    role_value = message.role.value if isinstance(message.role, MessageRole) else str(message.role)
    role = _ROLES.get(role_value)
    if role is None:
        raise InputError(f"message {index}: role {role_value!r} cannot be stored in optical memory")
    extra = message.additional_kwargs or {}
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for block in message.blocks:
        _convert_block(index, block, parts, calls)
    calls = _dedupe(calls + [_legacy_call(index, c) for c in _legacy_calls(extra)])
    turn: dict[str, Any] = {"role": role, "content": _content(parts)}
    name = extra.get("name")
    if isinstance(name, str) and name:
        turn["name"] = name
    if calls:
        if role != "assistant":
            raise InputError(f"message {index}: a {role} message cannot make tool calls")
        turn["tool_calls"] = calls
    if role == "tool":
        call_id = extra.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise InputError(
                f"message {index}: a tool message needs additional_kwargs['tool_call_id'] naming the call "
                "it answers"
            )
        turn["tool_call_id"] = call_id
    return turn


def _content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if all(p.get("type") == "text" for p in parts):
        return "\n\n".join(p["text"] for p in parts)
    return parts


def _convert_block(index: int, block: Any, parts: list[dict[str, Any]], calls: list[dict[str, Any]]) -> None:
    if isinstance(block, TextBlock):
        parts.append(text_part(block.text))
    elif isinstance(block, ImageBlock):
        parts.append(_image(index, block))
    elif isinstance(block, ToolCallBlock):
        calls.append(_call(index, block.tool_call_id, block.tool_name, block.tool_kwargs))
    elif isinstance(block, ThinkingBlock | CachePoint):
        return  # the model's reasoning and cache markers are not part of the conversation
    elif isinstance(block, CitableBlock):
        for inner in block.content:
            _convert_block(index, inner, parts, calls)
    elif isinstance(block, CitationBlock):
        _convert_block(index, block.cited_content, parts, calls)
    elif isinstance(block, AudioBlock):
        parts.append(unsupported_part("audio", _describe(block.format, block.url, block.path)))
    elif isinstance(block, VideoBlock):
        parts.append(unsupported_part("video", _describe(block.video_mimetype, block.url, block.path)))
    elif isinstance(block, DocumentBlock):
        parts.append(
            unsupported_part(
                "document", _describe(block.title, block.document_mimetype, block.url, block.path)
            )
        )
    else:
        parts.append(unsupported_part(str(getattr(block, "block_type", type(block).__name__))))


def _describe(*facts: object) -> str:
    return ", ".join(str(f) for f in facts if f)


def _image(index: int, block: ImageBlock) -> dict[str, Any]:
    mime = block.image_mimetype or "image/png"  # the memory reads the real type from the image itself
    if isinstance(block.image, IOBase):  # a stream of the encoded image (bytes are kept as base64)
        block.image.seek(0)
        return image_part(block.image.read(), mime)
    if block.image is None and block.url is not None:
        url = str(block.url)
        match = _DATA_URL.match(url)
        if match is None:
            return url_image_part(url)  # a remote image: kept as its URL, nothing downloaded
        return image_part(match["data"], match["mime"] or mime)
    try:
        data = block.resolve_image(as_base64=True).read()
    except (OSError, ValueError) as exc:
        raise InputError(f"message {index}: cannot read its image ({exc})") from None
    return image_part(data.decode("ascii"), mime)


def _call(index: int, call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    if not isinstance(call_id, str) or not call_id:
        raise InputError(f"message {index}: tool call {name!r} has no id, so no result can answer it")
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        arguments = "{}"
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False, default=str)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _legacy_calls(extra: Mapping[str, Any]) -> list[Any]:
    calls = extra.get("tool_calls")
    if not calls:
        return []
    if not isinstance(calls, Sequence) or isinstance(calls, str | bytes):
        raise InputError(f"additional_kwargs['tool_calls'] must be a list; got {type(calls).__name__}")
    return list(calls)


def _legacy_call(index: int, call: Any) -> dict[str, Any]:
    """A call from ``additional_kwargs["tool_calls"]``: OpenAI, Anthropic ``tool_use`` or ``ToolSelection``."""
    if hasattr(call, "model_dump"):
        call = call.model_dump()
    if not isinstance(call, Mapping):
        raise InputError(f"message {index}: a tool call of type {type(call).__name__} is not understood")
    if "tool_name" in call:  # ToolSelection
        return _call(index, call.get("tool_id"), call["tool_name"], call.get("tool_kwargs"))
    function = call.get("function")
    if isinstance(function, Mapping):  # OpenAI
        return _call(index, call.get("id"), function.get("name"), function.get("arguments"))
    if "input" in call:  # Anthropic tool_use
        return _call(index, call.get("id"), call.get("name"), call.get("input"))
    return _call(index, call.get("id"), call.get("name"), call.get("arguments"))


def _dedupe(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Calls in order, each id once (a call may be both a block and in ``additional_kwargs``)."""
    seen: set[str] = set()
    out = []
    for call in calls:
        if call["id"] not in seen:
            seen.add(call["id"])
            out.append(call)
    return out


# --- OpenAI chat messages (the optical context) -> LlamaIndex messages ------------------------------------


def from_openai_messages(messages: Sequence[Mapping[str, Any]]) -> list[ChatMessage]:
    """OpenAI chat messages (an ``openai-chat`` context) as LlamaIndex chat messages.

    Page images become ``ImageBlock``s holding the PNG (not a URL), labels ``TextBlock``s; tool calls
    become ``ToolCallBlock``s and tool results ``tool`` messages with ``additional_kwargs["tool_call_id"]``,
    the shapes LlamaIndex's LLM integrations send.
    """
    out = []
    for message in messages:
        role = MessageRole(str(message.get("role", "user")))
        blocks: list[Any] = []
        content = message.get("content")
        if isinstance(content, str) and content:
            blocks.append(TextBlock(text=content))
        elif isinstance(content, list):
            blocks.extend(_llama_part(part) for part in content)
        for call in message.get("tool_calls") or ():
            function = call["function"]
            blocks.append(
                ToolCallBlock(
                    tool_call_id=call["id"],
                    tool_name=function["name"],
                    tool_kwargs=_kwargs(function["arguments"]),
                )
            )
        extra: dict[str, Any] = {}
        if message.get("tool_call_id"):
            extra["tool_call_id"] = message["tool_call_id"]
        if not blocks:
            blocks.append(TextBlock(text=""))
        if any(isinstance(b, ImageBlock) for b in blocks):
            # ChatMessage(...) would validate each image block again (decoding and re-encoding its base64);
            # the blocks are valid already, so the message is built as validation would leave it
            out.append(ChatMessage.model_construct(role=role, blocks=blocks, additional_kwargs=extra))
        else:
            out.append(ChatMessage(role=role, blocks=blocks, additional_kwargs=extra))
    return out


def _llama_part(part: Mapping[str, Any]) -> Any:
    if part.get("type") == "image_url":
        spec = part["image_url"]
        match = _DATA_URL.match(spec["url"])
        if match is None:
            return ImageBlock(url=spec["url"], detail=spec.get("detail"))
        # ImageBlock keeps its image as base64 bytes (its validator encodes raw bytes): the page is base64
        # in the context already, so the block is built as validation would leave it, instead of decoding
        # and re-encoding every page on every model call
        return ImageBlock.model_construct(
            image=match["data"].encode("ascii"),
            image_mimetype=match["mime"] or "image/png",
            detail=spec.get("detail"),
        )
    return TextBlock(text=str(part.get("text", "")))


def _kwargs(arguments: str) -> dict[str, Any] | str:
    value = json.loads(arguments)
    return value if isinstance(value, dict) else arguments
