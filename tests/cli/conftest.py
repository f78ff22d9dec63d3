"""Shared inputs for the CLI tests: a short conversation that fills a few pages quickly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def conversation(turns: int = 24) -> list[dict[str, str]]:
    """A small English/Chinese conversation with code, long enough for several pages."""
    messages = [{"role": "system", "content": "You are a careful assistant."}]
    for i in range(turns):
        if i % 2 == 0:
            messages.append(
                {
                    "role": "user",
                    "content": f"Question {i}: why does the report for store {i} double count? 为什么？",
                }
            )
        else:
            messages.append(
                {
                    "role": "assistant",
                    "content": (
                        f"Answer {i}: the window was closed on both ends, so a sale at midnight landed in two "
                        "days. Use a half-open interval and store timestamps in UTC. 时间一律用 UTC 存储。\n\n"
                        "```sql\nSELECT SUM(qty * unit_cents) FROM sales\n"
                        "WHERE sold_at_utc >= :start AND sold_at_utc < :end;\n```\n\n"
                        + "The daily total then matches the till. "
                        * 12
                    ),
                }
            )
    return messages


@pytest.fixture
def conversation_file(tmp_path: Path) -> Path:
    path = tmp_path / "conversation.json"
    path.write_text(json.dumps(conversation(), ensure_ascii=False), encoding="utf-8")
    return path
