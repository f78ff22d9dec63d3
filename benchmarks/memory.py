"""The memory core: add() latency as the history grows, context() time, store size, and compression ratios.

    python benchmarks/memory.py [--turns 10000] [--source sample|chats] [--page-levels auto]
                                [--store postgresql://...] [--out benchmarks/results/memory.json]

With ``--source sample`` (the default), a long, realistic conversation is built from the bundled sample
(``optical_memory/data/sample_conversation.json``: English and Chinese, prose, code and tool output), repeated
with small variations (a round number in each turn, paragraphs rotated), after its system prompt. With
``--source chats``, the real public chats of ``benchmarks/data/chats`` (see its ``SOURCES.md``) are replayed
one after another in file-name order, again from the start until there are enough turns. Measured, in one
process:

* ``add()`` on a file store (WAL), or with ``--store postgresql://...`` on a fresh database created on that
  server for the run (and dropped after), with the default config: median, p99 and mean latency over the
  100 adds ending at 100, 1,000, 10,000 (and 100,000) turns. The baseline is the renderer's own work for the same turns
  in the same process, interleaved add by add: a bare :class:`~optical_memory.renderers.PagePacker` fed
  the same turns plus a PNG encode of each sealed page as it is stored (``decay.page_png``).
  ``add / baseline`` shows what the memory adds (SQLite, bookkeeping, decay), and ``own`` is the median,
  turn by turn, of an add's time less the baseline's for the same turn: the memory's own work, whatever
  the turns' content (the windows at each mark hold different turns); flatness shows as the same figures
  at 1,000 and 100,000 turns.
* ``context()`` time at each checkpoint, medians of 5: OpenAI chat (base64 PNG per page) with the default
  budget (half the window), first right after the adds (``first``: what the page-part cache still lacks is
  read and encoded) and then again; OpenAI with a 32k budget; and the Hugging Face format with no budget
  (every page, as PIL images).
* store bytes per 1,000 turns (SQLite: database plus WAL, after a checkpoint; PostgreSQL: the tables with
  their TOAST data and indexes, after a VACUUM), with its breakdown: page PNG bytes per
  rung (and pages per rung), turn text kept (content, token counts, tool calls, packer states), and the
  rest (SQLite pages, indexes, other tables, and free pages, also given alone). ``--page-levels 256``
  stores pages with all 256 gray levels, as before pages kept fewer (``optical_memory.decay.page_levels``),
  to compare on one machine.
* the compression ratio ``history_text_tokens / context_tokens`` per provider at a few budgets, on the
  memory at 1,000 turns.

Results print as tables and go to a JSON file with the machine, versions and git commit.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import PIL

from optical_memory import __version__, decay
from optical_memory.conversation import load_conversation
from optical_memory.errors import ConfigError
from optical_memory.images import GRAY_LEVELS
from optical_memory.memory import OpticalMemory
from optical_memory.renderers import PagePacker, RenderStyle
from optical_memory.types import Turn

SAMPLE = Path(__file__).resolve().parents[1] / "optical_memory" / "data" / "sample_conversation.json"
CHATS = sorted((Path(__file__).resolve().parent / "data" / "chats").glob("*.json"))
CHECKPOINTS = (100, 1_000, 10_000, 100_000)
WINDOW = 100
PROVIDERS = (
    "deepseek-ocr",
    "openai:gpt-4o",
    "anthropic:claude-sonnet-4-5",
    "gemini:gemini-2.0-flash",
    "qwen2.5-vl",
)
BUDGETS = (None, 64_000, 32_000, 16_000, 8_000)


def long_conversation(n: int) -> list[Turn]:
    """``n`` turns: the sample's system prompt, then its other turns repeated with small variations."""
    sample = load_conversation(SAMPLE)
    system = [t for t in sample if t.role == "system"][:1]
    body = [t for t in sample if t.role != "system"]
    out = list(system)
    k = 0
    while len(out) < n:
        t = body[k % len(body)]
        rnd = k // len(body)
        paras = t.content.split("\n\n")
        if rnd and len(paras) > 2 and "```" not in t.content:
            shift = rnd % len(paras)
            paras = paras[shift:] + paras[:shift]
        out.append(Turn(t.role, f"[round {rnd}] " + "\n\n".join(paras), t.name))
        k += 1
    return out[:n]


