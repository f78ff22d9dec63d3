"""A LangChain agent whose model sees the older conversation as page images.

    pip install -e ".[langchain]"
    python examples/07_langchain.py

``create_agent`` runs a real tool-calling loop with LangChain's own fake chat model (no network, no key):
each turn the agent lists a directory with a tool and answers. ``OpticalMemoryMiddleware`` records the
thread and hands the model the optical context, priced for gpt-4o; the graph's checkpointer keeps the whole
history as it was. Both live in RAM here; give the middleware a file (``OpticalMemoryMiddleware("memory.db",
...)``) next to a persistent checkpointer (``SqliteSaver``, ``PostgresSaver``) and a restarted process goes
on with the thread. Swap in ``ChatOpenAI(model="gpt-4o")`` to run it for real.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import Field

from optical_memory.integrations.langchain import OpticalMemoryMiddleware, count_tokens


@tool
def list_dir(path: str) -> str:
    """List the files of a directory with their sizes."""
    return "\n".join(f"-rw-r--r-- 1 dev dev {(i + 1) * len(path) * 997} module_{i}.py" for i in range(6))


class FakeModel(GenericFakeChatModel):
    """LangChain's fake chat model, able to take tools, remembering what it was last sent."""

    last: list[Any] = Field(default_factory=list)

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> FakeModel:
        return self

    def _generate(self, messages: list[Any], *args: Any, **kwargs: Any) -> Any:
        self.last = list(messages)
        return super()._generate(messages, *args, **kwargs)


def replies(steps: int) -> Iterator[AIMessage]:
    for i in range(steps):
        yield AIMessage(
            "", tool_calls=[{"id": f"call_{i}", "name": "list_dir", "args": {"path": f"src/pkg{i}"}}]
        )
        yield AIMessage(
            f"src/pkg{i} holds six modules; module_5.py is the largest. " + "Details follow. " * 30
        )


def main() -> None:
    steps = 20
    model = FakeModel(messages=replies(steps))
    memory = OpticalMemoryMiddleware(config={"provider": "openai:gpt-4o", "recent_turns": 6, "budget": 8_000})
    agent = create_agent(model, [list_dir], middleware=[memory], checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "demo"}}
    for i in range(steps):
        agent.invoke({"messages": [HumanMessage(f"What is in src/pkg{i}?")]}, config)

    kept = agent.get_state(config).values["messages"]
    sent = model.last
    full = count_tokens(kept, provider="openai:gpt-4o")
    optical = count_tokens(sent, provider="openai:gpt-4o")
    print(f"the graph keeps {len(kept)} messages ({full:,} gpt-4o tokens as text)")
    print(f"the model was sent {len(sent)} messages costing {optical:,} tokens ({full / optical:.1f}x less)")
    print(f"older turns laid out on {len(memory.threads.get('demo').pages())} pages")
    memory.close()


if __name__ == "__main__":
    main()
