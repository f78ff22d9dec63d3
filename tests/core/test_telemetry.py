"""OpenTelemetry (extra ``otel``): adds, contexts and recalls are spans with GenAI and memory attributes, and
feed the duration, demotion, savings and pages-per-rung metrics, read here with the SDK's in-memory
exporter and reader."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from optical_memory.memory import OpticalMemory
from tests.memory.helpers import turns

SPANS = InMemorySpanExporter()
READER = InMemoryMetricReader()


@pytest.fixture(scope="module", autouse=True)
def _providers() -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(SPANS))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[READER]))


def _metrics() -> dict[str, list[Any]]:
    data = READER.get_metrics_data()
    out: dict[str, list[Any]] = {}
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out


def test_operations_are_spans_and_metrics() -> None:
    memory = OpticalMemory({"provider": "openai:gpt-4o", "recent_turns": 2, "keep_text": True})
    for turn in turns(30):
        memory.add(turn)
    context = memory.context(budget=None)
    memory.recall(0, reader="exact")

    spans = {s.name: s for s in SPANS.get_finished_spans()}
    assert {"optical_memory.add", "optical_memory.context", "optical_memory.recall"} <= set(spans)
    ctx = spans["optical_memory.context"].attributes
    assert ctx["gen_ai.conversation.id"] == "default" and ctx["gen_ai.provider.name"] == "openai:gpt-4o"
    assert ctx["optical_memory.context_tokens"] == context.usage.context_tokens
    assert spans["optical_memory.recall"].attributes["optical_memory.reader"] == "exact"
    sealed = sum(s.attributes.get("optical_memory.sealed", 0) for s in SPANS.get_finished_spans())
    assert sealed == len([p for p in memory.pages() if p.sealed])

    found = _metrics()
    operations = {
        p.attributes["optical_memory.operation"] for p in found["optical_memory.operation.duration"]
    }
    assert operations == {"add", "context", "recall"}
    saved = sum(p.value for p in found["optical_memory.tokens.saved"])
    assert saved == context.usage.history_text_tokens - context.usage.context_tokens > 0
    rungs = {p.attributes["optical_memory.rung"]: p.value for p in found["optical_memory.context.pages"]}
    assert rungs == dict(context.usage.pages_per_rung)
    demoted = sum(p.value for p in found.get("optical_memory.pages.demoted", []))
    assert demoted == sum(s.attributes.get("optical_memory.demoted", 0) for s in SPANS.get_finished_spans())