def real_chats(n: int) -> list[Turn]:
    """``n`` turns of the real chats in ``benchmarks/data/chats``, one chat after another, cycling."""
    chats = [load_conversation(path) for path in CHATS]
    return list(itertools.islice(itertools.cycle(itertools.chain.from_iterable(chats)), n))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def window_stats(lat: list[float], end: int) -> dict[str, float]:
    part = lat[max(0, end - WINDOW) : end]
    return {
        "median_ms": statistics.median(part) * 1e3,
        "p99_ms": pct(part, 0.99) * 1e3,
        "mean_ms": statistics.fmean(part) * 1e3,
    }


class Baseline:
    """The renderer's own work per add: pack the turn leaving the window, encode the pages it sealed."""

    def __init__(self, turns: list[Turn], recent: int, style: RenderStyle, levels: int) -> None:
        self.turns, self.recent, self.packer, self.levels = turns, recent, PagePacker(style), levels

    def step(self, i: int) -> None:
        j = i - self.recent
        if j >= 1:  # turn 0 is the system prompt, which stays text
            for page in self.packer.add(self.turns[j], j):
                decay.page_png(page.image, self.levels)


def timed(fn: Any, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


class SQLiteTarget:
    """A fresh SQLite file: where the memory lives, and what its bytes are."""

    def __init__(self, tmp: Path) -> None:
        self.path = tmp / "bench.db"
        self.location = str(self.path)

    def breakdown(self) -> dict[str, Any]:
        """Where the store's bytes go: page PNGs per rung, kept turn text, and the rest (after a checkpoint)."""
        with sqlite3.connect(self.path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            total = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*"))
            out = _breakdown(
                lambda sql: conn.execute(sql).fetchall(), total, "LENGTH", "CAST(content AS BLOB)"
            )
            (free_pages,) = conn.execute("PRAGMA freelist_count").fetchone()
            (page_size,) = conn.execute("PRAGMA page_size").fetchone()
        return {**out, "free": free_pages * page_size}

    def close(self) -> None:
        pass


class PostgresTarget:
    """A fresh database on a PostgreSQL server, dropped when the run ends."""

    def __init__(self, server: str) -> None:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        self._psycopg = psycopg
        self.name = f"optical_memory_bench_{os.getpid()}"
        self._server = server
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {self.name}")
        params = conninfo_to_dict(server)
        params["dbname"] = self.name
        self.location = "postgresql://" + server.split("://", 1)[1].rsplit("/", 1)[0] + "/" + self.name
        self._conninfo = make_conninfo(**params)

    def breakdown(self) -> dict[str, Any]:
        """Where the store's bytes go: the tables with TOAST and indexes, after a VACUUM."""
        with self._psycopg.connect(self._conninfo, autocommit=True) as conn:
            conn.execute("VACUUM")
            tables = ("sessions", "turns", "turn_images", "pages", "vision_tokens", "calibration")
            (total,) = conn.execute(
                "SELECT " + " + ".join(f"pg_total_relation_size('{t}')" for t in tables)
            ).fetchone()
            out = _breakdown(lambda sql: conn.execute(sql).fetchall(), total, "OCTET_LENGTH", "content")
        return {**out, "free": 0}

    def close(self) -> None:
        from optical_memory.postgres import close_pools

        close_pools()
        with self._psycopg.connect(self._server, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {self.name}")


def _breakdown(query: Any, total: int, length: str, content: str) -> dict[str, Any]:
    rungs = query(
        f"SELECT rung, COUNT(*), COALESCE(SUM({length}(png)), 0) FROM pages GROUP BY rung ORDER BY rung"
    )
    ((text,),) = query(
        f"SELECT COALESCE(SUM(COALESCE({length}({content}), 0) + {length}(tokens)"
        f" + COALESCE({length}(tool_calls), 0) + COALESCE({length}(packer_before), 0)), 0) FROM turns"
    )
    png = {rung: {"pages": count, "bytes": int(size)} for rung, count, size in rungs}
    png_total = sum(r["bytes"] for r in png.values())
    return {
        "total": int(total),
        "png": png,
        "png_total": png_total,
        "turn_text": int(text),
        "other": int(total) - png_total - int(text),
    }


def run_scaling(
    turns: list[Turn], target: SQLiteTarget | PostgresTarget, marks: tuple[int, ...]
) -> dict[str, Any]:
    memory = OpticalMemory.open(target.location)
    recent = memory.config.recent_turns or 0
    profile = memory.profile
    baseline = Baseline(turns, recent, profile.style(), decay.page_levels(profile, profile.top))
    lat: list[float] = []
    base: list[float] = []
    checkpoints: dict[int, dict[str, Any]] = {}
    ratio_memory = None
    for i, turn in enumerate(turns):
        start = time.perf_counter()
        memory.add(turn)
        lat.append(time.perf_counter() - start)
        start = time.perf_counter()  # interleaved, so both sides see the same machine load
        baseline.step(i)
        base.append(time.perf_counter() - start)
        n = i + 1
        if n in marks:
            checkpoints[n] = {
                "pages": len(memory.pages()),
                "context_openai_first_ms": timed(lambda: memory.context(provider="openai:gpt-4o"), repeat=1),
                "context_openai_ms": timed(lambda: memory.context(provider="openai:gpt-4o"), repeat=5),
                "context_hf_ms": timed(lambda: memory.context(budget=None)),
                "context_openai_32k_ms": timed(
                    lambda: memory.context(provider="openai:gpt-4o", budget=32_000)
                ),
                "store": target.breakdown(),
            }
            if n == min(1_000, marks[-1]):
                ratio_memory = run_ratios(memory)
            print(f"  {n} turns added", file=sys.stderr, flush=True)
    memory.close()
    rows = {}
    for n, extra in checkpoints.items():
        mine, ref = window_stats(lat, n), window_stats(base, n)
        pairs = [
            a - b for a, b in zip(lat[max(0, n - WINDOW) : n], base[max(0, n - WINDOW) : n], strict=True)
        ]
        rows[str(n)] = {
            "add": mine,
            "baseline": ref,
            "add_over_baseline_mean": mine["mean_ms"] / ref["mean_ms"],
            # the memory's own work per add, turn by turn (the same turn's add less its baseline): flat when
            # the memory's bookkeeping does not grow with the history, whatever the turns' content
            "own_median_ms": statistics.median(pairs) * 1e3,
            "store_bytes_per_1000_turns": extra["store"]["total"] / n * 1000,
            **extra,
        }
    return {"checkpoints": rows, "ratios": ratio_memory}


def run_ratios(memory: OpticalMemory) -> list[dict[str, Any]]:
    out = []
    for provider in PROVIDERS:
        for budget in BUDGETS:
            try:
                usage = memory.context(provider=provider, budget=budget).usage
            except ConfigError as exc:
                out.append({"provider": provider, "budget": budget, "error": str(exc)})
                continue
            out.append(
                {
                    "provider": provider,
                    "budget": budget,
                    "history_text_tokens": usage.history_text_tokens,
                    "context_tokens": usage.context_tokens,
                    "ratio": usage.ratio,
                    "pages_per_rung": dict(usage.pages_per_rung),
                    "forgotten_for_budget": len(usage.forgotten_for_budget),
                }
            )
    return out


def environment() -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=SAMPLE.parent
        ).stdout.strip()
    except (subprocess.CalledProcessError, OSError):
        commit = "uncommitted"
    return {
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "pillow": PIL.__version__,
        "sqlite": sqlite3.sqlite_version,
        "optical_memory": __version__,
        "commit": commit,
    }


def print_tables(result: dict[str, Any]) -> None:
    print(
        f"{'turns':>6} {'add med':>8} {'own med':>8} {'add p99':>8} {'add mean':>9} {'base mean':>9} {'ratio':>6} "
        f"{'oai 1st':>8} {'ctx oai':>8} {'ctx 32k':>8} {'hf all':>8} {'KB/1k turns':>11}"
    )
    for n, row in result["checkpoints"].items():
        a, b = row["add"], row["baseline"]
        print(
            f"{n:>6} {a['median_ms']:>7.2f}ms {row['own_median_ms']:>7.2f}ms {a['p99_ms']:>7.1f}ms {a['mean_ms']:>8.2f}ms "
            f"{b['mean_ms']:>8.2f}ms {row['add_over_baseline_mean']:>6.2f} "
            f"{row['context_openai_first_ms']:>7.1f}ms {row['context_openai_ms']:>7.1f}ms "
            f"{row['context_openai_32k_ms']:>7.1f}ms {row['context_hf_ms']:>7.0f}ms "
            f"{row['store_bytes_per_1000_turns'] / 1024:>11.0f}"
        )
    print(
        f"\n{'turns':>6} {'MB/1k turns':>11} {'png MB':>8} {'text MB':>8} {'other MB':>8} {'free MB':>8}"
        "  PNG per rung"
    )
    for n, row in result["checkpoints"].items():
        st = row["store"]
        rungs = "  ".join(
            f"{rung} {r['pages']}p {r['bytes'] / 1e6:.2f} MB "
            f"({r['bytes'] / max(r['pages'], 1) / 1024:.0f} KB/p)"
            for rung, r in st["png"].items()
        )
        print(
            f"{n:>6} {row['store_bytes_per_1000_turns'] / 1e6:>11.2f} {st['png_total'] / 1e6:>8.2f} "
            f"{st['turn_text'] / 1e6:>8.2f} {st['other'] / 1e6:>8.2f} {st['free'] / 1e6:>8.2f}  {rungs}"
        )
    if result["ratios"]:
        print(
            f"\n{'provider':<30} {'budget':>7} {'history':>8} {'context':>8} {'ratio':>6}  rungs (L/B/S/T/F)"
        )
        for r in result["ratios"]:
            if "error" in r:
                print(f"{r['provider']:<30} {r['budget']!s:>7}  {r['error'][:60]}")
                continue
            rungs = "/".join(str(v) for v in r["pages_per_rung"].values())
            print(
                f"{r['provider']:<30} {r['budget']!s:>7} {r['history_text_tokens']:>8} "
                f"{r['context_tokens']:>8} {r['ratio']:>6.2f}  {rungs}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=CHECKPOINTS[-1])
    parser.add_argument(
        "--source",
        choices=("sample", "chats"),
        default="sample",
        help="the bundled sample, varied and repeated, or the real chats of benchmarks/data/chats replayed",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/memory.json"))
    parser.add_argument(
        "--store",
        metavar="URL",
        help="a PostgreSQL server (postgresql://...) to measure on, in a fresh database; default a SQLite file",
    )
    parser.add_argument(
        "--page-levels",
        choices=("auto", *map(str, GRAY_LEVELS)),
        default="auto",
        help="gray levels of stored pages at every rung (auto: decay.page_levels; 256: as stored before)",
    )
    args = parser.parse_args()
    if args.page_levels != "auto":
        levels = int(args.page_levels)
        decay.page_levels = lambda profile, rung: levels
    checkpoints = tuple(sorted({c for c in CHECKPOINTS if c <= args.turns} | {args.turns}))
    turns = long_conversation(args.turns) if args.source == "sample" else real_chats(args.turns)
    warm = PagePacker(OpticalMemory().profile.style())  # load fonts and caches once, for both sides
    warm.add(turns[1], 1)
    warm.seal()
    with tempfile.TemporaryDirectory() as tmp:
        target = SQLiteTarget(Path(tmp)) if args.store is None else PostgresTarget(args.store)
        try:
            result = run_scaling(turns, target, checkpoints)
        finally:
            target.close()
    result["environment"] = environment()
    result["turns"] = args.turns
    result["source"] = args.source
    result["page_levels"] = args.page_levels
    result["store"] = "sqlite" if args.store is None else "postgresql"
    print_tables(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
