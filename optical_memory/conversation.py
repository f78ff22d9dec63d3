"""Reading conversations from files in the forms people have them.

Accepted, detected from the content (not the file name):

- a JSON list of messages ``[{"role": ..., "content": ...}, ...]``;
- a JSON object with ``"messages"``;
- JSON Lines, one message per line;
- ShareGPT: ``{"conversations": [{"from": "human" | "gpt" | "system", "value": ...}]}``, a list of
  such objects (read one after another), or one object per JSON line.

Content may be a string or a list of text parts, as in the OpenAI API; assistant messages may carry
``tool_calls`` and tool messages a ``tool_call_id``. In ShareGPT, a ``function_call`` message (JSON
``{"name", "arguments"}``) becomes an assistant turn with one tool call, numbered ``call_<n>`` in order,
and the ``observation`` that follows becomes the tool turn answering it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from optical_memory.errors import InputError
from optical_memory.types import ToolCall, Turn, as_tool_call, as_turn

logger = logging.getLogger(__name__)

SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "tool",
    "function_call": "assistant",
    "observation": "tool",
}


def _sharegpt_turns(record: Mapping[str, Any], where: str) -> list[Turn]:
    turns: list[Turn] = []
    pending: list[str] = []  # ids of function calls not yet answered by an observation
    for i, message in enumerate(record["conversations"]):
        if not isinstance(message, Mapping) or "from" not in message:
            raise InputError(f"{where}: ShareGPT message {i} has no 'from' field")
        speaker = str(message["from"]).lower()
        if speaker not in SHAREGPT_ROLES:
            raise InputError(
                f"{where}: ShareGPT message {i} is from {message['from']!r}; "
                f"known speakers: {', '.join(sorted(SHAREGPT_ROLES))}"
            )
        value = message.get("value", "")
        try:
            if speaker == "function_call":
                call = _sharegpt_call(value, f"call_{i}")
                pending.append(call.id)
                turns.append(Turn("assistant", "", tool_calls=(call,)))
            elif SHAREGPT_ROLES[speaker] == "tool" and pending:
                turns.append(as_turn({"role": "tool", "content": value, "tool_call_id": pending.pop(0)}))
            else:
                turns.append(as_turn({"role": SHAREGPT_ROLES[speaker], "content": value}))
        except InputError as exc:
            raise InputError(f"{where}: ShareGPT message {i}: {exc}") from None
    return turns


def _sharegpt_call(value: Any, call_id: str) -> ToolCall:
    """A ShareGPT ``function_call`` value (JSON ``{"name", "arguments"}``) as a tool call."""
    try:
        data = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        raise InputError(
            f"a function_call value must be JSON {{'name', 'arguments'}}; got {value!r:.80}"
        ) from None
    if not isinstance(data, Mapping):
        raise InputError(f"a function_call value must be a JSON object; got {value!r:.80}")
    return as_tool_call({"id": call_id, "name": data.get("name"), "arguments": data.get("arguments", {})})


def _message_turn(message: Any, where: str) -> Turn:
    if not isinstance(message, Mapping):
        raise InputError(f"{where}: expected a message object, got {type(message).__name__}")
    try:
        return as_turn(message)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def turns_from_json(data: Any, where: str = "input") -> list[Turn]:
    """Turns from already parsed JSON in any of the accepted forms.

    Raises:
        InputError: If the structure is none of the accepted forms.
    """
    if isinstance(data, Mapping):
        if "conversations" in data:
            return _sharegpt_turns(data, where)
        if "messages" in data and isinstance(data["messages"], list):
            return [_message_turn(m, f"{where}: message {i}") for i, m in enumerate(data["messages"])]
        if "role" in data:
            return [_message_turn(data, where)]
        raise InputError(
            f"{where}: a JSON object must have 'messages' (a list of messages) or 'conversations' (ShareGPT)"
        )
    if isinstance(data, list):
        if data and all(isinstance(d, Mapping) and "conversations" in d for d in data):
            return [t for i, d in enumerate(data) for t in _sharegpt_turns(d, f"{where}: record {i}")]
        return [_message_turn(m, f"{where}: message {i}") for i, m in enumerate(data)]
    raise InputError(f"{where}: expected a JSON list of messages or an object, got {type(data).__name__}")


def _json_lines(lines: Iterable[str], where: str) -> list[Any]:
    records = []
    for n, line in enumerate(lines, start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InputError(f"{where}:{n}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    return records


def load_conversation(path: str | Path) -> list[Turn]:
    """Read a conversation file in any accepted form.

    Raises:
        InputError: If the file is missing, unreadable, not JSON/JSONL, or not a conversation.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no such file: {p}")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {p}: {exc}") from None
    if not text.strip():
        raise InputError(f"{p} is empty: expected a JSON list of messages, JSONL, or ShareGPT")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as whole:
        lines = text.splitlines()
        if len([ln for ln in lines if ln.strip()]) < 2:
            raise InputError(
                f"{p}:{whole.lineno}: not valid JSON ({whole.msg} at column {whole.colno})"
            ) from None
        records = _json_lines(lines, str(p))
        turns = turns_from_json(records, str(p))
    else:
        turns = turns_from_json(data, str(p))
    logger.debug("read %d turns from %s", len(turns), p)
    return turns
