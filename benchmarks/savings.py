"""What optical memory saves on real chats, per provider: ratios, page fill, density, and prompt-cache reuse.

    python benchmarks/savings.py [--chats benchmarks/data/chats/*.json] [--providers ...] [--cache]
                                 [--out benchmarks/results/savings.json]

Every conversation in ``benchmarks/data/chats`` (real public chats, see its ``SOURCES.md``) is added turn by
turn to one memory per provider, with the default config for that provider (its render profile). Measured:

* ``ratio``: history text tokens over context tokens, in the provider's own tokens, with no budget (no
  page forgotten);
* ``window ratio``: the same under the default budget (half the model's context window); where that
  bound had to leave pages out, the ratio is over what the context still carries
  (``Usage.carried_ratio``), so forgetting cannot inflate it;
* page fill over the sealed pages (text tokens over what a page of plain prose holds): median, lowest,
  and how many are below 50% (the last sealed page of a turn that ends the history is not counted);
* density at the top rung: characters of the conversation a full sealed page holds per image token the
  provider bills for it (peers' validated shapes: Claude about 4.2, gpt-5.x about 4.9, Gemini 3 about 21);
* with ``--cache``, prompt-cache reuse over the replayed chat: for each request after the first, the share
  of the context's image bytes in the unchanged prefix of page images, and the share of image bytes that
  are byte-identical to an image of the previous request.

Tables print per measure; the JSON holds every number with the machine, versions and commit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from optical_memory import __version__
from optical_memory.conversation import load_conversation
from optical_memory.formats import PageItem
from optical_memory.memory import OpticalMemory
from optical_memory.pricing.providers import get_provider
from optical_memory.types import Turn

ROOT = Path(__file__).resolve().parents[1]
CHATS = sorted((ROOT / "benchmarks" / "data" / "chats").glob("*.json"))
PROVIDERS = (
    "deepseek-ocr",
    "openai:gpt-4o",
    "openai:gpt-4.1-mini",
    "openai:gpt-5.2",
    "anthropic:claude-sonnet-4-5",
    "gemini:gemini-2.0-flash",
    "gemini:gemini-3-pro",
    "qwen2.5-vl",
)
CACHE_PROVIDERS = ("anthropic:claude-sonnet-4-5", "openai:gpt-4o", "gemini:gemini-2.0-flash")


def replay(turns: list[Turn], provider: str, *, cache: bool) -> dict[str, Any]:
    """Add ``turns`` to a fresh memory for ``provider``; measure ratios, fill, density (and cache reuse)."""
    memory = OpticalMemory({"provider": provider})
    previous: list[tuple[str, int]] | None = None
    prefix_shares: list[float] = []
    same_shares: list[float] = []
    start = time.perf_counter()
    for turn in turns:
        memory.add(turn)
        if cache:
            images = _images(memory)
            if previous is not None and images:
                prefix_shares.append(_prefix_share(previous, images))
                same_shares.append(_same_share(previous, images))
            previous = images
    seconds = time.perf_counter() - start
    free = memory.context(budget=None).usage
    bounded = memory.context().usage
    pages = [p for p in memory.pages() if p.sealed]
    ends = len(turns) - 1
    counted = [p for p in pages if not (p is pages[-1] and p.turns[1] == ends)]
    fills = sorted(p.fill for p in counted)
    shape = memory.profile.shape(memory.profile.top)
    top_cost = get_provider(provider).image_tokens(shape.width, shape.height, shape.detail)
    full = [p for p in counted if p.fill >= 0.85] or counted
    chars = [sum(s.end - s.start for s in p.spans) for p in full]
    memory.close()
    return {
        "provider": provider,
        "profile": memory.profile.name,
        "turns": len(turns),
        "seconds": seconds,
        "history_text_tokens": free.history_text_tokens,
        "context_tokens": free.context_tokens,
        "ratio": free.ratio,
        "pages_per_rung": dict(free.pages_per_rung),
        "pages_as_text": free.pages_as_text,
        "window_budget": bounded.budget,
        "window_context_tokens": bounded.context_tokens,
        "window_ratio": bounded.carried_ratio,
        "window_forgotten": len(bounded.forgotten_for_budget),
        "pages": len(pages),
        "fill_median": statistics.median(fills) if fills else None,
        "fill_min": fills[0] if fills else None,
        "pages_below_half": sum(f < 0.5 for f in fills),
        "chars_per_image_token_top": statistics.median(chars) / top_cost if chars and top_cost else None,
        "cache_prefix_share": statistics.median(prefix_shares) if prefix_shares else None,
        "cache_same_share": statistics.median(same_shares) if same_shares else None,
        "cache_requests": len(prefix_shares),
    }


def _images(memory: OpticalMemory) -> list[tuple[str, int]]:
    """The page images of the memory's default context: (fingerprint, bytes) in order."""
    out = []
    for item in memory.context().items:
        if isinstance(item, PageItem):
            data = item.png if item.png is not None else item.image.tobytes()
            out.append((hashlib.sha1(data).hexdigest(), len(data)))
    return out


