"""The fidelity gate (off by default): a page moves down the ladder only while a reader still reads it there.

With ``MemoryConfig.gate_reader`` set, before the age rule demotes a page to a lower rung (not to
forgotten), the page's stored image is taken down to that rung and read by the reader. The reading is scored
against what the memory knows the page says:

- its kept text, by character accuracy, when the text is kept;
- else the search terms taken from its text as it was sealed, by the share of them the reading contains;
- and its verbatim spans, by the share read exactly (spaces ignored).

The lowest of these scores must reach ``gate_min_accuracy``. A page that falls short stays at its rung: a
context's budget can still show it smaller, forgetting by age is not gated, and the context lists it
(:attr:`~optical_memory.context.Usage.held_by_gate`). A page with nothing to score against passes. Verdicts
are kept per page and rung while the session stays loaded in this process, so a page is read once per rung.

A CPU OCR reads a page in seconds, and every demotion waits for it: ``benchmarks/gate.py`` measures the cost
per add.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from PIL import Image

from optical_memory.ladder import Rung
from optical_memory.recall.metrics import char_accuracy
from optical_memory.recall.search import terms

if TYPE_CHECKING:
    from optical_memory.recall.base import RecallBackend

__all__ = ["FidelityGate", "score"]

logger = logging.getLogger(__name__)


def score(reading: str, *, text: str | None, bag: str | None, spans: tuple[str, ...]) -> float | None:
    """How well ``reading`` keeps a page: the lowest of the measures above (None: nothing to measure)."""
    scores = []
    if text:
        scores.append(char_accuracy(reading, text))
    elif bag:
        wanted = set(bag.split())
        scores.append(len(wanted & set(terms(reading))) / len(wanted))
    if spans:
        squashed = "".join(reading.split())
        scores.append(sum("".join(s.split()) in squashed for s in spans) / len(spans))
    return min(scores) if scores else None


class FidelityGate:
    """Decides whether a page may go down to a rung, reading it there once (see the module docstring).

    Args:
        reader: The reader name (built on first use, for this gate only).
        min_accuracy: The lowest score a page may have at the rung it goes to.
    """

    def __init__(self, reader: str, min_accuracy: float) -> None:
        self.reader_name = reader
        self.min_accuracy = min_accuracy
        self._reader: RecallBackend | None = None
        self._verdicts: dict[tuple[int, Rung], bool] = {}

    def allows(
        self,
        page_id: int,
        rung: Rung,
        image: Callable[[], Image.Image],
        reference: Callable[[], tuple[str | None, str | None, tuple[str, ...]]],
    ) -> bool:
        """Whether page ``page_id`` may go down to ``rung``: ``image()`` gives it at that rung, ``reference()``
        its (kept text, terms, spans)."""
        verdict = self._verdicts.get((page_id, rung))
        if verdict is None:
            text, bag, spans = reference()
            if not text and not bag and not spans:
                verdict = True
            else:
                reading = self._read(image(), rung, page_id)
                measured = score(reading, text=text, bag=bag, spans=spans)
                verdict = measured is None or measured >= self.min_accuracy
                logger.debug("gate: page %d at %s scores %s", page_id, rung.value, measured)
            self._verdicts[(page_id, rung)] = verdict
        return verdict

    def _read(self, image: Image.Image, rung: Rung, page_id: int) -> str:
        if self._reader is None:
            from optical_memory.recall.base import get_reader

            self._reader = get_reader(self.reader_name)
        return self._reader.read(image, rung=rung, page=page_id).text
