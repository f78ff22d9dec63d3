"""The ``rapidocr`` reader: offline PP-OCR on the CPU, the default when no DeepSeek-OCR checkpoint is set.

``rapidocr`` (>= 3.10) ships the PP-OCRv6 detection and recognition ONNX models inside its wheel and runs
them with onnxruntime, so it works with no network and no model download. Two settings matter for rendered
pages (measured on this project's CPU machines):

- the 180-degree text-direction classifier is turned off: rendered pages are never upside down, and the
  classifier occasionally flips a clean line;
- the detected boxes come back in detection order, which is not reading order; they are re-sorted into
  lines (boxes whose vertical centres lie within half a line height of each other) and each line left to
  right. Without this the character accuracy reads far too low.

This reader measures pixel loss (how legible the downsampled page still is), not DeepSeek-OCR's
vision-token bottleneck; curves drawn with it say so.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from PIL import Image

from optical_memory.errors import MissingDependencyError, RecallError
from optical_memory.ladder import Rung
from optical_memory.recall.base import Reading, resolve_rung

__all__ = ["Box", "RapidOCRReader", "reading_order"]

logger = logging.getLogger(__name__)

Box = tuple[float, float, float, float, str]
"""A text box as ``(left, top, right, bottom, text)``."""


def reading_order(boxes: Sequence[Box]) -> list[list[Box]]:
    """Group text boxes into lines, top to bottom, each line left to right.

    A box joins the current line when its vertical centre lies within half the line's median box height of
    the line's first box; boxes are visited by their vertical centre.
    """
    ordered = sorted(boxes, key=lambda b: ((b[1] + b[3]) / 2, b[0]))
    lines: list[list[Box]] = []
    for box in ordered:
        centre = (box[1] + box[3]) / 2
        if lines:
            line = lines[-1]
            heights = sorted(b[3] - b[1] for b in line)
            anchor = (line[0][1] + line[0][3]) / 2
            if abs(centre - anchor) <= max(1.0, heights[len(heights) // 2] / 2):
                line.append(box)
                continue
        lines.append([box])
    return [sorted(line, key=lambda b: b[0]) for line in lines]


class RapidOCRReader:
    """Reads a page with RapidOCR (PP-OCRv6, ONNX, CPU).

    Args:
        text_score: Drop recognised boxes scored below this (RapidOCR's default 0.5).
        threads: onnxruntime intra-op threads (-1: all cores).
        params: Extra RapidOCR settings (dotted names, e.g. ``{"Det.limit_side_len": 960}``).

    Raises:
        MissingDependencyError: If ``rapidocr`` or ``onnxruntime`` is not installed (extra ``ocr``).
    """

    name = "rapidocr"

    def __init__(
        self, *, text_score: float = 0.5, threads: int = -1, params: dict[str, Any] | None = None
    ) -> None:
        try:
            import onnxruntime  # noqa: F401
            from rapidocr import RapidOCR
        except ImportError as exc:
            missing = "onnxruntime" if getattr(exc, "name", "") == "onnxruntime" else "rapidocr"
            raise MissingDependencyError(missing, "ocr", "the rapidocr reader") from exc
        settings: dict[str, Any] = {
            "Global.use_cls": False,
            "Global.text_score": text_score,
            "Global.log_level": "error",
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
        }
        settings.update(params or {})
        self._engine = RapidOCR(params=settings)
        self._lock = threading.Lock()  # one engine, one page at a time

    def boxes(self, image: Image.Image) -> list[Box]:
        """The recognised text boxes of an image, in the engine's order.

        Raises:
            RecallError: If the OCR engine fails.
        """
        import numpy as np

        pixels = np.asarray(image.convert("RGB"))
        try:
            with self._lock:
                result: Any = self._engine(pixels)  # RapidOCROutput when det and rec both run
        except Exception as exc:  # the engine raises assorted cv2/onnxruntime errors
            raise RecallError(f"rapidocr failed on a {image.width}x{image.height} image: {exc}") from exc
        if result is None or result.boxes is None or result.txts is None:
            return []
        out: list[Box] = []
        for quad, text in zip(result.boxes, result.txts, strict=True):
            xs = [float(p[0]) for p in quad]
            ys = [float(p[1]) for p in quad]
            out.append((min(xs), min(ys), max(xs), max(ys), str(text)))
        return out

    def read(
        self,
        image: Image.Image,
        *,
        rung: Rung | str | None = None,
        page: int | None = None,
    ) -> Reading:
        """Read a page: boxes re-sorted into reading order, one line per text line, words joined by spaces.

        Raises:
            RecallError: If the OCR engine fails.
        """
        r = resolve_rung(image, rung)
        start = time.perf_counter()
        lines = reading_order(self.boxes(image))
        text = "\n".join(" ".join(box[4] for box in line) for line in lines)
        seconds = time.perf_counter() - start
        logger.debug("rapidocr read %d lines from a %dpx page in %.2f s", len(lines), image.width, seconds)
        return Reading(text, self.name, r, seconds)
