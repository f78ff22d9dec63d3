"""Quickstart: add turns, see what the context costs, and save a picture of the memory.

Run: python examples/01_quickstart.py [SHEET.png]

Everything runs on the CPU in a few seconds: no GPU, model weights or network. Older turns become page
images; the newest stay text; pages fade down the ladder (large -> base -> small -> tiny) as they age.
"""

import sys

from optical_memory import OpticalMemory, contact_sheet

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


def trip(provider: str) -> OpticalMemory:
    """Forty days of trip planning in a memory made for ``provider`` (pages drawn with its profile)."""
    memory = OpticalMemory({"recent_turns": 6, "provider": provider})
    memory.add("You are a travel planner. Keep answers short and concrete.", role="system")
    for day in range(1, 41):
        city = CITIES[(day - 1) % len(CITIES)]
        memory.add(
            f"Day {day}: we arrive in {city} by train around noon. What should we do there?", role="user"
        )
        memory.add(
            f"For day {day} in {city}: drop the bags at the hotel near the station, have lunch in the old "
            f"town, then walk the main sights before sunset. Book dinner ahead; on weekends {city} fills up. "
            "Budget about 90 EUR per person for the day without the hotel.\n\n"
            "```text\n"
            f"13:00  lunch        old town, {city}\n"
            "15:00  sights       cathedral, market hall, river walk\n"
            "20:30  dinner       booked table\n"
            "```",
            role="assistant",
        )
    memory.add("Remind me: where do we sleep on day 3?", role="user")
    return memory


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else "quickstart-sheet.png"
    for provider in ("deepseek-ocr", "openai:gpt-4o", "anthropic:claude-sonnet-4-5"):
        usage = trip(provider).context(budget=None).usage
        print(
            f"{provider:>27}: {usage.history_text_tokens:,} tokens of history as text -> context of "
            f"{usage.context_tokens:,} tokens ({usage.ratio:.2f}x), pages per rung {dict(usage.pages_per_rung)}"
        )
    memory = trip("openai:gpt-4o")
    usage = memory.context(budget=2_500).usage
    print(
        f"openai:gpt-4o with a 2,500-token budget: {usage.context_tokens:,} tokens, {dict(usage.pages_per_rung)}"
    )

    for page in memory.pages():
        print(f"page {page.page_id}: turns {page.turns[0]}-{page.turns[1]}, {page.rung.value}")
    contact_sheet(memory).save(out)
    print(f"saved the contact sheet to {out}")


if __name__ == "__main__":
    main()
