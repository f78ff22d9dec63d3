"""OpenAI Agents SDK: ``OpticalSession``, a ``Session`` whose model input is the optical context.

How it plugs in: pass it as the ``session`` of ``Runner.run`` / ``run_sync`` / ``run_streamed``. At the
start of a run the SDK calls :meth:`OpticalSession.get_items` and puts what it returns in front of the new
input; this session returns the optical context there (one user message of page images, as
``input_image`` parts, for the older conversation, then the recent turns as Responses items: messages,
``function_call`` and ``function_call_output``), priced for ``provider`` within ``budget``. The SDK then
saves the new input and each turn's output with :meth:`OpticalSession.add_items` (it saves only the new
input, never the history it was handed, so the page images are never stored back as turns).

The SDK reads a session once per run: the later model calls of a run get that input plus the run's own new
items as text, so a long run (an agent calling tools for many rounds) grows as text again. For such runs
pass ``RunConfig(call_model_input_filter=session.call_model_input_filter)``: each model call then gets
the optical context of everything stored so far (rebuilt whenever a page has been sealed).

What it stores: two things, written in this order.

- The raw history, every Responses item exactly as given, in an inner SDK session: by default a
  ``SQLiteSession`` on the same SQLite file with the SDK's default tables (``agent_sessions``,
  ``agent_messages``), so ``SQLiteSession(session_id, db_path)`` (or :attr:`OpticalSession.inner`) reads
  the whole conversation; pass ``inner=`` to keep it in another SDK session backend instead.
- The optical memory (session ``session_id`` of :meth:`OpticalMemory.open` on the same file), fed with
  chat turns converted from the items (:func:`items_to_turns`):

  - a ``user`` / ``assistant`` message becomes a turn: ``input_text`` / ``output_text`` / ``refusal``
    parts as text, an ``input_image`` as an image part (a data URL; an image given by URL is kept as a
    marker, nothing is downloaded). An ``input_file`` or ``input_audio`` part cannot be priced or drawn
    on a page: it becomes a short text marker (``[file part: report.pdf; not kept in optical memory]``)
    and a warning is logged once; the raw history keeps the part;
  - consecutive ``function_call`` items (one model response's calls) become one assistant turn with those
    tool calls (``call_id`` as the call id, JSON arguments as given); an assistant message before them
    stays its own turn; each ``function_call_output`` becomes a tool turn answering its ``call_id``;
  - other tool items (hosted tools such as web or file search, code interpreter, computer use, shell,
    apply-patch, MCP and custom tools) cannot be replayed in the chat shapes the memory keeps: a call is
    kept as assistant text (``Called web_search_call {...}``), an output as user text
    (``Tool result (custom_tool_call_output):``), so the model still sees what happened;
  - not stored as turns: ``system`` / ``developer`` messages (the agent's instructions travel apart on
    every call: put standing instructions there), ``reasoning`` items (the model's private scratch work,
    often encrypted; a model does not need it replayed), and items that carry no conversation
    (``item_reference``, ``compaction``, ``mcp_list_tools``, tool listings and configuration updates).
    Unknown item types are skipped with a warning logged once. The raw history keeps all of them.

A batch is checked before anything is written (a malformed item, arguments that are not JSON, a
``function_call_output`` answering a call the session never made): it raises the memory's
:class:`~optical_memory.errors.InputError` and nothing is stored. On first use a session object brings
the memory up to date with the raw history, so a memory that lags it (a RAM memory over a persistent
``inner``, or a process stopped between the two writes) catches up; a second process opening the same
file and session id continues the conversation.

``get_items(limit=N)`` (or ``session_settings.limit``) returns the latest ``N`` raw items exactly as
``SQLiteSession`` does: the SDK reads the tail that way to reconcile its writes, and a window of recent
items is what a limit asks for. Leave the limit unset to get the optical context, which the budget
already bounds. ``pop_item()`` removes the newest raw item and undoes its turn in the memory; a turn
already laid out on a page cannot be undone and raises ``InputError`` (nothing is removed then).
``clear_session()`` empties both.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from optical_memory.backends import MEMORY
from optical_memory.config import Budget, MemoryConfig, as_config
from optical_memory.context import Context
from optical_memory.errors import ConfigError, InputError
from optical_memory.integrations.parts import image_part, text_part, unsupported_part, url_image_part
from optical_memory.integrations.threads import require
from optical_memory.memory import OpticalMemory
from optical_memory.store import Store
from optical_memory.types import Turn, as_turn

require("agents", "openai-agents", "the OpenAI Agents SDK adapter")

from agents.memory import SQLiteSession  # noqa: E402
from agents.memory.session_settings import (  # noqa: E402
    SessionSettings,
    coerce_session_settings,
    resolve_session_limit,
)
from agents.run_config import CallModelData, ModelInputData  # noqa: E402

if TYPE_CHECKING:
    from agents.items import TResponseInputItem
    from agents.memory import Session

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_PROVIDER", "OpticalSession", "items_to_turns"]

DEFAULT_PROVIDER = "openai:gpt-4o"
"""The provider of a session created without one in its config (the SDK's models are OpenAI's)."""

RESPONSES_FORMAT = "openai-responses"

_SKIPPED = {
    "reasoning": "the model's private reasoning, not conversation",
    "item_reference": "a reference to an item stored by OpenAI, with no content",
    "compaction": "an opaque compaction blob",
    "compaction_trigger": "a compaction request, with no content",
    "mcp_list_tools": "a listing of an MCP server's tools",
    "additional_tools": "a listing of tools",
    "tool_search_output": "a listing of tools found",
    "configuration_update": "a configuration change",
}
"""Item types that carry no conversation text (see the module docstring)."""
_TEXT_PARTS = ("input_text", "output_text", "text")
_PART_TYPES = (*_TEXT_PARTS, "refusal", "input_image", "computer_screenshot", "input_file", "input_audio")
_DATA_URL = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?);base64,(?P<data>.*)$", re.S
)
_warned_types: set[str] = set()


# --- items -> turns -----------------------------------------------------------------------------------


def _as_item(item: Any, index: int) -> dict[str, Any]:
    """An input item as a plain dict (a pydantic model is dumped as the SDK does)."""
    if isinstance(item, Mapping):
        return dict(item)
    dump = getattr(item, "model_dump", None)
    if callable(dump):
        dumped = dump(exclude_unset=True, warnings=False)
        if isinstance(dumped, dict):
            return dumped
    raise InputError(f"item {index}: a Responses input item must be a dict; got {type(item).__name__}")


def _image(url: Any, file_id: Any, what: str) -> dict[str, Any]:
    """An image given as a data URL, a URL or an OpenAI file id, as a part the memory keeps."""
    if isinstance(url, str) and url.startswith("data:"):
        match = _DATA_URL.match(url)
        if match is None:
            return unsupported_part("image", f"{what} given as a data URL that is not base64")
        data = match.group("data").strip()
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return unsupported_part("image", f"{what} whose base64 data is invalid")
        return image_part(data, match.group("mime") or "image/png")
    if isinstance(url, str) and url:
        return url_image_part(url)
    if isinstance(file_id, str) and file_id:
        return unsupported_part("image", f"{what} stored as OpenAI file {file_id}")
    return unsupported_part("image", f"{what} without data")


def _part(part: Any, where: str) -> dict[str, Any]:
    """One content part of a message or a tool output, as a memory part."""
    if isinstance(part, str):
        return text_part(part)
    if not isinstance(part, Mapping):
        raise InputError(f"{where}: a content part must be a dict; got {type(part).__name__}")
    kind = part.get("type")
    if kind in _TEXT_PARTS:
        text = part.get("text")
        if not isinstance(text, str):
            raise InputError(f"{where}: a {kind} part needs a string 'text'; got {text!r:.80}")
        return text_part(text)
    if kind == "refusal":
        return text_part(f"[refusal] {part.get('refusal', '')}")
    if kind in ("input_image", "computer_screenshot"):
        return _image(part.get("image_url"), part.get("file_id"), "an image")
    if kind == "input_file":
        name = part.get("filename") or part.get("file_url") or part.get("file_id") or ""
        return unsupported_part("file", str(name))
    if kind == "input_audio":
        audio = part.get("input_audio")
        fmt = audio.get("format", "") if isinstance(audio, Mapping) else ""
        return unsupported_part("audio", str(fmt))
    return unsupported_part(str(kind or "unknown"), "")


def _content(value: Any, where: str) -> str | list[dict[str, Any]]:
    """Message content (a string or a list of parts) as memory content."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return [_part(p, f"{where}, part {j}") for j, p in enumerate(value)]
    raise InputError(f"{where}: content must be a string or a list of parts; got {type(value).__name__}")


