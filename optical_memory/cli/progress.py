"""A small progress bar on stderr for long CLI jobs (the library itself never prints)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(
    items: Iterable[T], total: int | None = None, label: str = "", *, min_seconds: float = 0.5
) -> Iterator[T]:
    """Yield ``items`` while drawing a bar on stderr once the job has run ``min_seconds``.

    Nothing is drawn when stderr is not a terminal, so logs and pipes stay clean.
    """
    stream = sys.stderr
    live = stream.isatty()
    start = time.monotonic()
    last = 0.0
    count = 0
    for item in items:
        yield item
        count += 1
        now = time.monotonic()
        if live and now - start >= min_seconds and now - last >= 0.1:
            last = now
            stream.write("\r" + _line(label, count, total, now - start))
            stream.flush()
    if live and last:
        stream.write("\r" + _line(label, count, total, time.monotonic() - start) + "\n")
        stream.flush()


def _line(label: str, count: int, total: int | None, elapsed: float) -> str:
    rate = count / elapsed if elapsed > 0 else 0.0
    if total:
        width = 30
        filled = int(width * min(count, total) / total)
        bar = "#" * filled + "-" * (width - filled)
        return f"{label} [{bar}] {count}/{total} {rate:.1f}/s"
    return f"{label} {count} {rate:.1f}/s"
