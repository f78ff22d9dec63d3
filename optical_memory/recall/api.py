"""Recall a page of a memory: pick a reader, fetch the page, read it.

:func:`recall_page` is what ``OpticalMemory.recall(page_id, *, reader=None)`` calls. The default reader is
``exact`` when the page's text was kept (``keep_text=True``), else ``rapidocr`` when the ``ocr`` extra is
installed, else a :class:`~optical_memory.errors.MissingDependencyError` naming that extra. Readers are not
cached process-wide: each memory keeps the ones it built (``readers=``), or the caller passes one.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import MutableMapping
from typing import Any, Protocol

from PIL import Image

from optical_memory.errors import MissingDependencyError, PageNotFoundError, RecallError
from optical_memory.ladder import Rung
from optical_memory.recall.base import Reading, RecallBackend, get_reader
from optical_memory.recall.exact import ExactReader

__all__ = ["built_reader", "default_reader_name", "reader_name", "recall_page"]

logger = logging.getLogger(__name__)


class _Memory(Protocol):
    """What recall needs of a memory (``OpticalMemory`` has it)."""

    def pages(self) -> list[Any]: ...

    def page_image(self, page_id: int) -> Image.Image: ...

    def page_text(self, page_id: int) -> str | None: ...


def _ocr_installed() -> bool:
    return (
        importlib.util.find_spec("rapidocr") is not None
        and importlib.util.find_spec("onnxruntime") is not None
    )


def default_reader_name(*, text_kept: bool) -> str:
    """``exact`` for a page whose text was kept, else ``rapidocr``.

    Raises:
        MissingDependencyError: When the text was not kept and the ``ocr`` extra is not installed.
    """
    if text_kept:
        return "exact"
    if _ocr_installed():
        return "rapidocr"
    raise MissingDependencyError("rapidocr", "ocr", "recalling a page whose text was not kept")


def recall_page(
    memory: _Memory,
    page_id: int,
    reader: str | RecallBackend | None = None,
    *,
    readers: MutableMapping[str, RecallBackend] | None = None,
) -> Reading:
    """Read page ``page_id`` of ``memory`` back as text.

    Args:
        memory: An ``OpticalMemory`` (anything with ``pages()``, ``page_image()`` and ``page_text()``).
        page_id: The page to read.
        reader: A reader name (``exact``, ``rapidocr``, ``tesseract``, ``endpoint``, ``deepseek``), a reader
            instance, or None for the default (see the module docstring).
        readers: Readers already built, by name: one named here is used, one built is added (a memory
            keeps its own, so a second recall does not load OCR models or a checkpoint again).

    Returns:
        The :class:`Reading`, which names the reader and the rung the page was read at.

    Raises:
        PageNotFoundError: If the memory has no such page.
        RecallError: If the page was forgotten and its text not kept, or the reader fails.
        MissingDependencyError: If the chosen reader's extra is not installed.
        ConfigError: For an unknown reader name.
    """
    info = next((p for p in memory.pages() if p.page_id == page_id), None)
    if info is None:
        raise PageNotFoundError(f"no page {page_id!r} in this memory")
    if reader is None:
        reader = default_reader_name(text_kept=info.text_kept)
    backend = ExactReader(memory) if reader_name(reader) == "exact" else built_reader(reader, readers)
    if backend.name == "exact":
        rung = None if info.rung is Rung.FORGOTTEN else info.rung
        return backend.read(None, rung=rung, page=page_id)  # type: ignore[arg-type]
    if info.rung is Rung.FORGOTTEN:
        hint = " (its text was kept: use reader='exact')" if info.text_kept else ""
        raise RecallError(f"page {page_id} was forgotten: there is no image left to read{hint}")
    image = memory.page_image(page_id)
    logger.debug("recalling page %d at %s with %s", page_id, info.rung, backend.name)
    return backend.read(image, rung=info.rung, page=page_id)


def reader_name(reader: str | RecallBackend) -> str:
    """The name of a reader, given by name or as an object."""
    return reader.strip().lower() if isinstance(reader, str) else reader.name


def built_reader(
    reader: str | RecallBackend, readers: MutableMapping[str, RecallBackend] | None = None
) -> RecallBackend:
    """The reader object ``reader`` names (``exact`` aside), taken from or added to ``readers``.

    Raises:
        ConfigError: For an unknown reader name.
        MissingDependencyError: If the reader needs an extra that is not installed.
    """
    if not isinstance(reader, str):
        return reader
    name = reader_name(reader)
    backend = None if readers is None else readers.get(name)
    if backend is None:
        backend = get_reader(name)
        if readers is not None:
            readers[name] = backend
    return backend
