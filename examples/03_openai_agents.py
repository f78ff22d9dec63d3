"""An OpenAI Agents SDK agent whose session is optical memory: older turns reach the model as page images.

Run: python examples/03_openai_agents.py   (needs pip install 'optical-memory[openai-agents]')

The agent runs under the SDK's real ``Runner`` with its scripted test model (``agents.testing``) standing
in for a hosted model, so nothing is sent anywhere; it calls a real function tool on every turn. The
session keeps the whole raw history in ``memory.db`` (the SDK's own ``SQLiteSession`` tables) and the
optical memory beside it in the same file; each run hands the model the older turns as page images plus
the recent turns as text, priced in gpt-4o tokens within the budget. With a real model, drop ``model=``.
"""

import asyncio

from agents import Agent, RunConfig, Runner, function_tool
from agents.testing import ScriptedModel, assistant_message, function_call

from optical_memory.integrations.openai_agents import OpticalSession

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


@function_tool
def forecast(city: str) -> str:
    """The weather forecast of a city for the next three days."""
    seed = sum(map(ord, city))
    days = []
    for day, sky in enumerate(("sunny", "cloudy", "light rain")):
        high, low, wind = 14 + (seed + 3 * day) % 15, 6 + (seed + day) % 9, 5 + (seed * (day + 1)) % 25
        days.append(
            f"day {day + 1}: {sky}, high {high}°C, low {low}°C, wind {wind} km/h, UV index {1 + seed % 8}"
        )
    return f"Forecast for {city}:\n" + "\n".join(days)


def scripted_model() -> ScriptedModel:
    """Two responses per question: a call to the tool, then an answer (what a hosted model would say)."""
    steps = []
    for i, city in enumerate(CITIES * 2):
        steps.append([function_call("forecast", {"city": city}, call_id=f"call_{i}")])
        answer = (
            f"{city} looks fine for day {i + 1}: start with the old town and the riverside walk while it is "
            f"sunny, keep the afternoon of day {i + 2} for the covered market, and book a museum for the "
            f"rainy third day. Pack a light jacket; evenings drop to single digits in {city}."
        )
        steps.append([assistant_message(answer, item_id=f"msg_{i}")])
    return ScriptedModel(steps)


async def main() -> None:
    model = scripted_model()
    agent = Agent(name="planner", instructions="You plan trips. Be brief.", model=model, tools=[forecast])
    config = {"provider": "openai:gpt-4o", "recent_turns": 6, "budget": 6000}
    with OpticalSession("user-42", "memory.db", config=config) as session:
        await session.clear_session()  # start afresh on every run of the example
        # the filter keeps every model call of a long run optical too (the SDK reads a session once per run)
        run_config = RunConfig(tracing_disabled=True, call_model_input_filter=session.call_model_input_filter)
        for i, city in enumerate(CITIES * 2):
            question = f"Day {i + 1}: we are in {city}. What will the weather be, and what should we do?"
            result = await Runner.run(agent, question, session=session, run_config=run_config)
        assert session.last_context is not None
        usage = session.last_context.usage
        first = model.calls[-2].input[0]  # the last run's first model call: pages come first
        images = sum(part["type"] == "input_image" for part in first["content"])
        print(f"last answer: {result.final_output}")
        print(
            f"the model got {images} page images of the older turns and the recent turns as text: "
            f"{usage.context_tokens} tokens instead of {usage.history_text_tokens} as plain text "
            f"({usage.ratio:.1f}x, budget {usage.budget})"
        )
        print(f"raw history kept in memory.db: {len(await session.inner.get_items())} items")


if __name__ == "__main__":
    asyncio.run(main())
