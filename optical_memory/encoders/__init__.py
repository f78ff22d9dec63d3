"""Vision encoders: pages to vision tokens (DeepSeek-OCR DeepEncoder, and a deterministic fake).

``Encoder`` is the contract, ``FakeEncoder`` the numpy-only stand-in, ``get_encoder("fake" | "deepseek",
...)`` the name table. ``DeepSeekOCREncoder`` (and the ``checkpoint`` loader it shares with the recall
reader) need the ``model`` extra; they are imported on first use, so importing this package never imports
torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from optical_memory.encoders.base import (
    ENCODERS,
    GUNDAM,
    Encoder,
    FakeEncoder,
    as_numpy,
    encoded_positions,
    get_encoder,
)

if TYPE_CHECKING:
    from optical_memory.encoders.deepseek import DeepSeekOCREncoder

__all__ = [
    "ENCODERS",
    "GUNDAM",
    "DeepSeekOCREncoder",
    "Encoder",
    "FakeEncoder",
    "as_numpy",
    "encoded_positions",
    "get_encoder",
]


def __getattr__(name: str) -> Any:
    if name == "DeepSeekOCREncoder":
        from optical_memory.encoders.deepseek import DeepSeekOCREncoder

        return DeepSeekOCREncoder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