def _prefix_share(before: list[tuple[str, int]], after: list[tuple[str, int]]) -> float:
    """The share of ``after``'s image bytes in the images it shares, in order, from the start of ``before``."""
    same = 0
    for a, b in zip(before, after, strict=False):
        if a[0] != b[0]:
            break
        same += b[1]
    return same / sum(n for _, n in after)


def _same_share(before: list[tuple[str, int]], after: list[tuple[str, int]]) -> float:
    """The share of ``after``'s image bytes byte-identical to an image of ``before``."""
    seen = {h for h, _ in before}
    return sum(n for h, n in after if h in seen) / sum(n for _, n in after)


def environment() -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=ROOT
        ).stdout.strip()
    except (subprocess.CalledProcessError, OSError):
        commit = "uncommitted"
    return {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "optical_memory": __version__,
        "commit": commit,
    }


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_tables(rows: list[dict[str, Any]], providers: list[str]) -> None:
    chats = list(dict.fromkeys(r["chat"] for r in rows))
    short = [p.split(":")[-1][:16] for p in providers]
    table = {(r["chat"], r["provider"]): r for r in rows}
    for title, key, spec in (
        ("ratio, no budget (history / context, provider tokens)", "ratio", ".2f"),
        ("ratio under the default window budget (over what the context carries)", "window_ratio", ".2f"),
        ("median page fill", "fill_median", ".0%"),
        ("characters per billed image token at the top rung", "chars_per_image_token_top", ".1f"),
    ):
        print(f"\n{title}")
        print(f"{'chat':<38}" + "".join(f"{s:>17}" for s in short))
        for chat in chats:
            cells = [_fmt(table[(chat, p)][key], spec) if (chat, p) in table else "" for p in providers]
            print(f"{chat:<38}" + "".join(f"{c:>17}" for c in cells))
    cached = [r for r in rows if r["cache_requests"]]
    if cached:
        print("\nprompt-cache reuse between consecutive requests (median over the replay)")
        print(f"{'chat':<38} {'provider':<30} {'prefix':>7} {'same':>7} {'requests':>9}")
        for r in cached:
            print(
                f"{r['chat']:<38} {r['provider']:<30} {r['cache_prefix_share']:>7.1%} "
                f"{r['cache_same_share']:>7.1%} {r['cache_requests']:>9}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chats", type=Path, nargs="*", default=CHATS)
    parser.add_argument("--providers", nargs="*", default=list(PROVIDERS))
    parser.add_argument(
        "--cache", action="store_true", help="measure prompt-cache reuse (replays are slower)"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/savings.json"))
    args = parser.parse_args()
    rows = []
    for chat in args.chats:
        turns = load_conversation(chat)
        for provider in args.providers:
            cache = args.cache and provider in CACHE_PROVIDERS
            rows.append({"chat": chat.stem, **replay(turns, provider, cache=cache)})
            print(f"  {chat.stem} on {provider}: {rows[-1]['ratio']:.2f}x", file=sys.stderr, flush=True)
    print_tables(rows, args.providers)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"environment": environment(), "rows": rows}, indent=1))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
