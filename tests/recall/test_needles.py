"""The needle benchmark on a real chat of ``benchmarks/data/chats``: planting, what each needle's report
says against an independent look at the context, truncation at equal tokens, and the command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from optical_memory.conversation import load_conversation
from optical_memory.formats import PageItem, TextItem
from optical_memory.memory import OpticalMemory
from optical_memory.recall.needle_plot import draw_needles
from optical_memory.recall.needles import KINDS, measure, plant
from tests.memory.test_exact import CHAT
from tests.recall.fakes import ConstantReader


@pytest.fixture(scope="module")
def planted() -> tuple[list, list]:
    return plant(load_conversation(CHAT)[:160], 10, seed=3)


def test_plant_spreads_distinct_needles_with_their_questions(planted: tuple[list, list]) -> None:
    turns, needles = planted
    assert len(turns) == 170 and len(needles) == 10
    assert {n.kind for n in needles} == set(KINDS)
    assert len({n.value for n in needles}) == 10 and len({n.question for n in needles}) == 10
    for n in needles:
        assert n.value in turns[n.turn].content and turns[n.turn].role == "user"
    assert plant(load_conversation(CHAT)[:160], 10, seed=3) == planted  # the seed decides
    with pytest.raises(ValueError, match="between 1 and 20"):
        plant(turns, 21)
    with pytest.raises(ValueError, match="too short"):
        plant(turns[:5], 3)


def test_each_needle_report_agrees_with_the_context(planted: tuple[list, list]) -> None:
    turns, needles = planted
    run = measure(turns, needles, "deepseek-ocr", reader=ConstantReader(""), budget=2000)
    memory = OpticalMemory({"provider": "deepseek-ocr"})
    memory.extend(turns)
    context = memory.context(budget=2000)
    shown = " ".join(i.exact for i in context.items if isinstance(i, PageItem))
    texts = " ".join(i.content for i in context.items if isinstance(i, TextItem))
    assert run.context_tokens == context.usage.context_tokens
    wheres = {r.where for r in run.results}
    assert "left_out" in wheres and "page" in wheres  # a tight budget leaves pages out
    for r in run.results:
        assert r.in_context == (r.needle.value in shown or r.needle.value in texts)
        assert r.age == len(turns) - 1 - r.needle.turn
        if r.where == "page":
            assert r.in_context  # a needle on a page the context shows is there exactly
            assert r.read is False  # read by the reader, which reads nothing
        else:
            assert r.read is None
    assert run.summary()["exact_on_shown_pages"] == run.summary()["on_shown_pages"] > 0
    assert run.summary()["found_top3"] >= 0.9 * run.summary()["paged"]
    assert run.summary()["in_context"] > run.summary()["truncation"]


def test_truncation_keeps_the_newest_turns_that_fit_the_same_tokens(planted: tuple[list, list]) -> None:
    turns, needles = planted
    run = measure(turns, needles, "openai:gpt-4o")
    assert 0 < run.truncation_turns < len(turns)
    for r in run.results:
        assert r.truncation == (r.needle.turn >= len(turns) - run.truncation_turns)
    assert run.budget == 64_000 and run.budget_turns >= run.truncation_turns  # the whole budget keeps more
    at_budget = sum(n.turn >= len(turns) - run.budget_turns for n in needles)
    assert run.summary()["truncation_at_budget"] == at_budget >= run.summary()["truncation"]
    image = draw_needles([run])
    assert isinstance(image, Image.Image) and image.size[1] == 300


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "optical_memory", "bench", "needles", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def test_the_command_writes_json_and_a_plot(tmp_path: Path) -> None:
    chat = tmp_path / "chat.json"
    chat.write_text(json.dumps([t.to_dict() for t in load_conversation(CHAT)[:80]]), encoding="utf-8")
    out, plot = str(tmp_path / "n.json"), str(tmp_path / "n.png")
    done = _bench(
        str(chat), "--needles", "6", "--provider", "openai:gpt-4o", "--no-read", "--out", out, "--plot", plot
    )
    assert done.returncode == 0, done.stderr
    assert "openai:gpt-4o: 86 turns" in done.stdout and "search top 3" in done.stdout
    report = json.loads((tmp_path / "n.json").read_text(encoding="utf-8"))
    (run,) = report["runs"]
    assert run["summary"]["needles"] == 6 and len(run["results"]) == 6 and run["reader"] is None
    with Image.open(tmp_path / "n.png") as image:
        assert image.size == (960, 300)
    bad = _bench(str(chat), "--needles", "30", "--no-read")
    assert bad.returncode == 2 and "between 1 and 20" in bad.stderr
