"""OpenTelemetry spans and metrics for adds, decay, contexts and recalls (extra ``otel``).

With ``opentelemetry-api`` installed, every ``add``/``extend``, ``context`` and ``recall`` of a memory is a span
(``optical_memory.add``, ``optical_memory.context``, ``optical_memory.recall``) carrying the GenAI
attributes that apply (``gen_ai.conversation.id`` for the session, ``gen_ai.provider.name`` for the target)
and the memory's own (``optical_memory.*``: turns added, pages sealed and demoted, context tokens, image
tokens, pages per rung, the reader). Metrics, on the ``optical_memory`` meter:

- ``optical_memory.operation.duration`` (histogram, s), by ``optical_memory.operation`` (add, context, recall);
- ``optical_memory.pages.demoted`` (counter): pages the decay moved down a rung;
- ``optical_memory.tokens.saved`` (counter, by provider): what each context saved against the plain history;
- ``optical_memory.context.pages`` (gauge, by provider and rung): pages per rung in the latest context.

The GenAI semantic conventions have no memory operations yet, so those names are the project's own.
Nothing is exported unless the application configures an OpenTelemetry SDK (as for any library). Without
the package nothing is imported and each operation costs one attribute check.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

_otel: Any = None
"""The instruments, once built: None until first use, False when opentelemetry is not installed."""


class _Instruments:
    def __init__(self) -> None:
        from opentelemetry import metrics, trace

        self.tracer = trace.get_tracer("optical_memory")
        meter = metrics.get_meter("optical_memory")
        self.duration = meter.create_histogram(
            "optical_memory.operation.duration", unit="s", description="Time of a memory operation"
        )
        self.demoted = meter.create_counter(
            "optical_memory.pages.demoted", unit="{page}", description="Pages the decay moved down a rung"
        )
        self.saved = meter.create_counter(
            "optical_memory.tokens.saved",
            unit="{token}",
            description="Context tokens saved against the plain history",
        )
        self.pages = meter.create_gauge(
            "optical_memory.context.pages", unit="{page}", description="Pages per rung in the latest context"
        )


def _instruments() -> _Instruments | None:
    global _otel
    if _otel is None:
        _otel = _Instruments() if importlib.util.find_spec("opentelemetry") is not None else False
    return _otel or None


class Operation:
    """What one operation reports: attributes set on its span, and the metrics they feed."""

    def __init__(self, instruments: _Instruments | None, span: Any) -> None:
        self._instruments = instruments
        self._span = span

    def set(self, **attributes: Any) -> None:
        """Set ``optical_memory.<name>`` attributes on the span (gen_ai names pass as they are)."""
        if self._span is not None:
            for key, value in attributes.items():
                self._span.set_attribute(key if key.startswith("gen_ai.") else f"optical_memory.{key}", value)

    def demoted(self, count: int) -> None:
        """Count pages the decay moved down a rung."""
        if self._instruments is not None and count:
            self._instruments.demoted.add(count)

    def context(self, provider: str, saved: int, per_rung: Mapping[str, int]) -> None:
        """Report a context's savings and its pages per rung."""
        if self._instruments is None:
            return
        self._instruments.saved.add(max(saved, 0), {"gen_ai.provider.name": provider})
        for rung, count in per_rung.items():
            self._instruments.pages.set(
                count, {"gen_ai.provider.name": provider, "optical_memory.rung": rung}
            )


@contextmanager
def operation(name: str, session: str) -> Iterator[Operation]:
    """A span named ``optical_memory.<name>`` for one memory operation, timed into the duration histogram."""
    instruments = _instruments()
    if instruments is None:
        yield Operation(None, None)
        return
    start = time.perf_counter()
    with instruments.tracer.start_as_current_span(f"optical_memory.{name}") as span:
        span.set_attribute("gen_ai.conversation.id", session)
        yield Operation(instruments, span)
    instruments.duration.record(time.perf_counter() - start, {"optical_memory.operation": name})
