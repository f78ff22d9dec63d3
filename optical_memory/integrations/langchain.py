"""LangChain 1.x and LangGraph: the model sees page images of the older conversation, the graph keeps it all.

``OpticalMemoryMiddleware`` is an ``AgentMiddleware`` for ``create_agent``. On every model call
(``wrap_model_call`` / ``awrap_model_call``) it records the thread's messages in the optical-memory session
named after the LangGraph thread id (only the messages new since the last call are laid out), and calls
the model with the optical context instead: one message of page images for the older turns, the recent
turns as they were. The graph's checkpointed state (``InMemorySaver``, ``SqliteSaver``, ``PostgresSaver``) is
never changed, so it keeps the whole history; a process that reopens the same store file and thread
continues both. The system message stays the request's own and is never stored.

For custom LangGraph graphs, :func:`optical_messages` maps a state's messages to the optical context inside
a model node, and :func:`count_tokens` counts messages with each provider's exact image price (a drop-in for
``count_tokens_approximately``, which prices every image at a flat 85).

What is stored per message: its text, tool calls (id, name, JSON arguments) and tool-call id, and its
images (standard ``image`` blocks or OpenAI ``image_url`` parts; an image given only by URL is kept as a
marker, nothing is downloaded). Reasoning blocks are the model's scratch work and are not stored. An
audio, file or video block cannot be priced as an image or drawn on a page: it is stored as a short text
marker (``[audio part: audio/wav; not kept in optical memory]``) and a warning is logged once; the graph
state keeps the block itself.

The provider the context is priced for is the middleware's ``provider``, else the bound chat model's
(from its LangSmith parameters: ``ChatOpenAI(model="gpt-4o")`` prices as ``openai:gpt-4o``), else the
memory config's.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from PIL import Image

from optical_memory.config import Budget, MemoryConfig
from optical_memory.errors import InputError
from optical_memory.integrations.parts import image_part, text_part, unsupported_part, url_image_part
from optical_memory.integrations.threads import Threads, provider_name, require
from optical_memory.memory import OpticalMemory
from optical_memory.pricing.providers import Provider, get_provider

require("langchain", "langchain", "the LangChain adapter")

from langchain.agents.middleware import AgentMiddleware  # noqa: E402
from langchain_core.messages import (  # noqa: E402
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    convert_to_messages,
)
from langchain_core.utils.function_calling import convert_to_openai_tool  # noqa: E402

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

logger = logging.getLogger(__name__)

__all__ = ["OpticalMemoryMiddleware", "count_tokens", "optical_messages", "provider_of", "to_turns"]

_LS_FAMILIES = {
    "openai": "openai",
    "azure": "openai",
    "anthropic": "anthropic",
    "google_genai": "gemini",
    "google_vertexai": "gemini",
    "google": "gemini",
}
"""LangSmith ``ls_provider`` names of chat models -> our provider families."""
_URL_IMAGE_SIDE = 1024
"""An image given only by URL has no known size: it is priced as a square of this side."""


# --- messages -> turns -------------------------------------------------------------------------------


def _parts(message: BaseMessage) -> list[dict[str, Any]]:
    """The message's content as OpenAI chat parts (text, images, markers for what cannot be kept)."""
    if isinstance(message.content, str):  # the common case, without normalising blocks
        return [text_part(message.content)] if message.content else []
    parts: list[dict[str, Any]] = []
    for block in _blocks(message):
        kind = block.get("type")
        if kind == "text":
            parts.append(text_part(str(block.get("text", ""))))
        elif kind == "image":
            if block.get("base64"):
                parts.append(image_part(str(block["base64"]), str(block.get("mime_type") or "image/png")))
            elif block.get("url"):
                parts.append(url_image_part(str(block["url"])))
            else:
                parts.append(unsupported_part("image", "a file id"))
        elif kind in ("reasoning", "tool_call", "tool_call_chunk", "invalid_tool_call"):
            continue  # scratch work, or tool calls (taken from message.tool_calls)
        else:
            what = str(block.get("mime_type") or block.get("url") or "")[:80]
            parts.append(unsupported_part(str(kind), what))
    return parts


