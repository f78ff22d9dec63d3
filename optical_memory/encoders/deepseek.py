"""The DeepSeek-OCR DeepEncoder: page images to the vision tokens its language model reads.

The network is transformers' (``unlimited_ocr``: SAM-B with window attention and two stride-2 convs, CLIP-L
fed with the SAM features, a 2048 -> 1280 linear projector, a learned newline after every grid row, local
tiles then global view then the view separator), loaded from the user's official checkpoint folder by
:mod:`optical_memory.encoders.checkpoint` (vision tensors only, memory-mapped). This module adds the
preprocessing (:mod:`optical_memory.encoders.preprocess`), batching and the encoder contract.

Sources: DeepSeek-OCR (arXiv 2510.18234) Table 1; HF ``modeling_deepseekocr.py`` (``infer``); transformers
5.23 ``UnlimitedOcrModel.get_image_features``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from optical_memory.encoders.base import GUNDAM, encoded_positions, parse_mode
from optical_memory.encoders.checkpoint import CheckpointFiles, load_checkpoint_dir, load_vision_model
from optical_memory.encoders.checkpoint import vision_fingerprint as _vision_fingerprint
from optical_memory.encoders.preprocess import normalize_bytes, page_bytes, prepare_gundam
from optical_memory.encoders.sam_attention import fold_sam_attention
from optical_memory.errors import ConfigError
from optical_memory.ladder import GUNDAM_MAX_TILES, GUNDAM_MIN_TILES, Rung

__all__ = ["DeepSeekOCREncoder", "default_device", "resolve_dtype"]

logger = logging.getLogger(__name__)

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def default_device() -> torch.device:
    """CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_dtype(dtype: torch.dtype | str | None, device: torch.device) -> torch.dtype:
    """The compute dtype: as given, else bfloat16 on CUDA and float32 elsewhere.

    Raises:
        ConfigError: For a dtype name that is not float32, bfloat16 or float16.
    """
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return _DTYPES[str(dtype).strip().lower().removeprefix("torch.")]
    except KeyError:
        raise ConfigError(f"unknown dtype {dtype!r}: use float32, bfloat16 or float16") from None


