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

A file is read within bounds, so that a huge or hostile one fails with a clear :class:`InputError` (naming
the file, the line where there is one, and the cap) instead of exhausting memory: JSON Lines are streamed
one line at a time, each at most :data:`MAX_LINE_BYTES`; a JSON document is read whole only up to
:data:`MAX_JSON_BYTES`; a conversation holds at most :data:`MAX_MESSAGES` messages of at most
:data:`MAX_MESSAGE_CHARS` characters each; a pasted image may have at most
:data:`optical_memory.images.MAX_PIXELS` pixels. The caps are module constants, read at each call: raise one
(``optical_memory.conversation.MAX_JSON_BYTES = ...``) for an unusual file.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from PIL import Image

from optical_memory import images
from optical_memory.errors import InputError
from optical_memory.types import ToolCall, Turn, as_tool_call, as_turn

logger = logging.getLogger(__name__)

_MIB = 1024 * 1024

MAX_JSON_BYTES = 128 * _MIB
"""Largest JSON document (a list, a ``{"messages"}`` or a ShareGPT object) read whole, in bytes. JSON Lines
have no total cap: they are read one line at a time."""

MAX_LINE_BYTES = 32 * _MIB
"""Longest line of a JSON Lines file, in bytes: one message with a pasted image at the 20 MiB limit,
base64-encoded, fits."""

MAX_MESSAGES = 100_000
"""Most messages one conversation file may hold (ShareGPT records count each of their messages)."""

MAX_MESSAGE_CHARS = 10_000_000
"""Longest message, in characters of text plus tool call arguments (about 2.5 million tokens, beyond any
context window)."""

_BOM = b"\xef\xbb\xbf"
_NOT_JSON = object()  # what _probe returns for a line that is not one whole JSON value

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


def _sharegpt_pairs(record: Mapping[str, Any], where: str) -> Iterator[tuple[str, Turn]]:
    """(where, turn) for each message of one ShareGPT record, in order."""
    messages = record["conversations"]
    if not isinstance(messages, list):
        raise InputError(
            f"{where}: ShareGPT 'conversations' must be a list of messages; got {type(messages).__name__}"
        )
    pending: list[str] = []  # ids of function calls not yet answered by an observation
    for i, message in enumerate(messages):
        at = f"{where}: ShareGPT message {i}"
        if not isinstance(message, Mapping) or "from" not in message:
            raise InputError(f"{where}: ShareGPT message {i} has no 'from' field")
        speaker = str(message["from"]).lower()
        if speaker not in SHAREGPT_ROLES:
            raise InputError(
                f"{where}: ShareGPT message {i} is from {message['from']!r:.80}; "
                f"known speakers: {', '.join(sorted(SHAREGPT_ROLES))}"
            )
        value = message.get("value", "")
        with _as_input_error(at):
            if speaker == "function_call":
                call = _sharegpt_call(value, f"call_{i}")
                pending.append(call.id)
                turn = Turn("assistant", "", tool_calls=(call,))
            elif SHAREGPT_ROLES[speaker] == "tool" and pending:
                turn = as_turn({"role": "tool", "content": value, "tool_call_id": pending.pop(0)})
            else:
                turn = as_turn({"role": SHAREGPT_ROLES[speaker], "content": value})
        yield at, _checked_images(turn, at)


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