def _blocks(message: BaseMessage) -> list[dict[str, Any]]:
    """The message's content as LangChain's standard blocks (provider formats normalised)."""
    if isinstance(message.content, str):
        return [{"type": "text", "text": message.content}]
    return cast(list[dict[str, Any]], message.content_blocks)


def _role(message: BaseMessage) -> str:
    if isinstance(message, HumanMessage):
        return "user"
    if isinstance(message, AIMessage):
        return "assistant"
    if isinstance(message, ToolMessage):
        return "tool"
    if isinstance(message, ChatMessage) and message.role in ("user", "assistant", "tool"):
        return message.role
    raise InputError(
        f"cannot store a {type(message).__name__} (role {getattr(message, 'role', message.type)!r}) in "
        "optical memory: only human, AI and tool messages are conversation turns"
    )


def to_turns(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """LangChain messages (system messages left out) as the OpenAI chat turns the memory stores.

    Raises:
        InputError: For a message that is not a human, AI, tool or system message.
    """
    turns: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, SystemMessage):
            continue
        turn: dict[str, Any] = {"role": _role(message), "content": _parts(message)}
        if message.name:
            turn["name"] = message.name
        if isinstance(message, AIMessage) and message.tool_calls:
            turn["tool_calls"] = [
                {"id": c["id"], "function": {"name": c["name"], "arguments": json.dumps(c["args"])}}
                for c in message.tool_calls
            ]
        if isinstance(message, ToolMessage):
            turn["tool_call_id"] = message.tool_call_id
        turns.append(turn)
    return turns


# --- the optical context -----------------------------------------------------------------------------


def provider_of(model: BaseChatModel | None) -> str | None:
    """The provider name a chat model is billed as (None when it does not say, or is not a known family)."""
    try:
        params = model._get_ls_params()  # type: ignore[union-attr]
    except Exception:  # no model, or one without LangSmith parameters
        return None
    return provider_name(
        _LS_FAMILIES.get(str(params.get("ls_provider", "")).lower()), params.get("ls_model_name")
    )


def optical_messages(
    memory: OpticalMemory,
    messages: Sequence[BaseMessage],
    *,
    provider: str | None = None,
    budget: Budget | Literal["config"] = "config",
) -> list[BaseMessage]:
    """The optical context of a conversation, as LangChain messages, for a model node of a custom graph.

    ``memory`` takes the messages it does not hold yet (see :meth:`OpticalMemory.sync`); the result starts
    with the conversation's system messages, then one message of page images for the older turns, then the
    recent turns.

    Raises:
        InputError: If ``messages`` does not continue what ``memory`` holds, or holds a message it cannot
            store.
    """
    memory.sync(to_turns(messages))
    context = memory.context(provider=provider, budget=budget, format="openai-chat")
    return _with_system(messages, context.messages)


def _with_system(messages: Sequence[BaseMessage], optical: list[dict[str, Any]]) -> list[BaseMessage]:
    system = [m for m in messages if isinstance(m, SystemMessage)]
    return [*system, *convert_to_messages(optical)]


# --- the middleware ----------------------------------------------------------------------------------


