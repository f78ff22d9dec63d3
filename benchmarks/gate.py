"""What the fidelity gate costs per add, and what it holds back.

    python benchmarks/gate.py [--turns 80] [--reader rapidocr] [--min-accuracy 0.9]
                              [--out benchmarks/results/gate.json]

The real chats of ``benchmarks/data/chats`` are replayed into two memories with the defaults for
``openai:gpt-4o`` and a fast-decaying age rule (pages go down a rung every two pages), one without a gate (the
baseline) and one with ``gate_reader`` set, the two fed turn by turn in the same process. Reported: the
median and mean add of each and their ratio, the reads the gate made, the pages it holds, and each
memory's pages per rung at the end. The gate's reads are a CPU OCR's seconds each: they land on the adds
that demote a page, so the mean moves and the median barely does.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory import environment, real_chats

from optical_memory.memory import OpticalMemory

POLICY = {"unit": "pages", "large": 2, "base": 4, "small": 6, "forget_after": 40}


def run(turns: int, reader: str, least: float) -> dict[str, Any]:
    base = {"provider": "openai:gpt-4o", "recent_turns": 4, "policy_options": POLICY}
    free = OpticalMemory(base)
    gated = OpticalMemory({**base, "gate_reader": reader, "gate_min_accuracy": least})
    times: dict[str, list[float]] = {"free": [], "gated": []}
    for turn in real_chats(turns):
        for name, memory in (("free", free), ("gated", gated)):
            start = time.perf_counter()
            memory.add(turn)
            times[name].append(time.perf_counter() - start)
    gate = gated._w.gate
    assert gate is not None
    row = {
        name: {
            "median_ms": round(statistics.median(t) * 1e3, 2),
            "mean_ms": round(statistics.fmean(t) * 1e3, 2),
            "pages_per_rung": dict(Counter(p.rung.value for p in m.pages() if p.sealed)),
        }
        for name, t, m in (("free", times["free"], free), ("gated", times["gated"], gated))
    }
    row["median_ratio"] = round(row["gated"]["median_ms"] / row["free"]["median_ms"], 2)
    row["mean_ratio"] = round(row["gated"]["mean_ms"] / row["free"]["mean_ms"], 2)
    row["reads"] = len(gate._verdicts)
    row["refused"] = sum(not v for v in gate._verdicts.values())
    row["held"] = sorted(gated._w.held)
    return {"environment": environment(), "turns": turns, "reader": reader, "min_accuracy": least, **row}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=80)
    parser.add_argument("--reader", default="rapidocr")
    parser.add_argument("--min-accuracy", type=float, default=0.9)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "gate.json")
    args = parser.parse_args()
    result = run(args.turns, args.reader, args.min_accuracy)
    print(json.dumps({k: v for k, v in result.items() if k != "environment"}, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
