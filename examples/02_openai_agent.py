"""An agent loop against any OpenAI-compatible endpoint, with optical memory holding its history.

Run: OPENAI_BASE_URL=http://localhost:8000/v1 OPENAI_MODEL=gpt-4o python examples/02_openai_agent.py

The memory starts from the bundled sample conversation (a long English/Chinese coding session), then
each question below is added as a user turn, the context is built for the model within a token budget
(recent turns as text, older turns as page images) and sent with the ``openai`` client; the reply is
added back as an assistant turn. ``OPENAI_API_KEY`` is used when set (local servers such as vLLM accept
any key). Without ``OPENAI_BASE_URL`` nothing is sent: the script prints the request it would send,
with the base64 page images shortened, and stops.
"""

import json
import os
from importlib import resources
from typing import Any

from optical_memory import OpticalMemory
from optical_memory.conversation import turns_from_json

MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o")
BUDGET = int(os.environ.get("OPTICAL_MEMORY_BUDGET", "6000"))
QUESTIONS = [
    "Which two bugs caused the double counting we found at the start?",
    "上海门店新终端导出的 CSV 是什么编码？我们是怎么处理的？",
]


def sample_history() -> list[Any]:
    """The bundled sample conversation, as turns."""
    text = resources.files("optical_memory.data").joinpath("sample_conversation.json").read_text("utf-8")
    return turns_from_json(json.loads(text), "sample_conversation.json")


def shorten(value: Any) -> Any:
    """A copy of a request with long base64 strings cut, for printing."""
    if isinstance(value, dict):
        return {k: shorten(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shorten(v) for v in value]
    if isinstance(value, str) and value.startswith("data:image/") and len(value) > 80:
        return f"{value[:40]}...({len(value):,} chars)"
    return value


def main() -> int:
    base_url = os.environ.get("OPENAI_BASE_URL")
    memory = OpticalMemory({"provider": f"openai:{MODEL}"})
    for turn in sample_history():
        memory.add(turn)
    client = None
    if base_url:
        from openai import OpenAI  # pip install openai

        client = OpenAI(base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY", "not-needed"))
    for question in QUESTIONS:
        memory.add(question, role="user")
        context = memory.context(provider=f"openai:{MODEL}", budget=BUDGET, format="openai-chat")
        usage = context.usage
        print(
            f"context: {usage.context_tokens:,} tokens for {usage.history_text_tokens:,} tokens of history "
            f"({usage.ratio:.2f}x); pages per rung {dict(usage.pages_per_rung)}"
        )
        request = {"model": MODEL, "messages": context.messages}
        if client is None:
            print("OPENAI_BASE_URL is not set; the request that would be sent to /chat/completions:")
            print(json.dumps(shorten(request), ensure_ascii=False, indent=1))
            return 0
        response = client.chat.completions.create(**request)
        if response.usage is not None:  # learn how the bill compares with the image formula
            memory.observe_usage(context, response.usage.prompt_tokens)
        answer = response.choices[0].message.content or ""
        print(f"user: {question}\nassistant: {answer}\n")
        memory.add(answer, role="assistant")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
