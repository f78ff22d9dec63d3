"""Deterministic synthetic turns for the memory tests (varied lengths, English prose with some code)."""

from __future__ import annotations

import random

WORDS = [
    "the",
    "memory",
    "keeps",
    "recent",
    "turns",
    "as",
    "text",
    "and",
    "older",
    "turns",
    "as",
    "page",
    "images",
    "that",
    "fade",
    "down",
    "a",
    "ladder",
    "while",
    "the",
    "agent",
    "asks",
    "about",
    "python",
    "code",
    "tests",
    "budgets",
    "providers",
    "and",
    "tokens",
    "in",
    "a",
    "long",
    "conversation",
]


def turn_text(i: int, words: int | None = None) -> str:
    rng = random.Random(i)
    n = words if words is not None else rng.randint(60, 260)
    body = " ".join(rng.choice(WORDS) for _ in range(n))
    if i % 5 == 3:
        body += f"\n\n```python\ndef f_{i}(x):\n    return x * {i}\n```"
    return f"Turn {i}: {body}"


def turns(n: int, *, start: int = 0, words: int | None = None) -> list[dict[str, str]]:
    return [
        {"role": "user" if i % 2 == 0 else "assistant", "content": turn_text(i, words)}
        for i in range(start, start + n)
    ]
