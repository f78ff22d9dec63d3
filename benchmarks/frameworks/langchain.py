"""What the LangChain middleware saves and costs per model call, on a real 300-turn agent session.

    python benchmarks/frameworks/langchain.py [--provider openai:gpt-4o] [--out FILE]

Every assistant turn of :func:`~benchmarks.frameworks.common.agent_history` is one model call of an agent:
its request holds the session's messages before it. Each call runs twice in this process, through
LangChain's own fake chat model: bare (``model.invoke(messages)``) and through
``OpticalMemoryMiddleware.wrap_model_call`` with the same model as handler (the middleware lays out what is
new and sends the optical context). Reported: the median time per call of each and what the middleware
adds, and the last call's compression in the provider's tokens (``count_tokens`` of the whole history as
text over that of what the model was sent, and the memory's own ``Usage.ratio``).
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]  # this file shadows `langchain`
sys.path.append(str(_HERE.parents[1]))  # for benchmarks.frameworks.common, after the installed packages

import argparse  # noqa: E402
import itertools  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from langchain.agents.middleware import ModelRequest, ModelResponse  # noqa: E402
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel  # noqa: E402
from langchain_core.messages import BaseMessage, convert_to_messages  # noqa: E402

from benchmarks.frameworks.common import agent_history, median_ms, report  # noqa: E402
from optical_memory.integrations.langchain import OpticalMemoryMiddleware, count_tokens  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--provider", default="openai:gpt-4o")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    history = convert_to_messages([t.to_dict() for t in agent_history(300)])
    model = GenericFakeChatModel(messages=itertools.repeat("ok"))
    middleware = OpticalMemoryMiddleware(config={"provider": args.provider})
    sent: list[BaseMessage] = []

    def handler(request: ModelRequest) -> ModelResponse:
        sent[:] = request.messages
        return ModelResponse(result=[model.invoke(request.messages)])

    bare, wrapped = [], []
    calls = [k for k, m in enumerate(history) if m.type == "ai"]
    for k in calls:
        messages = history[:k]
        start = time.perf_counter()
        model.invoke(messages)
        bare.append(time.perf_counter() - start)
        request: Any = ModelRequest(model=model, messages=messages)
        start = time.perf_counter()
        middleware.wrap_model_call(request, handler)
        wrapped.append(time.perf_counter() - start)

    memory = middleware.threads.get("default")
    usage = memory.context().usage
    whole = count_tokens(history[: calls[-1]], provider=args.provider)
    report(
        "langchain",
        {
            "provider": args.provider,
            "turns": len(history),
            "model_calls": len(calls),
            "pages": len(memory.pages()),
            "history_tokens": whole,
            "sent_tokens": count_tokens(sent, provider=args.provider),
            "compression": round(whole / count_tokens(sent, provider=args.provider), 2),
            "memory_ratio": round(usage.ratio, 2),
            "bare_ms_median": round(median_ms(bare), 3),
            "adapter_ms_median": round(median_ms(wrapped), 3),
            "added_ms_median": round(median_ms(wrapped) - median_ms(bare), 3),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
