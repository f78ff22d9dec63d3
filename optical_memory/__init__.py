"""optical-memory: recent chat turns stay text, older turns become page images that fade down a ladder.

The object users hold is :class:`OpticalMemory`; the rest of this namespace is the small set of value
types it takes and returns, plus the pieces agents wire in directly (the memory's tools, the contact sheet).
Heavier parts live in subpackages: ``optical_memory.renderers``, ``optical_memory.policies``,
``optical_memory.encoders`` (DeepSeek-OCR; needs the ``model`` extra) and ``optical_memory.recall``.
"""

from optical_memory.config import EncoderConfig, MemoryConfig
from optical_memory.context import AddResult, Context, PageInfo, Usage
from optical_memory.conversation import load_conversation
from optical_memory.embeddings import EmbeddingInputs
from optical_memory.errors import (
    CheckpointError,
    ConfigError,
    InputError,
    MissingDependencyError,
    OpticalMemoryError,
    PageNotFoundError,
    ProviderError,
    RecallError,
    StoreError,
)
from optical_memory.ladder import Rung
from optical_memory.memory import OpticalMemory
from optical_memory.pricing.providers import Provider, get_provider
from optical_memory.recall import MemoryTools, Reading, ToolResult
from optical_memory.recall.search import SearchHit
from optical_memory.sheet import contact_sheet
from optical_memory.types import RenderedPage, Turn, TurnImage, TurnSpan

__version__ = "0.1.0"

__all__ = [
    "AddResult",
    "CheckpointError",
    "ConfigError",
    "Context",
    "EmbeddingInputs",
    "EncoderConfig",
    "InputError",
    "MemoryConfig",
    "MemoryTools",
    "MissingDependencyError",
    "OpticalMemory",
    "OpticalMemoryError",
    "PageInfo",
    "PageNotFoundError",
    "Provider",
    "ProviderError",
    "Reading",
    "RecallError",
    "RenderedPage",
    "Rung",
    "SearchHit",
    "StoreError",
    "ToolResult",
    "Turn",
    "TurnImage",
    "TurnSpan",
    "Usage",
    "__version__",
    "contact_sheet",
    "get_provider",
    "load_conversation",
]
