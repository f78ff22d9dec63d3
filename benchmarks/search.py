"""Search at scale: latency, index size, and needles found, as the history grows to 10,000 turns.

    python benchmarks/search.py [--turns 10000] [--out benchmarks/results/search.json]

The real chats of ``benchmarks/data/chats`` are replayed in a cycle with 20 needles planted (see
``optical_memory.recall.needles``) into a file store with the default config (``openai:gpt-4o``, text not
kept). At 1,000 and at the last mark, in one process:

* ``search`` medians over the 20 needle questions: ``warm`` (the index is up to date), ``after_add`` (the
  conversation's next turn added before each search, so the index takes in what changed), and ``cold`` (a
  memory opened afresh on the file: its first search reads every page's terms back and builds the index),
  against the median
  ``context()`` of the same memory as the baseline in the same process;
* how many needles already paged are found in the top 3;
* the index's size: the stored terms (bytes and rows in ``page_terms``) and the index in memory (distinct
  terms, postings);
* ``add`` medians over the last 100 adds before the mark, and what taking a sealed page's terms costs
  (``terms()`` on page-sized pieces of the same turns' text; a page is sealed every few adds).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory import environment, real_chats

from optical_memory.memory import OpticalMemory
from optical_memory.recall.needles import Needle, plant
from optical_memory.recall.search import terms
from optical_memory.types import Turn

MARKS = (1_000, 10_000)
SEARCHES = range(20)
"""One needle, and one search after an add, each."""


def real_chats_after(planted: list[Turn], used: int, n: int) -> list[Turn]:
    """The planted turns (made from the real chats' first ``used``), then the turns that follow, up to ``n``."""
    return [*planted, *real_chats(used + n)[used:]][:n]


PAGE_CHARS = 4_000
"""About what a page holds (some 950 tokens of English): the text whose terms a seal takes is timed in such
pieces."""


def _median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1e3, 3)


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _found(memory: OpticalMemory, needles: list[Needle], upto: int) -> tuple[int, int]:
    page_of = {s.turn: p.page_id for p in memory.pages() for s in p.spans}
    paged = [n for n in needles if n.turn < upto and n.turn in page_of]
    hits = sum(page_of[n.turn] in {h.page_id for h in memory.search(n.question, 3)} for n in paged)
    return hits, len(paged)


def measure_mark(
    path: Path,
    memory: OpticalMemory,
    needles: list[Needle],
    upto: int,
    adds: list[float],
    pages_of_text: list[str],
    more: list[Turn],
) -> dict[str, Any]:
    questions = [n.question for n in needles]
    memory.search(questions[0], 5)  # bring the index up to date
    warm = [_timed(lambda q=q: memory.search(q, 5)) for q in questions]
    context = [_timed(lambda: memory.context()) for _ in range(5)]
    found, paged = _found(memory, needles, upto)
    after_add = []
    for turn, q in zip(more, questions, strict=True):  # the conversation goes on, a search after each turn
        memory.add(turn)
        after_add.append(_timed(lambda q=q: memory.search(q, 5)))
    fresh = OpticalMemory.open(path)
    cold = _timed(lambda: fresh.search(questions[0], 5))
    fresh.close()
    with sqlite3.connect(path) as conn:
        stored_bytes, rows = conn.execute(
            "SELECT COALESCE(SUM(length(terms)), 0), COUNT(*) FROM page_terms"
        ).fetchone()
    index = memory._index
    postings = sum(len(p) for p in index._postings.values())
    tokenize = [_timed(lambda text=text: terms(text)) for text in pages_of_text]
    return {
        "turns": len(memory),
        "pages": len(memory._w.pages),
        "search_warm_ms": _median_ms(warm),
        "search_after_add_ms": _median_ms(after_add),
        "search_cold_ms": round(cold * 1e3, 1),
        "context_ms": _median_ms(context),
        "warm_over_context": round(statistics.median(warm) / statistics.median(context), 3),
        "needles_found_top3": found,
        "needles_paged": paged,
        "stored_terms_bytes": int(stored_bytes),
        "stored_terms_rows": int(rows),
        "index_terms": len(index._postings),
        "index_postings": postings,
        "add_median_ms": _median_ms(adds[-100:]),
        "terms_per_page_ms": _median_ms(tokenize),
    }


def run(n: int) -> dict[str, Any]:
    turns, needles = plant(real_chats(n), len(SEARCHES), seed=1)
    turns = real_chats_after(turns, n, n + len(SEARCHES) * len(MARKS))
    needles = [x for x in needles if x.turn < n]
    marks = [m for m in MARKS if m < n] + [n]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "search.db"
        memory = OpticalMemory.open(path, config={"provider": "openai:gpt-4o"})
        adds: list[float] = []
        done = 0
        for mark in marks:
            for turn in turns[done:mark]:
                adds.append(_timed(lambda turn=turn: memory.add(turn)))
            text = "\n\n".join(t.content or "" for t in turns[max(0, mark - 200) : mark])
            pages_of_text = [text[i : i + PAGE_CHARS] for i in range(0, len(text) - PAGE_CHARS, PAGE_CHARS)]
            more = turns[mark : mark + len(SEARCHES)]
            rows.append(measure_mark(path, memory, needles, mark, adds, pages_of_text, more))
            done = mark + len(more)
            print(json.dumps(rows[-1]), file=sys.stderr)
        memory.close()
    return {"environment": environment(), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=10_000)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "results" / "search.json"
    )
    args = parser.parse_args()
    result = run(args.turns)
    print(f"{'turns':>6} {'pages':>6} {'warm ms':>8} {'+add ms':>8} {'cold ms':>8} {'ctx ms':>7} {'found':>6} "
          f"{'terms KB':>9} {'postings':>9} {'add ms':>7} {'terms ms':>9}")  # fmt: skip
    for r in result["rows"]:
        print(
            f"{r['turns']:>6} {r['pages']:>6} {r['search_warm_ms']:>8} {r['search_after_add_ms']:>8} "
            f"{r['search_cold_ms']:>8} {r['context_ms']:>7} {r['needles_found_top3']:>3}/{r['needles_paged']:<2} "
            f"{r['stored_terms_bytes'] / 1024:>9.0f} {r['index_postings']:>9} {r['add_median_ms']:>7} "
            f"{r['terms_per_page_ms']:>9}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
