"""What the async calls cost an event loop: how late the loop runs while many sessions add at once.

    python benchmarks/async_loop.py [--store postgresql://...] [--sessions 8] [--turns 40]
                                    [--out benchmarks/results/async_loop.json]

``--sessions`` memories (one session each, on one SQLite file in a temporary folder, or with ``--store`` on a
fresh database created on that PostgreSQL server for the run and dropped after) each take the first
``--turns`` turns of the real chats of ``benchmarks/data/chats``, three ways, in one process, after a
warm-up:

* ``aadd``: each session's turns awaited one by one with :meth:`~optical_memory.memory.OpticalMemory.aadd`,
  the sessions concurrently;
* ``add on the loop``: the same with the blocking :meth:`~optical_memory.memory.OpticalMemory.add` called
  from the coroutines (what an application that forgot the async calls gets: the baseline);
* ``sequential``: every add one after another on one thread, no loop (the throughput baseline).

A ticker coroutine wakes every 2 ms and records how late it woke: the loop's lateness, median, p99 and
maximum, is what every other request an async server handles waits on. Throughput is turns per second.
Results print as a table and go to a JSON file with the machine, versions and git commit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory import PostgresTarget, environment, pct, real_chats

from optical_memory.memory import OpticalMemory
from optical_memory.types import Turn

TICK_S = 0.002
CONFIG = {"recent_turns": 4}


async def _ticking(work: Awaitable[None]) -> list[float]:
    """Run ``work`` while a ticker records how late, in ms, each of its 2 ms sleeps woke."""
    late: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(TICK_S)
            late.append((time.perf_counter() - start - TICK_S) * 1e3)

    beat = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    try:
        await work
    finally:
        done.set()
        await beat
    return late


def _concurrent(memories: list[OpticalMemory], chats: list[list[Turn]], blocking: bool) -> dict[str, Any]:
    async def session(memory: OpticalMemory, turns: list[Turn]) -> None:
        for turn in turns:
            if blocking:
                memory.add(turn)
                await asyncio.sleep(0)  # let the other coroutines take their turn
            else:
                await memory.aadd(turn)

    async def all_sessions() -> None:
        await asyncio.gather(*(session(m, t) for m, t in zip(memories, chats, strict=True)))

    start = time.perf_counter()
    late = asyncio.run(_ticking(all_sessions()))
    seconds = time.perf_counter() - start
    return _row(seconds, sum(map(len, chats)), late)


def _sequential(memories: list[OpticalMemory], chats: list[list[Turn]]) -> dict[str, Any]:
    start = time.perf_counter()
    for memory, turns in zip(memories, chats, strict=True):
        for turn in turns:
            memory.add(turn)
    return _row(time.perf_counter() - start, sum(map(len, chats)), [])


def _row(seconds: float, turns: int, late: list[float]) -> dict[str, Any]:
    row: dict[str, Any] = {"seconds": seconds, "turns_per_s": turns / seconds}
    if late:
        row |= {
            "late_median_ms": statistics.median(late),
            "late_p99_ms": pct(late, 0.99),
            "late_max_ms": max(late),
            "ticks": len(late),
        }
    return row


def run(location: str, sessions: int, turns: int) -> dict[str, Any]:
    chats = [real_chats(turns)] * sessions  # each from a chat's start, so every tool result has its call
    warm = OpticalMemory(CONFIG)  # fonts and caches loaded before anything is timed
    for turn in chats[0]:
        warm.add(turn)
    out = {}
    for way in ("sequential", "add on the loop", "aadd"):
        memories = [
            OpticalMemory.open(location, session=f"{way}-{i}", config=CONFIG) for i in range(sessions)
        ]
        if way == "sequential":
            out[way] = _sequential(memories, chats)
        else:
            out[way] = _concurrent(memories, chats, blocking=way == "add on the loop")
        for memory in memories:
            assert len(memory) == turns, "every turn is kept"
            memory.close()
        print(f"  {way}: done", file=sys.stderr, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", default=None, help="a postgresql:// URL (default: a SQLite file)")
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--turns", type=int, default=40, help="turns per session")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.store:
            target = PostgresTarget(args.store)
            try:
                result = run(target.location, args.sessions, args.turns)
            finally:
                target.close()
        else:
            result = run(str(Path(tmp) / "m.db"), args.sessions, args.turns)
    store = "postgresql" if args.store else "sqlite"
    print(f"{store}: {args.sessions} sessions x {args.turns} real-chat turns")
    print(f"{'way':<16} {'turns/s':>8} {'late med':>9} {'late p99':>9} {'late max':>9}")
    for way, row in result.items():
        lates = (
            f"{row['late_median_ms']:>7.1f}ms {row['late_p99_ms']:>7.1f}ms {row['late_max_ms']:>7.1f}ms"
            if "ticks" in row
            else f"{'-':>9} {'-':>9} {'-':>9}"
        )
        print(f"{way:<16} {row['turns_per_s']:>8.1f} {lates}")
    out = args.out or Path(__file__).resolve().parent / "results" / f"async_loop-{store}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"store": store, "sessions": args.sessions, "turns": args.turns, "ways": result}
    out.write_text(json.dumps({**payload, "environment": environment()}, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