class DeepSeekOCREncoder:
    """Pages to DeepSeek-OCR vision tokens, with transformers' network and the official weights.

    Build it with :meth:`from_pretrained`. ``encode`` returns, per image, a tensor of shape
    ``(positions, 1280)`` on :attr:`device` in :attr:`dtype`: 421 / 273 / 111 / 73 positions at
    Large / Base / Small / Tiny and ``10h(10w + 1) + 273`` in Gundam mode.

    Args:
        model: A ``DeepEncoderModel`` (or any ``UnlimitedOcrModel``) in eval mode.
        fingerprint: Stable name of the weights.
        batch_size: Pages per forward pass.
        min_tiles: Smallest Gundam tile count.
        max_tiles: Largest Gundam tile count (DeepSeek-OCR's HF code: 9; vLLM: 6).
    """

    def __init__(
        self,
        model: Any,
        *,
        fingerprint: str,
        batch_size: int = 8,
        min_tiles: int = GUNDAM_MIN_TILES,
        max_tiles: int = GUNDAM_MAX_TILES,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self.model = model
        self._fingerprint = fingerprint
        self.batch_size = int(batch_size)
        self.min_tiles = int(min_tiles)
        self.max_tiles = int(max_tiles)

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path | CheckpointFiles,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        batch_size: int | None = None,
        max_tiles: int = GUNDAM_MAX_TILES,
        fold_attention: bool = True,
        compile: bool = False,
    ) -> DeepSeekOCREncoder:
        """Load the DeepEncoder from a DeepSeek-OCR checkpoint folder (no network; vision tensors only).

        Args:
            path: The folder as users download it (``config.json``, safetensors and index, ...).
            device: Default CUDA when available, else CPU.
            dtype: Default bfloat16 on CUDA, float32 on CPU.
            batch_size: Pages per forward pass (default 16 on CUDA, 2 on CPU).
            max_tiles: Largest Gundam tile count.
            fold_attention: Run SAM attention with its relative-position bias folded into q and k
                (:mod:`optical_memory.encoders.sam_attention`): the same numbers without the dense mask.
            compile: ``torch.compile`` SAM and CLIP (on an H100 this fuses the dense rel-pos bias of SAM's
                global attention and ran Base pages 2.5 times faster; each new batch shape compiles first).

        Raises:
            CheckpointError: If files are missing, pickle-only, or a vision tensor is missing, unexpected or
                mis-shaped (the message lists the keys).
            ConfigError: For an unknown dtype name.
        """
        dev = torch.device(device) if device is not None else default_device()
        dt = resolve_dtype(dtype, dev)
        files = path if isinstance(path, CheckpointFiles) else load_checkpoint_dir(path)
        model, _ = load_vision_model(files, device=dev, dtype=dt)
        if fold_attention:
            fold_sam_attention(model)
        if compile:
            model.vision_tower.sam_encoder.compile()
            model.vision_tower.vision_encoder.compile()
        fingerprint = _vision_fingerprint(files)
        logger.info("loaded DeepEncoder %s from %s on %s (%s)", fingerprint, files.root, dev, dt)
        size = batch_size if batch_size is not None else (16 if dev.type == "cuda" else 2)
        return cls(model, fingerprint=fingerprint, batch_size=size, max_tiles=max_tiles)

    @property
    def fingerprint(self) -> str:
        """``deepseek-ocr:<hash>`` of the vision weights (path-independent)."""
        return self._fingerprint

    @property
    def hidden_size(self) -> int:
        """Token width (1280 for DeepSeek-OCR)."""
        return int(self.model.config.text_config.hidden_size)

    @property
    def device(self) -> torch.device:
        """Where the weights and the returned tokens live."""
        return next(self.model.parameters()).device  # type: ignore[no-any-return]

    @property
    def dtype(self) -> torch.dtype:
        """Compute dtype of the weights and the returned tokens."""
        return next(self.model.parameters()).dtype  # type: ignore[no-any-return]

    def encode(self, images: Sequence[Image.Image], rung: Rung | str) -> list[torch.Tensor]:
        """Vision tokens for each image, ``batch_size`` images per forward pass.

        Args:
            images: PIL images (any mode; converted to RGB).
            rung: ``"large"``, ``"base"``, ``"small"``, ``"tiny"`` (or a :class:`Rung`), or ``"gundam"``.

        Returns:
            Per image a ``(positions, hidden_size)`` tensor on :attr:`device` in :attr:`dtype`.

        Raises:
            ConfigError: For an unknown rung or ``forgotten``.
            InputError: If an item is not a usable PIL image.
        """
        mode = parse_mode(rung)
        out: list[torch.Tensor] = []
        for batch in _chunks(list(images), self.batch_size):
            tokens = self._encode_gundam(batch) if mode == GUNDAM else self._encode_pages(batch, mode)
            for image, t in zip(batch, tokens, strict=True):
                want = encoded_positions(image.size, mode, min_tiles=self.min_tiles, max_tiles=self.max_tiles)
                assert t.shape == (want, self.hidden_size), (t.shape, want)
            out.extend(tokens)
        return out

    def _model_input(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 pixels to normalised model input on the model's device (4x less to copy than floats)."""
        device = self.device
        if device.type == "cuda":
            pixels = pixels.pin_memory()
        return normalize_bytes(pixels.to(device, non_blocking=True)).to(self.dtype)

    @torch.inference_mode()
    def _encode_pages(self, images: list[Image.Image], rung: Rung | str) -> list[torch.Tensor]:
        pixels = self._model_input(page_bytes(images, rung))  # (B, 3, S, S)
        features = self.model.get_image_features(pixel_values=pixels).pooler_output
        return list(features)

    @torch.inference_mode()
    def _encode_gundam(self, images: list[Image.Image]) -> list[torch.Tensor]:
        prepared = [prepare_gundam(im, min_tiles=self.min_tiles, max_tiles=self.max_tiles) for im in images]
        pixels = self._model_input(torch.stack([p.global_view for p in prepared]))  # (B, 3, 1024, 1024)
        counts = [p.tiles.shape[0] for p in prepared]
        local = None
        if sum(counts):
            local = self._model_input(torch.cat([p.tiles for p in prepared]))  # (tiles, 3, 640, 640)
        features = self.model.get_image_features(
            pixel_values=pixels,
            pixel_values_local=local,
            num_local_patches=counts if local is not None else None,
            patches_grid=[list(p.grid) for p in prepared],
        ).pooler_output
        return list(features)


def _chunks(items: list[Image.Image], size: int) -> Iterator[list[Image.Image]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
