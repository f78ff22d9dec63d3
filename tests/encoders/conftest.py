"""Shared fixtures: one tiny random DeepSeek-OCR model and its official-layout checkpoint per session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.encoders.tiny import make_tiny_checkpoint, make_tiny_model


@pytest.fixture(scope="session")
def tiny_model() -> Any:
    """The random UnlimitedOcrForConditionalGeneration saved in ``tiny_checkpoint`` (do not modify)."""
    return make_tiny_model(seed=0)


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_model: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder in the official DeepSeek-OCR layout holding ``tiny_model``'s weights."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny-ocr"), model=tiny_model)


@pytest.fixture(scope="session")
def tiny_encoder(tiny_checkpoint: Path) -> Any:
    from optical_memory.encoders import DeepSeekOCREncoder

    return DeepSeekOCREncoder.from_pretrained(tiny_checkpoint, device="cpu", batch_size=2)