class OpticalMemoryMiddleware(AgentMiddleware):
    """An ``AgentMiddleware`` that sends the model the optical context of the thread.

    Args:
        path: The SQLite file holding every thread's memory (None: in RAM, for this process only).
        config: The memory config of new threads (a :class:`MemoryConfig` or a dict of its fields).
        provider: The provider the context is priced for; by default the bound model's (see the module
            docstring), else the config's.
        budget: Most tokens the context may cost, in the provider's tokens (see
            :meth:`OpticalMemory.context`); the config's budget by default.
        threads: Share the memories of another adapter instead of opening ``path``.

    A run without a checkpointer has no thread id and uses the thread ``"default"``.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        config: MemoryConfig | Mapping[str, Any] | None = None,
        provider: str | None = None,
        budget: Budget | Literal["config"] = "config",
        threads: Threads | None = None,
    ) -> None:
        super().__init__()
        self.threads = threads if threads is not None else Threads(path, config=config)
        self.provider = None if provider is None else get_provider(provider).name
        self.budget = budget

    def _plan(self, request: Any) -> tuple[str, str | None]:
        thread = _thread_id(request.runtime)
        return thread, self.provider or provider_of(request.model)

    def wrap_model_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        """Call the model with the thread's optical context in place of its messages."""
        thread, provider = self._plan(request)
        messages = optical_messages(
            self.threads.get(thread), request.messages, provider=provider, budget=self.budget
        )
        return handler(request.override(messages=messages))

    async def awrap_model_call(self, request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        """:meth:`wrap_model_call` for async runs (the memory works on a worker thread)."""
        thread, provider = self._plan(request)
        memory = await self.threads.aget(thread)
        messages = await asyncio.to_thread(
            optical_messages, memory, request.messages, provider=provider, budget=self.budget
        )
        return await handler(request.override(messages=messages))

    def close(self) -> None:
        """Close the thread memories (idempotent)."""
        self.threads.close()


def _thread_id(runtime: Any) -> str:
    info = getattr(runtime, "execution_info", None)
    thread = getattr(info, "thread_id", None)
    if thread is None:
        try:
            from langgraph.config import get_config

            thread = get_config().get("configurable", {}).get("thread_id")
        except RuntimeError:  # called outside a graph run
            thread = None
    return str(thread) if thread is not None else "default"


# --- token counting ----------------------------------------------------------------------------------


def count_tokens(
    messages: Sequence[BaseMessage | Mapping[str, Any]],
    *,
    provider: str | Provider,
    tools: Sequence[Any] | None = None,
) -> int:
    """Tokens ``messages`` cost on ``provider``, with each image at the provider's exact price.

    A replacement for ``count_tokens_approximately``, which prices any image at a flat 85 tokens: here a
    base64 image is priced from its pixel size with the provider's formula (a 1280 px square page bills
    765 tokens on gpt-4o at high detail and 85 at low). Text is counted with
    the provider's tokenizer (an estimate for Anthropic and Gemini), plus its per-message overhead; tool
    calls count as their name and JSON arguments. An image given only by URL is priced as a 1024 px square
    (its size is unknown without downloading it).

    Raises:
        ProviderError: For an unknown provider.
    """
    target = provider if isinstance(provider, Provider) else get_provider(provider)
    total = 0
    for message in convert_to_messages([m if isinstance(m, BaseMessage) else dict(m) for m in messages]):
        total += target.message_overhead + target.text_tokens(message.name or "")
        for block in _blocks(message):
            if block.get("type") == "text":
                total += target.text_tokens(str(block.get("text", "")))
            elif block.get("type") == "image":
                detail = (block.get("extras") or {}).get("detail")
                total += target.image_tokens(*_image_size(block), detail)
        if isinstance(message, AIMessage):
            for call in message.tool_calls:
                total += target.text_tokens(call["name"] + json.dumps(call["args"], separators=(",", ":")))
        if isinstance(message, ToolMessage):
            total += target.text_tokens(message.tool_call_id)
    for tool in tools or ():
        total += target.text_tokens(json.dumps(convert_to_openai_tool(tool), separators=(",", ":")))
    return total


def _image_size(block: Mapping[str, Any]) -> tuple[int, int]:
    data = block.get("base64")
    url = str(block.get("url") or "")
    if not data and url.startswith("data:") and "," in url:
        data = url.split(",", 1)[1]
    if not data:
        return _URL_IMAGE_SIDE, _URL_IMAGE_SIDE
    try:
        with Image.open(io.BytesIO(base64.b64decode(data))) as image:
            return image.size
    except (ValueError, OSError) as exc:
        raise InputError(f"an image block does not hold a readable image ({exc})") from None
