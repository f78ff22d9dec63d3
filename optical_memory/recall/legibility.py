"""How legible a render profile's pages are at each rung, as the provider's model receives them.

:func:`measure` renders needle pages with a profile (a real conversation, the bundled sample, with planted
turns holding exact strings an agent would need: long numbers, hex ids and UUIDs, URLs, Chinese text
with numbers, code identifiers), takes them down every rung of the profile, applies the provider's own
server-side resize (:meth:`~optical_memory.pricing.providers.Provider.served_size`), reads them back with a reader
and reports, per rung, character accuracy (:func:`~optical_memory.recall.metrics.char_accuracy`) and how
many planted needles came back exactly. Accuracy is of the conversation's text: the layout's own marks
(``↵``, ``¶``, ``↪``) are taken out of both the page text and the reading first, since an OCR reads them
as arrows of its own choosing.

The reader decides what is measured: the offline OCR (``rapidocr``) reads pixels and is only a proxy for
a vision model; an ``endpoint`` reader asks a real model behind an OpenAI-compatible API to transcribe the
page. Reports always name the reader and say whether it is a proxy.

:func:`calibrate` turns measurements into a profile a memory can load: the smallest glyph size (from the
profile's own upwards) at which the top rung reads at ``top_accuracy`` with every number and hex id exact,
keeping only the rungs that still read at ``min_accuracy`` (a page then stays at its last legible rung
until it is forgotten, rather than fading into noise).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

from PIL import Image

from optical_memory.conversation import turns_from_json
from optical_memory.errors import InputError
from optical_memory.images import downsample
from optical_memory.pricing.profiles import RenderProfile
from optical_memory.pricing.providers import Provider
from optical_memory.recall.base import RecallBackend
from optical_memory.recall.metrics import char_accuracy, normalize
from optical_memory.renderers import ChatRenderer
from optical_memory.types import RenderedPage, Turn

__all__ = [
    "KINDS",
    "LegibilityReport",
    "Needle",
    "RungLegibility",
    "calibrate",
    "measure",
    "needle_conversation",
]

KINDS = ("digits", "hex", "url", "cjk", "code")
"""The kinds of needles planted."""
EXACT_KINDS = ("digits", "hex")
_MARKS = str.maketrans("", "", "↵¶↪↔")
"""Needles a calibrated top rung must read back exactly."""
TRANSCRIBE = (
    "Transcribe every character of text in this image exactly, line by line, in reading order. "
    "Output only the text."
)
"""The prompt an endpoint reader gets when none is given."""

Progress = Callable[..., Iterable[Any]]


@dataclass(frozen=True, slots=True)
class Needle:
    """An exact string planted in the conversation."""

    kind: str
    text: str


def needle_conversation(seed: int = 0) -> tuple[list[Turn], list[Needle]]:
    """The bundled sample conversation with a needle turn after every third turn.

    Returns:
        The turns, and the needles planted in them (deterministic for a seed).
    """
    rng = random.Random(seed)
    sample = resources.files("optical_memory.data").joinpath("sample_conversation.json").read_text("utf-8")
    base = turns_from_json(json.loads(sample), "sample_conversation.json")
    turns: list[Turn] = []
    needles: list[Needle] = []
    for i, turn in enumerate(base):
        turns.append(turn)
        if i % 3 == 2:
            planted = _needles(rng)
            needles += planted
            text = " ".join(
                {
                    "digits": f"Order {n.text} was charged twice.",
                    "hex": f"The failing build is {n.text}.",
                    "url": f"Logs: {n.text}",
                    "cjk": f"{n.text}。",
                    "code": f"Call `{n.text}` first.",
                }[n.kind]
                for n in planted
            )
            turns.append(Turn("user", text))
    return turns, needles


def _needles(rng: random.Random) -> list[Needle]:
    hex_id = "".join(rng.choice("0123456789abcdef") for _ in range(16))
    uuid = "-".join("".join(rng.choice("0123456789abcdef") for _ in range(n)) for n in (8, 4, 4, 4, 12))
    return [
        Needle("digits", str(rng.randrange(10**9, 10**12))),
        Needle("hex", rng.choice([hex_id, uuid])),
        Needle(
            "url", f"https://logs.example.com/run/{rng.randrange(10**5, 10**6)}?shard={rng.randrange(100)}"
        ),
        Needle(
            "cjk", f"订单{rng.randrange(1000, 9999)}已于{rng.randrange(1, 13)}月{rng.randrange(1, 29)}日发货"
        ),
        Needle("code", f"retry_{rng.randrange(16**3, 16**4):x}(limit={rng.randrange(2, 99)})"),
    ]


@dataclass(frozen=True, slots=True)
class RungLegibility:
    """How one rung read back.

    Attributes:
        rung: The rung's name.
        width: The page's width at the rung.
        height: The page's height at the rung.
        served: The size the provider's model sees it at.
        detail: The detail (or media resolution) it is sent with.
        cost: What the provider bills for it.
        char_accuracy: Mean character accuracy over the pages.
        needles: Per kind, ``[found, planted]``.
        exact: The share of all planted needles read back exactly.
        seconds_per_page: Reading time.
    """

    rung: str
    width: int
    height: int
    served: tuple[int, int]
    detail: str | None
    cost: int
    char_accuracy: float
    needles: dict[str, list[int]]
    exact: float
    seconds_per_page: float


@dataclass(frozen=True, slots=True)
class LegibilityReport:
    """A legibility run: what was read, by whom, and the result per rung."""

    provider: str
    profile: dict[str, Any]
    reader: str
    proxy: bool
    pages: int
    rows: list[RungLegibility] = field(default_factory=list)

    @property
    def note(self) -> str:
        """Whose reading this is."""
        if self.proxy:
            return f"read by {self.reader}, an offline OCR: a proxy for {self.provider}, not the model itself"
        return f"read by {self.reader}: the model behind the endpoint transcribed the pages"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return {
            "provider": self.provider,
            "reader": self.reader,
            "proxy": self.proxy,
            "note": self.note,
            "pages": self.pages,
            "profile": self.profile,
            "rows": [asdict(r) for r in self.rows],
        }


def _pages(profile: RenderProfile, count: int, seed: int) -> tuple[list[RenderedPage], list[Needle]]:
    turns, needles = needle_conversation(seed)
    pages: list[RenderedPage] = []
    for page in ChatRenderer(profile.style()).iter_pages(turns):
        pages.append(page)
        if len(pages) == count:
            break
    return pages, needles


def measure(
    profile: RenderProfile,
    provider: Provider,
    reader: RecallBackend,
    *,
    pages: int = 2,
    seed: int = 0,
    progress: Progress | None = None,
) -> LegibilityReport:
    """Read needle pages back at every rung of ``profile`` as ``provider``'s model receives them.

    Args:
        profile: The render profile to measure.
        provider: The provider whose resize and prices apply.
        reader: What reads the pages (an offline OCR as a proxy, or an endpoint reader).
        pages: How many full pages to render and read per rung.
        seed: The needles' seed.
        progress: Wraps the work list (the CLI's progress bar).

    Raises:
        InputError: If ``pages`` is not positive.
        RecallError: If the reader fails.
    """
    if pages < 1:
        raise InputError(f"pages must be at least 1, got {pages}")
    rendered, needles = _pages(profile, pages, seed)
    work = [(rung, shape, page) for rung, shape in profile.rungs for page in rendered]
    results: dict[str, list[tuple[float, dict[str, list[int]], float]]] = {}
    for rung, shape, page in progress(work, total=len(work), label="read") if progress else work:
        image = downsample(page.image, shape.width, shape.height)
        served = provider.served_size(image.width, image.height, shape.detail)
        if served != image.size:
            image = image.resize(served, Image.Resampling.LANCZOS)
        start = time.perf_counter()
        reading = reader.read(image)
        seconds = time.perf_counter() - start
        truth, read = page.text.translate(_MARKS), reading.text.translate(_MARKS)
        results.setdefault(rung.value, []).append(
            (char_accuracy(truth, read), _found(truth, read, needles), seconds)
        )
    report = LegibilityReport(
        provider.name, profile.to_dict(), reader.name, reader.name != "endpoint", len(rendered)
    )
    for rung, shape in profile.rungs:
        rows = results[rung.value]
        counts = {k: [sum(r[1][k][0] for r in rows), sum(r[1][k][1] for r in rows)] for k in KINDS}
        planted = sum(c[1] for c in counts.values())
        report.rows.append(
            RungLegibility(
                rung.value,
                shape.width,
                shape.height,
                provider.served_size(shape.width, shape.height, shape.detail),
                shape.detail,
                provider.image_tokens(shape.width, shape.height, shape.detail),
                sum(r[0] for r in rows) / len(rows),
                counts,
                sum(c[0] for c in counts.values()) / planted if planted else 1.0,
                sum(r[2] for r in rows) / len(rows),
            )
        )
    return report


def _found(truth: str, reading: str, needles: Sequence[Needle]) -> dict[str, list[int]]:
    """Per kind, ``[needles read back exactly, needles on the page]``."""
    drawn, read = normalize(truth), normalize(reading)
    counts = {k: [0, 0] for k in KINDS}
    for needle in needles:
        wanted = normalize(needle.text)
        if wanted in drawn:
            counts[needle.kind][1] += 1
            counts[needle.kind][0] += wanted in read
    return counts


def calibrate(
    profile: RenderProfile,
    provider: Provider,
    reader: RecallBackend,
    *,
    top_accuracy: float = 0.98,
    min_accuracy: float = 0.90,
    max_steps: int = 4,
    **measure_kw: Any,
) -> tuple[RenderProfile, LegibilityReport]:
    """A profile whose top rung reads well and whose rungs all stay legible, with its measurements.

    The glyph size grows one pixel at a time (at most ``max_steps``) until the top rung reads at
    ``top_accuracy`` with every number and hex id exact; then the rungs are cut after the last one that
    reads at ``min_accuracy`` (the top rung always stays).

    Raises:
        RecallError: If the reader fails.
    """
    candidate, report = profile, measure(profile, provider, reader, **measure_kw)
    for _ in range(max_steps):
        if _top_reads(report, top_accuracy):
            break
        candidate = candidate.overridden({"body_px": candidate.body_px + 1})
        report = measure(candidate, provider, reader, **measure_kw)
    kept = 1
    while kept < len(report.rows) and report.rows[kept].char_accuracy >= min_accuracy:
        kept += 1
    rungs = {r.value: [s.width, s.height, s.detail] for r, s in candidate.rungs[:kept]}
    calibrated = candidate.overridden(
        {
            "name": f"{profile.name}-calibrated",
            "rungs": rungs,
            "dated": time.strftime("%Y-%m-%d"),
            "source": f"optical-memory bench legibility: {report.note}",
            "measured": {row.rung: round(row.char_accuracy, 4) for row in report.rows},
        }
    )
    return calibrated, report


def _top_reads(report: LegibilityReport, accuracy: float) -> bool:
    top = report.rows[0]
    exact = all(top.needles[k][0] == top.needles[k][1] for k in EXACT_KINDS)
    return top.char_accuracy >= accuracy and exact