def _output(value: Any, where: str) -> str | list[dict[str, Any]]:
    """A tool output: text, content parts (text, images, files), or anything else as JSON text."""
    if value is None or isinstance(value, str):
        return value or ""
    parts = [value] if isinstance(value, Mapping) else value
    if isinstance(parts, list) and all(
        isinstance(p, Mapping) and p.get("type") in _PART_TYPES for p in parts
    ):
        return _content(parts, where)
    return json.dumps(value, ensure_ascii=False, default=str)


def _string(item: Mapping[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise InputError(
            f"{where}: a {item.get('type')} item needs a non-empty string {key!r}; got {value!r:.80}"
        )
    return value


def _fields(item: Mapping[str, Any]) -> str:
    """The fields of a hosted tool item worth showing, as compact JSON."""
    shown = {
        k: v for k, v in item.items() if k not in ("type", "id", "status", "encrypted_content", "caller")
    }
    if item.get("type") == "image_generation_call" and shown.get("result"):
        shown["result"] = "[generated image; not kept in optical memory]"
    return json.dumps(shown, ensure_ascii=False, separators=(",", ":"), default=str) if shown else ""


@dataclass
class _Batch:
    """Items of one ``add_items`` call as memory turns.

    Attributes:
        lead_calls: Calls that continue the memory's newest turn (an assistant turn of calls, when the
            batch starts with more calls of the same model response).
        turns: The new turns, as OpenAI chat dicts.
        tail: The call ids of the newest turn when it is a turn of calls more calls may join.
    """

    lead_calls: list[dict[str, Any]] = field(default_factory=list)
    turns: list[dict[str, Any]] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)


def _call(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    arguments = item.get("arguments", "{}")
    if not isinstance(arguments, str):
        raise InputError(
            f"{where}: function_call arguments must be JSON text; got {type(arguments).__name__}"
        )
    return {
        "id": _string(item, "call_id", where),
        "type": "function",
        "function": {"name": _string(item, "name", where), "arguments": arguments},
    }


def _convert(items: Sequence[Mapping[str, Any]], tail: Sequence[str] = ()) -> _Batch:
    """Turn Responses items into memory turns; ``tail``: see :class:`_Batch`."""
    batch = _Batch(tail=list(tail))
    calls_open = bool(tail)  # the newest turn (stored, or the last of ``batch.turns``) takes more calls
    for i, item in enumerate(items):
        where = f"item {i}"
        kind = item.get("type")
        if kind is None and "role" in item:
            kind = "message"
        if not isinstance(kind, str):
            raise InputError(
                f"{where}: a Responses input item needs a 'type' or a 'role'; got {dict(item)!r:.120}"
            )
        if kind == "function_call":
            call = _call(item, where)
            if calls_open:
                if batch.turns:
                    batch.turns[-1]["tool_calls"].append(call)
                else:
                    batch.lead_calls.append(call)
            else:
                batch.turns.append({"role": "assistant", "content": "", "tool_calls": [call]})
                batch.tail = []
            batch.tail.append(call["id"])
            calls_open = True
            continue
        if kind in _SKIPPED:
            continue  # does not end a run of calls: reasoning may sit between them
        turn: dict[str, Any]
        if kind == "message":
            role = item.get("role")
            if role in ("system", "developer"):
                continue  # instructions travel apart on every call
            if role not in ("user", "assistant"):
                raise InputError(
                    f"{where}: message role must be user, assistant, system or developer; got {role!r}"
                )
            if "content" not in item:
                raise InputError(f"{where}: a message needs 'content'")
            turn = {"role": role, "content": _content(item["content"], where)}
        elif kind == "function_call_output":
            call_id = _string(item, "call_id", where)
            turn = {"role": "tool", "tool_call_id": call_id, "content": _output(item.get("output"), where)}
        elif kind == "custom_tool_call":
            text = f"Called {item.get('name', 'custom tool')}({item.get('input', '')})"
            turn = {"role": "assistant", "content": text}
        elif kind.endswith("_call") or kind in ("program", "mcp_approval_request"):
            turn = {"role": "assistant", "content": f"Called {kind} {_fields(item)}".rstrip()}
        elif kind.endswith("_output") or kind == "mcp_approval_response":
            if "output" in item:
                body = _output(item["output"], where)
                parts = [
                    text_part(f"Tool result ({kind}):"),
                    *([text_part(body)] if isinstance(body, str) else body),
                ]
            else:
                parts = [text_part(f"{kind} {_fields(item)}".rstrip())]
            turn = {"role": "user", "content": parts}
        else:
            if kind not in _warned_types:
                _warned_types.add(kind)
                logger.warning(
                    "a %r item is not stored in optical memory (the session's raw history keeps it)", kind
                )
            continue
        batch.turns.append(turn)
        batch.tail = []
        calls_open = False
    return batch


def items_to_turns(items: Iterable[Any]) -> list[dict[str, Any]]:
    """The OpenAI chat turns :class:`OpticalSession` stores in its memory for these Responses items.

    Raises:
        InputError: For an item that is not a Responses input item.
    """
    batch = _convert([_as_item(item, i) for i, item in enumerate(items)])
    return batch.turns


def _check(batch: _Batch, known: set[str], tail: Sequence[str], where: str) -> set[str]:
    """Check the turns of a batch as the memory will (nothing is stored yet); returns the call ids after it.

    Raises:
        InputError: If a turn is malformed, calls repeat an id within one model response, or a tool
            result answers a call the session never made.
    """
    calls = set(known)
    ids = [*tail, *(c["id"] for c in batch.lead_calls)]
    if len(set(ids)) != len(ids):
        raise InputError(f"{where}: tool call ids repeat within one model response: {ids}")
    calls.update(ids)
    for turn in batch.turns:
        t = as_turn(turn)
        if t.tool_call_id is not None and t.tool_call_id not in calls:
            raise InputError(
                f"{where}: a function_call_output answers call {t.tool_call_id!r}, which no function_call "
                "of this session made: add the function_call item first"
            )
        calls.update(c.id for c in t.tool_calls)
    return calls


def _with_calls(turn: Turn, calls: list[dict[str, Any]]) -> dict[str, Any]:
    merged = turn.to_dict()
    merged["tool_calls"] = [*cast(list[dict[str, Any]], merged.get("tool_calls", [])), *calls]
    return merged


# --- the session ----------------------------------------------------------------------------------------


class OpticalSession:
    """An Agents SDK ``Session`` whose history reaches the model as page images plus recent turns.

    It implements the SDK's ``Session`` protocol (``session_id``, ``session_settings``, ``get_items``,
    ``add_items``, ``pop_item``, ``clear_session``); see the module docstring for what it stores.

    Args:
        session_id: The conversation's id: the inner session's id and the memory session's name.
        db_path: The SQLite file holding both (created when missing); None keeps both in RAM for the life
            of this object.
        config: The memory config (a :class:`MemoryConfig` or a dict of its fields). None: a stored session
            keeps its config, a new one gets the defaults with ``provider`` :data:`DEFAULT_PROVIDER`; a dict
            without ``provider`` gets that provider too.
        provider: The provider the context is priced for (None: the config's), e.g. ``openai:gpt-4o``.
        budget: The most tokens the context may cost (a number, ``"window"``, None for no bound), or
            ``"config"`` (the config's budget).
        inner: The SDK session keeping the raw history (e.g. a ``SQLAlchemySession``); None: a
            ``SQLiteSession(session_id, db_path)`` with the SDK's default tables, closed by :meth:`close`.
            Its ``get_items()`` must return the whole history.
        session_settings: The SDK's session settings (a ``SessionSettings`` or a dict); a ``limit`` there
            makes ``get_items()`` return raw items (see the module docstring).

    Raises:
        ConfigError: If ``session_id`` is empty, or the config is invalid or incompatible with the stored
            session's.
        StoreError: If the file cannot be opened.
    """

    def __init__(
        self,
        session_id: str,
        db_path: str | Path | None = None,
        *,
        config: MemoryConfig | Mapping[str, Any] | None = None,
        provider: str | None = None,
        budget: Budget | Literal["config"] = "config",
        inner: Session | None = None,
        session_settings: SessionSettings | Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(session_id, str) or not session_id:
            raise ConfigError(f"session_id must be a non-empty string; got {session_id!r}")
        self.session_id = session_id
        self.session_settings: SessionSettings | None = (
            SessionSettings()
            if session_settings is None
            else coerce_session_settings(
                session_settings if isinstance(session_settings, SessionSettings) else dict(session_settings)
            )
        )
        self.provider = provider
        self.budget: Budget | Literal["config"] = budget
        path = None if db_path is None or str(db_path) == MEMORY else Path(db_path)
        memory_config = _memory_config(config, path, session_id)
        self.memory = OpticalMemory.open(path or MEMORY, session=session_id, config=memory_config)
        self._owns_inner = inner is None
        try:
            self.inner: Session = inner if inner is not None else SQLiteSession(session_id, path or MEMORY)
        except BaseException:
            self.memory.close()
            raise
        self.last_context: Context | None = None
        """The optical context :meth:`get_items` returned last (its ``usage`` says what it costs)."""
        self._ready = False
        self._known: set[str] = set()
        self._tail: list[str] = []
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        # for call_model_input_filter: the context get_items served, the raw items stored since, the
        # context the filter built last (and how many of those items it covers), a page sealed since
        self._served: list[dict[str, Any]] | None = None
        self._since: list[dict[str, Any]] = []
        self._built: tuple[list[dict[str, Any]], int] | None = None
        self._sealed = False

    # --- plumbing ---

    def _guard(self) -> asyncio.Lock:
        """This session's lock for the running event loop (each ``asyncio.run`` has its own loop)."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    async def _ensure_ready(self) -> None:
        """Bring the memory up to date with the raw history (once per object, and after a pop or a failure)."""
        if self._ready:
            return
        raw = [_as_item(item, i) for i, item in enumerate(await self.inner.get_items())]
        batch = _convert(raw)
        await asyncio.to_thread(self._catch_up, batch.turns)
        self._known = {c["id"] for t in batch.turns for c in t.get("tool_calls", [])}
        self._tail = batch.tail
        self._ready = True

    def _catch_up(self, turns: list[dict[str, Any]]) -> None:
        memory = self.memory
        if len(memory) > len(turns):
            raise InputError(
                f"the optical memory of session {self.session_id!r} holds {len(memory)} turns but its raw "
                f"history only {len(turns)}: the raw history was changed apart from this session; "
                "clear_session() it or use a new session id"
            )
        try:
            memory.sync(turns)
        except InputError:
            if not len(memory):
                raise
            memory.pop()  # its newest turn of calls may lack calls added since: lay it out again
            memory.sync(turns)

    # --- the Session protocol ---

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The model input for this session's history: the optical context as Responses input items.

        Args:
            limit: None (and no ``session_settings.limit``): the optical context, one user message of page
                images (``input_image`` parts with PNG data URLs, each after its label) for the older
                conversation, then the recent turns as messages, ``function_call`` and
                ``function_call_output`` items, priced for ``provider`` within ``budget``
                (:attr:`last_context` keeps it, with its usage). A number: the latest ``limit`` raw
                items as stored, exactly as ``SQLiteSession.get_items(limit)`` returns them.

        Raises:
            ConfigError: If the budget is smaller than the text that must stay.
        """
        session_limit = resolve_session_limit(limit, self.session_settings)
        if session_limit is not None:
            return await self.inner.get_items(limit=session_limit)
        async with self._guard():
            await self._ensure_ready()
            context = await self.memory.acontext(
                provider=self.provider, budget=self.budget, format=RESPONSES_FORMAT
            )
        self.last_context = context
        self._served, self._since, self._built, self._sealed = context.messages, [], None, False
        return cast("list[TResponseInputItem]", list(context.messages))

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Store new items: the raw items in the inner session, their turns in the memory.

        Raises:
            InputError: If an item is malformed, or a ``function_call_output`` answers a call this session
                never made; nothing is stored then.
        """
        raw = [_as_item(item, i) for i, item in enumerate(items)]
        async with self._guard():
            await self._ensure_ready()
            batch = _convert(raw, self._tail)
            known = _check(batch, self._known, self._tail, f"session {self.session_id!r}")
            if not raw:
                return
            await self.inner.add_items(cast("list[TResponseInputItem]", raw))
            try:
                sealed = await asyncio.to_thread(self._apply, batch)
            except BaseException:
                self._ready, self._served = False, None  # the next call lays out what the memory lacks
                raise
            self._known, self._tail = known, batch.tail
            self._since += raw
            self._sealed = self._sealed or sealed

    def _apply(self, batch: _Batch) -> bool:
        """Add a batch's turns to the memory; True when a page was sealed."""
        results = []
        if batch.lead_calls:
            results.append(self.memory.add(_with_calls(self.memory.pop(), batch.lead_calls)))
        results += [self.memory.add(turn) for turn in batch.turns]
        return any(r.sealed for r in results)

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove and return the newest raw item (None when the session is empty), undoing its turn.

        Raises:
            InputError: If the item's turn is already laid out on a page (nothing is removed then).
        """
        async with self._guard():
            await self._ensure_ready()
            newest = await self.inner.get_items(limit=1)
            if not newest:
                return None
            batch = _convert([_as_item(newest[-1], 0)])
            if batch.turns or batch.lead_calls:
                await asyncio.to_thread(self._undo, batch)
            self._ready, self._served = False, None  # the next call re-reads the tail of the raw history
            return await self.inner.pop_item()

    def _undo(self, batch: _Batch) -> None:
        try:
            turn = self.memory.pop()
        except InputError as exc:
            raise InputError(
                f"cannot pop the newest item of session {self.session_id!r}: {exc}. Optical memory never "
                "rewrites pages; clear_session() empties the session"
            ) from None
        expected = as_turn(batch.turns[0])
        ids = [c.id for c in turn.tool_calls]
        if expected.tool_calls:
            (call,) = expected.tool_calls
            if ids and ids[-1] == call.id:
                if len(ids) > 1:
                    rest = turn.to_dict()
                    rest["tool_calls"] = [c.to_dict() for c in turn.tool_calls[:-1]]
                    self.memory.add(rest)
                return
        elif turn.role == expected.role and turn.tool_call_id == expected.tool_call_id and not ids:
            return
        self.memory.add(turn)
        raise InputError(
            f"the newest item of session {self.session_id!r} ({expected.role}) is not the memory's newest turn "
            f"({turn.role}): the raw history was changed apart from this session"
        )

    async def clear_session(self) -> None:
        """Remove every item: the raw history and the memory (its config stays)."""
        async with self._guard():
            await self.inner.clear_session()
            await asyncio.to_thread(self.memory.clear)
            self._known, self._tail, self._ready, self._served = set(), [], True, None

    # --- every model call of a run ---

    async def call_model_input_filter(self, data: CallModelData[Any]) -> ModelInputData:
        """A ``RunConfig.call_model_input_filter`` that keeps a long run's model input optical too.

        The SDK reads the session once per run; each later model call of the run gets that input plus the
        run's own new items as text, which the SDK has stored in this session by then. Pass
        ``RunConfig(call_model_input_filter=session.call_model_input_filter)`` and, once a page has been
        sealed since the session was read, each model call gets the optical context of everything stored
        instead (rebuilt only when another page is sealed; the items since follow as they are).

        The input is left as it is unless it is exactly what this session served followed by the items
        stored since (not so with a ``session_input_callback`` that reorders history, a resumed run, or a
        server-managed conversation). What the optical context lacks, the rebuilt input lacks too: the
        run's ``reasoning`` items, and hosted tool items become text (see the module docstring).
        """
        given = data.model_data
        served, since = self._served, self._since
        if served is None or not given.input or (not self._sealed and self._built is None):
            return given
        items = cast(list[Any], given.input)
        n = len(served)
        rest = items[n:]
        if items[:n] != served or [_key(i) for i in rest] != [_key(i) for i in since]:
            return given
        if self._sealed:
            async with self._guard():
                context = await self.memory.acontext(
                    provider=self.provider, budget=self.budget, format=RESPONSES_FORMAT
                )
            self.last_context = context
            self._built, self._sealed = (context.messages, len(since)), False
        assert self._built is not None
        messages, covered = self._built
        return ModelInputData(input=cast(Any, [*messages, *rest[covered:]]), instructions=given.instructions)

    # --- extras ---

    def close(self) -> None:
        """Close the memory, and the inner session when this object created it (idempotent)."""
        self.memory.close()
        close = getattr(self.inner, "close", None)
        if self._owns_inner and callable(close):
            close()

    def __enter__(self) -> OpticalSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OpticalSession({self.session_id!r}, memory={self.memory!r})"


def _key(item: Any) -> tuple[Any, ...]:
    """What identifies an input item across the SDK's copies of it."""
    if not isinstance(item, Mapping):
        return (type(item).__name__,)
    return (item.get("type", "message"), item.get("role"), item.get("call_id"))


def _memory_config(
    config: MemoryConfig | Mapping[str, Any] | None, path: Path | None, session_id: str
) -> MemoryConfig | None:
    """The config to open the memory with (None: keep the stored one)."""
    if isinstance(config, MemoryConfig):
        return config
    if config is not None:
        return as_config({"provider": DEFAULT_PROVIDER, **config})
    if path is not None and path.exists():
        store = Store(path)
        try:
            if store.session(session_id) is not None:
                return None
        finally:
            store.close()
    return MemoryConfig(provider=DEFAULT_PROVIDER)
