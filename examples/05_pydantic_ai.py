"""A Pydantic AI agent with optical memory: older turns reach the model as page images.

Run: python examples/05_pydantic_ai.py   (needs pip install 'optical-memory[pydantic-ai]')

The agent runs under Pydantic AI's real agent loop with its ``FunctionModel`` standing in for a hosted
model, so nothing is sent anywhere; it calls a real tool on every turn. ``OpticalHistory`` is a capability:
before each model request it stores the new messages in ``memory.db`` (one session per conversation) and
sends the model the older turns as page images plus the recent turns as the run's own messages, priced in
gpt-4o tokens within the budget. ``result.all_messages()`` still holds the whole conversation; the script
saves it, and a second process picks the conversation up from it and ``memory.db``. With a real model,
pass ``"openai:gpt-4o"`` instead of the ``FunctionModel``.
"""

import subprocess
import sys
from pathlib import Path

from pydantic_ai import Agent
from pydantic_ai.messages import (
    BinaryContent,
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

from optical_memory.integrations.pydantic_ai import OpticalHistory

CITIES = [
    "Lisbon",
    "Porto",
    "Seville",
    "Granada",
    "Valencia",
    "Barcelona",
    "Lyon",
    "Geneva",
    "Turin",
    "Milan",
]
CONFIG = {"provider": "openai:gpt-4o", "recent_turns": 6, "budget": 6000}
HISTORY = Path("history.json")
seen: list[list[ModelMessage]] = []


def forecast(city: str) -> str:
    """The weather forecast of a city for the next three days."""
    days = [("sunny", 24, 13, 10), ("cloudy", 19, 12, 15), ("light rain", 16, 11, 20)]
    lines = [
        f"day {d + 1}: {sky}, high {hi}°C, low {lo}°C, wind {w} km/h from the west"
        for d, (sky, hi, lo, w) in enumerate(days)
    ]
    return f"{city}: " + "; ".join(lines) + ". UV index high on day 1; humidity 60-80%; sunset around 20:40."


def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """What a hosted model would do: call the tool for the city asked about, then answer from its result."""
    seen.append(messages)
    parts = messages[-1].parts
    results = [p for p in parts if isinstance(p, ToolReturnPart)]
    if results:
        city = str(results[0].content).split(":")[0]
        answer = (
            f"{city} looks fine: day 1 is sunny and warm, so walk the old town and eat outside; day 2 is cloudy, "
            "good for the markets and a long lunch; day 3 brings light rain, so plan museums and a late dinner."
        )
        return ModelResponse(parts=[TextPart(answer)])
    question = " ".join(str(p.content) for p in parts if isinstance(p, UserPromptPart))
    city = next((c for c in CITIES if c in question), "Lisbon")
    return ModelResponse(parts=[ToolCallPart("forecast", {"city": city})])


def page_images(messages: list[ModelMessage]) -> int:
    """How many page images the first message of a request holds."""
    prompts = [
        p for p in messages[0].parts if isinstance(p, UserPromptPart) and not isinstance(p.content, str)
    ]
    return sum(isinstance(x, BinaryContent) for p in prompts for x in p.content)


def main() -> None:
    Path("memory.db").unlink(missing_ok=True)  # start afresh on every run of the example
    memory = OpticalHistory("memory.db", config=CONFIG)
    agent = Agent(
        FunctionModel(model),
        instructions="You plan trips. Be brief.",
        tools=[forecast],
        capabilities=[memory],
    )
    history: list[ModelMessage] = []
    for i, city in enumerate(CITIES * 2):
        question = f"Day {i + 1}: we are in {city}. What will the weather be, and what should we do?"
        result = agent.run_sync(question, message_history=history)
        history = result.all_messages()
    memory.close()
    assert memory.last_context is not None
    usage = memory.last_context.usage
    print(f"last answer: {result.output}")
    print(
        f"the model got {page_images(seen[-1])} page images of the older turns and the recent turns as text: "
        f"{usage.context_tokens} tokens instead of {usage.history_text_tokens} as plain text "
        f"({usage.ratio:.1f}x, budget {usage.budget})"
    )
    print(f"result.all_messages() keeps all {len(history)} messages")
    HISTORY.write_bytes(ModelMessagesTypeAdapter.dump_json(history))
    subprocess.run([sys.executable, __file__, "continue"], check=True)


def continue_conversation() -> None:
    """A new process: the saved history carries its conversation id, which names the memory session."""
    history = ModelMessagesTypeAdapter.validate_json(HISTORY.read_bytes())
    with_memory = OpticalHistory("memory.db")
    agent = Agent(
        FunctionModel(model),
        instructions="You plan trips. Be brief.",
        tools=[forecast],
        capabilities=[with_memory],
    )
    result = agent.run_sync("Day 21: we are back in Lisbon. And now?", message_history=history)
    with_memory.close()
    print(f"continued in a new process: {page_images(seen[-1])} page images, answer: {result.output}")


if __name__ == "__main__":
    continue_conversation() if sys.argv[1:] == ["continue"] else main()
