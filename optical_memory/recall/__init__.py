"""Recall: read a page back as text (DeepSeek-OCR decoder, CPU OCR, an endpoint, or the kept text).

- :class:`RecallBackend` is the reader contract, :data:`READERS` the name table and :func:`get_reader` builds
  a reader by name (imports are lazy: naming ``rapidocr`` never imports torch);
- :func:`recall_page` reads a page of a memory with the right default reader;
- :data:`RECALL_TOOL` / :func:`handle_tool_call` expose recall to an agent as an OpenAI tool;
- :mod:`optical_memory.recall.metrics` scores a reading, :mod:`optical_memory.recall.forgetting` measures the
  forgetting curve down the ladder.
"""

from optical_memory.recall.api import default_reader_name, recall_page
from optical_memory.recall.base import READERS, Reading, RecallBackend, get_reader, reader_names
from optical_memory.recall.metrics import bag_recall, char_accuracy
from optical_memory.recall.tool import RECALL_TOOL, handle_tool_call

__all__ = [
    "READERS",
    "RECALL_TOOL",
    "Reading",
    "RecallBackend",
    "bag_recall",
    "char_accuracy",
    "default_reader_name",
    "get_reader",
    "handle_tool_call",
    "reader_names",
    "recall_page",
]
