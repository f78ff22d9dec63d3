"""Recall as a tool an agent can call: an OpenAI function-tool schema and its handler.

Give :data:`RECALL_TOOL` to a chat-completions call (``tools=[RECALL_TOOL]``); when the model calls
``recall_page``, pass the call's ``arguments`` (the JSON string, or a parsed dict) to
:func:`handle_tool_call` and send the string it returns back as the tool message's content::

    for call in response.choices[0].message.tool_calls or []:
        result = handle_tool_call(memory, call.function.arguments)
        messages.append({"role": "tool", "tool_call_id": call.id, "content": result})

The result is JSON: ``{"page_id", "reader", "rung", "text"}``, or ``{"error": ...}`` for a call that cannot
be answered (unknown page, forgotten page, bad arguments), so the model can correct itself instead of the
agent loop crashing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from optical_memory.errors import OpticalMemoryError
from optical_memory.recall.api import recall_page
from optical_memory.recall.base import READERS

__all__ = ["RECALL_TOOL", "handle_tool_call"]

RECALL_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "recall_page",
        "description": (
            "Read back the exact text of an earlier page of this conversation. Older turns are shown to you "
            "as page images that get blurrier as they age; call this when you need the precise wording, "
            "numbers or code of such a page. Page ids are given in the page labels (e.g. 'page 3')."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "page_id": {"type": "integer", "minimum": 0, "description": "The id of the page to read."},
                "reader": {
                    "type": "string",
                    "enum": list(READERS),
                    "description": (
                        "How to read it. Leave out to use the stored text when it was kept, else the "
                        "configured OCR."
                    ),
                },
            },
            "required": ["page_id"],
            "additionalProperties": False,
        },
    },
}
"""The OpenAI chat-completions tool definition of ``recall_page``."""


def _error(message: str) -> str:
    return json.dumps({"error": message}, ensure_ascii=False)


def handle_tool_call(memory: Any, arguments: str | Mapping[str, Any]) -> str:
    """Answer a ``recall_page`` tool call.

    Args:
        memory: The ``OpticalMemory`` the pages belong to.
        arguments: The call's arguments, as the JSON string the API returns or an already parsed mapping.

    Returns:
        A JSON string: ``{"page_id", "reader", "rung", "text"}``, or ``{"error": message}``.
    """
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments or "{}")
        except json.JSONDecodeError as exc:
            return _error(f"arguments are not valid JSON: {exc}")
    else:
        parsed = dict(arguments)
    if not isinstance(parsed, dict):
        return _error('arguments must be a JSON object like {"page_id": 3}')
    unknown = sorted(set(parsed) - {"page_id", "reader"})
    if unknown:
        return _error(f"unknown argument(s): {', '.join(unknown)}")
    page_id = parsed.get("page_id")
    if isinstance(page_id, bool) or not isinstance(page_id, int):
        return _error("page_id must be an integer")
    reader = parsed.get("reader")
    if reader is not None and reader not in READERS:
        return _error(f"reader must be one of {', '.join(READERS)}")
    try:
        reading = recall_page(memory, page_id, reader)
    except OpticalMemoryError as exc:
        return _error(str(exc))
    rung = reading.rung.value if reading.rung is not None else None
    return json.dumps(
        {"page_id": page_id, "reader": reading.reader, "rung": rung, "text": reading.text}, ensure_ascii=False
    )
