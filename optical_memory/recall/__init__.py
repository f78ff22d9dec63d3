"""Recall: read a page back as text (DeepSeek-OCR decoder, CPU OCR, an endpoint, or the kept text).

- :class:`RecallBackend` is the reader contract, :data:`READERS` the name table and :func:`get_reader` builds
  a reader by name (imports are lazy: naming ``rapidocr`` never imports torch);
- :func:`recall_page` reads a page of a memory with the right default reader;
- :class:`MemoryTools` (``memory.tools(reader=...)``) exposes search and recall to an agent as tools;
- :mod:`optical_memory.recall.metrics` scores a reading, :mod:`optical_memory.recall.forgetting` measures the
  forgetting curve down the ladder.
"""

from optical_memory.recall.api import default_reader_name, recall_page
from optical_memory.recall.base import READERS, Reading, RecallBackend, get_reader, reader_names
from optical_memory.recall.metrics import bag_recall, char_accuracy
from optical_memory.recall.tools import MemoryTools, ToolResult

__all__ = [
    "READERS",
    "MemoryTools",
    "Reading",
    "RecallBackend",
    "ToolResult",
    "bag_recall",
    "char_accuracy",
    "default_reader_name",
    "get_reader",
    "reader_names",
    "recall_page",
]
