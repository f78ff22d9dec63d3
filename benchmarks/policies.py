"""Benchmark: decay-policy ``assign`` time against the page count (it runs on every ``add``).

Measures the median time of ``AgeLadder.assign`` by age alone and under a budget that forces demotion
and forgetting (gpt-4o costs; ``context(budget=...)`` takes this path), at 100 to 100,000 pages, as a ratio to a baseline in the same
process: one plain pass summing each page's Tiny cost. A flat ratio across sizes means linear time.

Run: ``python benchmarks/policies.py [--out benchmarks/results/policies.json]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from optical_memory.ladder import Rung
from optical_memory.policies import AgeLadder, PageState, ladder_costs
from optical_memory.pricing.providers import get_provider

SIZES = (100, 1_000, 10_000, 100_000)


def _median_seconds(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/policies.json"))
    args = parser.parse_args()
    costs = ladder_costs(get_provider("openai:gpt-4o").image_tokens)
    age = AgeLadder()
    rows = []
    for n in SIZES:
        pages = [
            PageState(page_id=i, rung=Rung.LARGE, age_pages=n - 1 - i, pinned=Rung.BASE if i % 97 == 0 else None,
                      costs=costs)
            for i in range(n)
        ]  # fmt: skip
        budget = 255 * n // 2  # half the pages at Tiny: forces demotion, then forgetting
        repeat = max(5, 200_000 // n)
        base = _median_seconds(lambda p=pages: sum(page.cost(Rung.TINY) for page in p), repeat)
        t_age = _median_seconds(lambda p=pages: age.assign(p), repeat)
        t_budget = _median_seconds(lambda p=pages, b=budget: age.assign(p, budget=b, fixed_cost=1000), repeat)
        rows.append({
            "pages": n, "baseline_ms": base * 1e3, "age_ms": t_age * 1e3, "budget_ms": t_budget * 1e3,
            "age_ratio": t_age / base, "budget_ratio": t_budget / base,
        })  # fmt: skip
    print(
        f"{'pages':>8} {'baseline ms':>12} {'age ms':>9} {'budget ms':>10} {'age/base':>9} {'budget/base':>12}"
    )
    for r in rows:
        print(
            f"{r['pages']:>8} {r['baseline_ms']:>12.3f} {r['age_ms']:>9.3f} {r['budget_ms']:>10.3f} "
            f"{r['age_ratio']:>9.2f} {r['budget_ratio']:>12.2f}"
        )
    report = {
        "benchmark": "policies.assign",
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "python": sys.version,
        },
        "versions": {"python": platform.python_version()},
        "commit": _commit(),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
