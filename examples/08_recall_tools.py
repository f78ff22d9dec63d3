"""An agent gets an exact order id back from 200 turns earlier through the memory's tools.

    python examples/08_recall_tools.py                                             # offline
    OPENAI_BASE_URL=https://api.openai.com/v1 OPENAI_API_KEY=... python examples/08_recall_tools.py

The history is a real public chat (a Claude Code session from ``benchmarks/data/chats``) with one user turn
planted near its start that gives an order id; 200 turns follow it. The memory keeps the defaults for
gpt-4o (older turns as page images, their text dropped), and the application hands the model three tools
built by ``memory.tools(reader=...)``: it binds the reader, the model only names queries and pages.

Offline, a scripted model plays the model's part the way a tool-using model does: it searches the memory
with the user's question, reads back the best page, and answers with the id it finds there. With
``OPENAI_BASE_URL`` set, the same loop runs with a real model (``OPENAI_MODEL``, default gpt-4o).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from optical_memory import OpticalMemory, load_conversation

CHAT = (
    Path(__file__).resolve().parents[1]
    / "benchmarks"
    / "data"
    / "chats"
    / "en_agent_claude_code_spotter.json"
)
ORDER = "ORD-58213-QX"
QUESTION = "What was the order id I gave you for the replacement order? Quote it exactly."


def history() -> list[Any]:
    """The chat's first turns, the planted order id, then 200 more turns."""
    turns = load_conversation(CHAT)
    note = {
        "role": "user",
        "content": f"For the replacement order, the order id is {ORDER}. Keep it for later.",
    }
    return [*turns[:6], note, *turns[6:206]]


class ScriptedModel:
    """Plays a tool-using model offline: search with the question, read the best page, quote the id."""

    def create(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
        asked = max(i for i, m in enumerate(messages) if m["role"] == "user" and m["content"] == QUESTION)
        results = [json.loads(m["content"]) for m in messages[asked:] if m["role"] == "tool"]
        if not results:
            return _call("search_memory", {"query": QUESTION})
        if len(results) == 1:
            return _call("recall_page", {"page_id": results[0]["hits"][0]["page_id"]})
        exact = [s for part in results[-1]["parts"] if part["source"] == "exact" for s in part["spans"]]
        found = [s for s in exact if re.fullmatch(r"ORD-[\w-]+", s)]
        text = f"The order id was {found[0]}." if found else "I could not find it."
        return {"role": "assistant", "content": text}


def _call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    call = {
        "id": f"call_{name}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }
    return {"role": "assistant", "content": None, "tool_calls": [call]}


class RealModel:
    """A model behind an OpenAI-compatible endpoint."""

    def __init__(self) -> None:
        from openai import OpenAI

        self.client = OpenAI()
        self.model = os.environ.get("OPENAI_MODEL", "gpt-4o")

    def create(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
        reply = self.client.chat.completions.create(model=self.model, messages=messages, tools=tools)
        return reply.choices[0].message.model_dump(exclude_none=True)


def main() -> None:
    memory = OpticalMemory({"provider": "openai:gpt-4o"})
    memory.extend(history())
    tools = memory.tools(reader="rapidocr")
    model = RealModel() if os.environ.get("OPENAI_BASE_URL") else ScriptedModel()
    memory.add(QUESTION, role="user")
    context = memory.context(format="openai-chat")
    print(f"{len(memory)} turns, {len(memory.pages())} pages; the order id was given 200 turns ago")
    print(
        f"context: {context.usage.context_tokens:,} tokens for {context.usage.history_text_tokens:,} of history"
    )
    messages = list(context.messages)
    for _ in range(6):
        reply = model.create(messages, tools.openai)
        messages.append(reply)
        if not reply.get("tool_calls"):
            print(f"user: {QUESTION}\nassistant: {reply['content']}")
            break
        for call in reply["tool_calls"]:
            name, arguments = call["function"]["name"], call["function"]["arguments"]
            result = tools.handle(name, arguments)
            print(f"tool {name}({arguments}) -> {result.content[:160]}")
            messages.extend(result.openai_messages(call["id"]))
    memory.close()


if __name__ == "__main__":
    main()