@contextlib.contextmanager
def _as_input_error(where: str) -> Iterator[None]:
    """Re-raise what converting one message can raise as an :class:`InputError` prefixed with ``where``.

    Besides InputError itself: structures nested too deeply for the JSON tools (RecursionError), and
    pasted images whose header claims a decompression bomb (Pillow refuses those before decoding).
    """
    try:
        yield
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    except RecursionError:
        raise InputError(f"{where}: the message is nested too deeply to read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(f"{where}: a pasted image is too large to use ({exc})") from None


def _checked_images(turn: Turn, where: str) -> Turn:
    """``turn``, after checking its pasted images against :data:`optical_memory.images.MAX_PIXELS`.

    Raises:
        InputError: For an image whose header declares more pixels than that.
    """
    for image in turn.images:
        if image.width * image.height > images.MAX_PIXELS:
            raise InputError(
                f"{where}: a pasted {image.width}x{image.height} image is over the {images.MAX_PIXELS:,}-pixel "
                "cap (optical_memory.images.MAX_PIXELS); scale it down"
            )
    return turn


def _message_turn(message: Any, where: str) -> Turn:
    if not isinstance(message, Mapping):
        raise InputError(f"{where}: expected a message object, got {type(message).__name__}")
    with _as_input_error(where):
        turn = as_turn(message)
    return _checked_images(turn, where)


def _document_pairs(data: Any, where: str) -> Iterator[tuple[str, Turn]]:
    """(where, turn) for each message of parsed JSON in any of the accepted forms."""
    if isinstance(data, Mapping):
        if "conversations" in data:
            yield from _sharegpt_pairs(data, where)
            return
        if "messages" in data and isinstance(data["messages"], list):
            for i, m in enumerate(data["messages"]):
                at = f"{where}: message {i}"
                yield at, _message_turn(m, at)
            return
        if "role" in data:
            yield where, _message_turn(data, where)
            return
        raise InputError(
            f"{where}: a JSON object must have 'messages' (a list of messages) or 'conversations' (ShareGPT)"
        )
    if isinstance(data, list):
        if data and all(isinstance(d, Mapping) and "conversations" in d for d in data):
            for i, d in enumerate(data):
                yield from _sharegpt_pairs(d, f"{where}: record {i}")
            return
        for i, m in enumerate(data):
            at = f"{where}: message {i}"
            yield at, _message_turn(m, at)
        return
    raise InputError(f"{where}: expected a JSON list of messages or an object, got {type(data).__name__}")


def turns_from_json(data: Any, where: str = "input") -> list[Turn]:
    """Turns from already parsed JSON in any of the accepted forms.

    The caps of :func:`load_conversation` on the number and length of messages do not apply here: the
    data is already in memory.

    Raises:
        InputError: If the structure is none of the accepted forms.
    """
    return [turn for _, turn in _document_pairs(data, where)]


def _jsonl_pairs(records: Iterator[tuple[int, Any]], where: str) -> Iterator[tuple[str, Turn]]:
    """(where, turn) for each message of JSON Lines records: all messages, or all ShareGPT records (as the
    first record is)."""
    sharegpt: bool | None = None
    for n, record in records:
        at = f"{where}:{n}"
        is_sharegpt = isinstance(record, Mapping) and "conversations" in record
        if sharegpt is None:
            sharegpt = is_sharegpt
        if not sharegpt:
            yield at, _message_turn(record, at)
        elif is_sharegpt:
            yield from _sharegpt_pairs(record, at)
        else:
            raise InputError(
                f"{at}: expected a ShareGPT record {{'conversations': [...]}} like the first line's; "
                f"got {type(record).__name__}"
            )


def _lines(fh: IO[bytes], limit: int) -> Iterator[tuple[int, bytes, bool]]:
    """(line number from 1, bytes, whole) of each non-blank line of a binary file, read one at a time.

    ``whole`` is False for a line longer than ``limit`` bytes: only its first ``limit + 1`` bytes are read,
    and the iteration stops there.
    """
    n = 0
    while raw := fh.readline(limit + 1):
        n += 1
        if n == 1:
            raw = raw.removeprefix(_BOM)
        if not raw.strip():
            continue
        whole = len(raw.rstrip(b"\r\n")) <= limit
        yield n, raw, whole
        if not whole:
            return


def _probe(raw: bytes) -> Any:
    """The JSON value one line holds, or ``_NOT_JSON``."""
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return _NOT_JSON


def _parse_line(raw: bytes, at: str) -> Any:
    """The JSON value of one JSON Lines line.

    Raises:
        InputError: If the line is not UTF-8 or not one JSON value.
    """
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{at}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{at}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise InputError(f"{at}: JSON nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise InputError(f"{at}: not valid JSON ({exc})") from None


def _size(n: int) -> str:
    return f"{n // _MIB} MiB" if n >= _MIB and n % _MIB == 0 else f"{n:,} bytes"


def _line_too_long(where: str, n: int) -> InputError:
    return InputError(
        f"{where}:{n}: the line is longer than {_size(MAX_LINE_BYTES)}, the cap on one JSON Lines line "
        "(optical_memory.conversation.MAX_LINE_BYTES); shorten the message or raise the cap"
    )


def _records(
    first: tuple[int, Any], lines: Iterator[tuple[int, bytes, bool]], where: str
) -> Iterator[tuple[int, Any]]:
    """The first record (already parsed), then each further line parsed as it is read."""
    yield first
    for n, raw, whole in lines:
        if not whole:
            raise _line_too_long(where, n)
        yield n, _parse_line(raw, f"{where}:{n}")


def _read_document(fh: IO[bytes], where: str, first: tuple[int, bool]) -> Any:
    """The whole file parsed as one JSON document, refused over :data:`MAX_JSON_BYTES`.

    ``first`` is the first non-blank line's number and whether it was within :data:`MAX_LINE_BYTES`, so
    that a JSON Lines file whose first line is too long is reported as such.
    """
    cap = MAX_JSON_BYTES
    too_big = InputError(
        f"{where} is over {_size(cap)}, the cap on a JSON document read whole "
        "(optical_memory.conversation.MAX_JSON_BYTES); write it as JSON Lines (one message per line), "
        "which is read line by line, or raise the cap"
    )
    if os.fstat(fh.fileno()).st_size > cap:
        raise too_big
    fh.seek(0)
    raw = fh.read(cap + 1)
    if len(raw) > cap:  # the file grew since fstat
        raise too_big
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"cannot read {where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    del raw
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if not first[1] and exc.msg == "Extra data":
            raise _line_too_long(where, first[0]) from None
        raise InputError(f"{where}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise InputError(f"{where}: JSON nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise InputError(f"{where}: not valid JSON ({exc})") from None


def _file_pairs(fh: IO[bytes], where: str) -> Iterator[tuple[str, Turn]]:
    """(where, turn) for each message of an open conversation file, JSON Lines streamed.

    The form is told from the first non-blank line: when it is one whole JSON value and more lines
    follow, the file is JSON Lines; otherwise it is one JSON document.
    """
    lines = _lines(fh, MAX_LINE_BYTES)
    first = next(lines, None)
    if first is None:
        raise InputError(f"{where} is empty: expected a JSON list of messages, JSONL, or ShareGPT")
    n, raw, whole = first
    value = _probe(raw) if whole else _NOT_JSON
    if value is _NOT_JSON:
        yield from _document_pairs(_read_document(fh, where, (n, whole)), where)
        return
    second = next(lines, None)
    if second is None:  # a one-line document
        yield from _document_pairs(value, where)
        return
    yield from _jsonl_pairs(_records((n, value), itertools.chain([second], lines), where), where)


def _bounded(pairs: Iterator[tuple[str, Turn]], where: str) -> list[Turn]:
    """The turns, refusing more than :data:`MAX_MESSAGES` or one over :data:`MAX_MESSAGE_CHARS`."""
    cap, longest = MAX_MESSAGES, MAX_MESSAGE_CHARS
    turns: list[Turn] = []
    for at, turn in pairs:
        if len(turns) >= cap:
            raise InputError(
                f"{at}: {where} holds more than {cap:,} messages, the cap on one conversation "
                "(optical_memory.conversation.MAX_MESSAGES); split the file or raise the cap"
            )
        size = len(turn.content) + sum(len(c.arguments) for c in turn.tool_calls)
        if size > longest:
            raise InputError(
                f"{at}: the message is {size:,} characters long, over the {longest:,}-character cap on one "
                "message (optical_memory.conversation.MAX_MESSAGE_CHARS); shorten it or raise the cap"
            )
        turns.append(turn)
    return turns


def load_conversation(path: str | Path) -> list[Turn]:
    """Read a conversation file in any accepted form, within the module's caps.

    JSON Lines are read one line at a time; a JSON document is read whole (up to :data:`MAX_JSON_BYTES`).

    Raises:
        InputError: If the file is missing, unreadable, not JSON/JSONL, not a conversation, or over a cap
            (:data:`MAX_JSON_BYTES`, :data:`MAX_LINE_BYTES`, :data:`MAX_MESSAGES`,
            :data:`MAX_MESSAGE_CHARS`); the message names the file, the line where there is one, and the cap.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no such file: {p}")
    try:
        with p.open("rb") as fh:
            turns = _bounded(_file_pairs(fh, str(p)), str(p))
    except OSError as exc:
        raise InputError(f"cannot read {p}: {exc}") from None
    logger.debug("read %d turns from %s", len(turns), p)
    return turns
