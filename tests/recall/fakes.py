"""Readers for tests that need no OCR engine or model."""

from __future__ import annotations

import time

from PIL import Image

from optical_memory.ladder import Rung
from optical_memory.recall.base import Reading, resolve_rung


class ConstantReader:
    """Reads every page as the same text (default ``"hello page"``)."""

    name = "constant"

    def __init__(self, text: str = "hello page") -> None:
        self.text = text
        self.calls: list[tuple[int, Rung | None]] = []

    def read(self, image: Image.Image, *, rung: Rung | str | None = None, page: int | None = None) -> Reading:
        r = resolve_rung(image, rung)
        self.calls.append((image.width, r))
        return Reading(self.text, self.name, r, 0.0)


class FadingReader:
    """Returns the first ``side / 1280`` of a known text: accuracy falls with the page side."""

    name = "fading"

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.index = 0

    def read(self, image: Image.Image, *, rung: Rung | str | None = None, page: int | None = None) -> Reading:
        start = time.perf_counter()
        text = self.texts[self.index // 6]  # forgetting_curve reads page by page, 6 levels each
        self.index += 1
        kept = text[: int(len(text) * image.width / 1280)]
        return Reading(kept, self.name, resolve_rung(image, rung), time.perf_counter() - start)
