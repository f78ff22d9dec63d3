"""The recall contract: a reader turns a page image back into text.

A reader is anything with a ``name`` and ``read(image, *, rung=None, page=None) -> Reading``
(:class:`RecallBackend`). Readers are chosen by name through one table, :data:`READERS`, whose entries are
imported lazily, so naming ``rapidocr`` never imports torch and naming ``deepseek`` never imports onnxruntime:

=========  =====================================================================  ============
name       what reads the page                                                     needs
=========  =====================================================================  ============
exact      the text stored with the page (``keep_text=True``), no pixels read      nothing
rapidocr   PP-OCR (ONNX models inside the ``rapidocr`` wheel) on the CPU           extra ``ocr``
tesseract  the ``tesseract`` binary                                                Debian package
endpoint   any OpenAI-compatible server (e.g. vLLM serving DeepSeek-OCR)           extra ``endpoint``
deepseek   DeepSeek-OCR (DeepEncoder + 3B MoE decoder) from a local checkpoint     extra ``model``
=========  =====================================================================  ============

A classical OCR reading a downsampled page measures pixel loss, not DeepSeek-OCR's vision-token bottleneck,
so every :class:`Reading` (and every forgetting curve) names its reader.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from optical_memory.errors import ConfigError, InputError
from optical_memory.ladder import Rung, as_rung, rung_for_size

__all__ = [
    "READERS",
    "ReadCallback",
    "Reading",
    "RecallBackend",
    "get_reader",
    "reader_names",
    "resolve_rung",
]

logger = logging.getLogger(__name__)

ReadCallback = Callable[[str], None]
"""Called with each piece of text as a streaming reader produces it."""


@dataclass(frozen=True, slots=True)
class Reading:
    """What a reader made of one page.

    Attributes:
        text: The text read back (lines joined with ``\\n``).
        reader: Name of the reader that produced it (``rapidocr``, ``deepseek``, ...).
        rung: The rung the page was read at, or None for an image that is not at a ladder size.
        seconds: Wall-clock seconds the reading took (model loading excluded where the reader can tell).
        tokens: Tokens the reader generated, for model readers (None for classical OCR and ``exact``).
    """

    text: str
    reader: str
    rung: Rung | None
    seconds: float
    tokens: int | None = None


@runtime_checkable
class RecallBackend(Protocol):
    """A reader: one page image in, its text out."""

    name: str

    def read(
        self,
        image: Image.Image,
        *,
        rung: Rung | str | None = None,
        page: int | None = None,
    ) -> Reading:
        """Read the text of a page.

        Args:
            image: The page image (any mode; readers convert what they need).
            rung: The rung the page is at; None lets the reader infer it from the image size.
            page: The page's id in a memory, for readers that look up stored data (``exact``); image
                readers ignore it.

        Raises:
            RecallError: If the reader fails (a server that cannot be reached, an OCR engine error).
        """
        ...


READERS: dict[str, str] = {
    "exact": "optical_memory.recall.exact:ExactReader",
    "rapidocr": "optical_memory.recall.rapidocr:RapidOCRReader",
    "tesseract": "optical_memory.recall.tesseract:TesseractReader",
    "endpoint": "optical_memory.recall.endpoint:EndpointReader",
    "deepseek": "optical_memory.recall.deepseek:DeepSeekReader",
}
"""Reader name -> ``module:Class``, imported only when the reader is asked for."""


def reader_names() -> tuple[str, ...]:
    """The names :func:`get_reader` accepts."""
    return tuple(READERS)


def reader_class(name: str) -> type[Any]:
    """The class behind a reader name, imported now.

    Raises:
        ConfigError: For an unknown name.
    """
    key = str(name).strip().lower()
    try:
        target = READERS[key]
    except KeyError:
        raise ConfigError(f"unknown reader {name!r}: use one of {', '.join(READERS)}") from None
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)  # type: ignore[no-any-return]


def get_reader(name: str, **kwargs: Any) -> RecallBackend:
    """Build a reader by name.

    Args:
        name: One of :data:`READERS` (``exact``, ``rapidocr``, ``tesseract``, ``endpoint``, ``deepseek``).
        **kwargs: Passed to the reader's constructor (e.g. ``checkpoint=`` for ``deepseek``,
            ``base_url=`` for ``endpoint``).

    Raises:
        ConfigError: For an unknown name or settings the reader rejects.
        MissingDependencyError: If the reader's optional extra is not installed.
    """
    reader: RecallBackend = reader_class(name)(**kwargs)
    return reader


def resolve_rung(image: Image.Image, rung: Rung | str | None) -> Rung | None:
    """The rung a page is read at: the one given, else the rung whose size the square image has.

    Raises:
        InputError: If ``rung`` is ``forgotten`` (a forgotten page has no image to read).
        ConfigError: For an unknown rung name.
    """
    if rung is not None:
        r = as_rung(rung)
        if r is Rung.FORGOTTEN:
            raise InputError("a forgotten page has no image left to read")
        return r
    if image.width == image.height:
        return rung_for_size(image.width)
    return None
