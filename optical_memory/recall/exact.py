"""The ``exact`` reader: the text a page was rendered from, when the memory kept it (``keep_text=True``).

No pixels are read, so the answer is the same at every rung: this is the ceiling every other reader is
measured against, and the reader :func:`optical_memory.recall.recall_page` picks first when it can.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from PIL import Image

from optical_memory.errors import RecallError
from optical_memory.ladder import Rung
from optical_memory.recall.base import Reading, resolve_rung

__all__ = ["ExactReader"]

TextSource = Mapping[int, str] | Callable[[int], str | None]


class ExactReader:
    """Returns the stored text of a page.

    Args:
        source: Where the texts come from: a mapping page id -> text, a callable returning the text (or
            None when it was not kept), or an object with a ``page_text(page_id)`` method (a memory).
    """

    name = "exact"

    def __init__(self, source: TextSource | Any | None = None) -> None:
        self._source = source

    def _lookup(self, page: int) -> str | None:
        source = self._source
        if source is None:
            raise RecallError(
                "the exact reader has no stored texts to read from: build it with a memory "
                "(recall through memory.recall / recall_page) or pass source="
            )
        if isinstance(source, Mapping):
            return source.get(page)
        if hasattr(source, "page_text"):
            return source.page_text(page)  # type: ignore[no-any-return,unused-ignore]
        if callable(source):
            return source(page)
        raise RecallError(f"the exact reader cannot look texts up in a {type(source).__name__}")

    def read(
        self,
        image: Image.Image | None = None,
        *,
        rung: Rung | str | None = None,
        page: int | None = None,
    ) -> Reading:
        """The stored text of page ``page`` (the image, if any, is not looked at).

        Raises:
            RecallError: Without a page id, or when that page's text was not kept.
        """
        start = time.perf_counter()
        if page is None:
            raise RecallError("the exact reader reads stored text by page id: pass page=")
        text = self._lookup(page)
        if text is None:
            raise RecallError(
                f"the text of page {page} was not kept (keep_text=False): read its image with another "
                "reader instead, e.g. reader='rapidocr'"
            )
        r = resolve_rung(image, rung) if image is not None else (None if rung is None else Rung(rung))
        return Reading(text, self.name, r, time.perf_counter() - start)
