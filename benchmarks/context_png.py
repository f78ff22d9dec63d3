"""context() in a PNG-sending format: stored PNG bytes reused vs every page re-encoded (the old way).

    python benchmarks/context_png.py [--turns 1000] [--out benchmarks/results/context_png.json]

Builds a memory with the default config from synthetic turns, then times, in one process, the median of 3:
``context(provider="openai:gpt-4o")`` (pages at their stored rung send the stored PNG bytes) against the
baseline of the same items with ``png`` cleared, formatted with ``build_messages`` (each page PNG-encoded
again), and the ``hf`` format (no PNG at all) for reference. Prints a table and writes JSON with the machine,
versions and commit.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import random
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from optical_memory.formats import PageItem, build_messages
from optical_memory.memory import OpticalMemory


def median_s(fn: Any, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/context_png.json"))
    args = parser.parse_args()

    rng = random.Random(0)
    words = [
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
    ]
    m = OpticalMemory()
    m.add("You are a careful assistant.", role="system")
    for i in range(args.turns):
        m.add(
            " ".join(rng.choice(words) for _ in range(rng.randint(60, 260))),
            role="user" if i % 2 == 0 else "assistant",
        )
    pages = len(m.pages())
    ctx = m.context(provider="openai:gpt-4o")
    old_items = [dataclasses.replace(i, png=None) if isinstance(i, PageItem) else i for i in ctx.items]
    new = median_s(lambda: m.context(provider="openai:gpt-4o"))
    old_format = median_s(lambda: build_messages(old_items, format="openai-chat", detail="high"))
    hf = median_s(lambda: m.context())
    # the old context() = hf-like item building + re-encoding every page
    old = hf + old_format
    result = {
        "turns": args.turns,
        "pages": pages,
        "context_openai_s": new,
        "baseline_reencode_s": old,
        "speedup": old / new,
        "context_hf_s": hf,
        "machine": platform.platform(),
        "python": platform.python_version(),
        "commit": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        or None,
    }
    print(f"{'pages':>6} {'openai (new) s':>15} {'re-encode baseline s':>21} {'speedup':>8} {'hf s':>7}")
    print(f"{pages:>6} {new:>15.3f} {old:>21.3f} {old / new:>8.2f} {hf:>7.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
