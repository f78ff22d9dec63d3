"""The encoder contract, a deterministic fake, and the name table.

An encoder turns page images into the vision tokens a DeepSeek-style language model reads in place of the
text: per image, an array of shape ``(positions, hidden_size)`` holding exactly the sequence positions the
model sees (a newline token after every grid row and one view separator included): 421 at Large, 273 at
Base, 111 at Small, 73 at Tiny, and ``10h(10w + 1) + 273`` for a Gundam image cut into w x h tiles.

:class:`FakeEncoder` needs only numpy and returns seeded random tokens of exactly those shapes, derived from
a hash of the pixels, so equal pages give equal tokens; the memory uses it when no checkpoint is configured,
and tests, examples and docs run the whole pipeline with it in milliseconds.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from optical_memory.errors import ConfigError, InputError
from optical_memory.ladder import (
    GUNDAM_MAX_TILES,
    GUNDAM_MIN_TILES,
    Rung,
    as_rung,
    gundam_grid,
    spec,
)
from optical_memory.pricing.deepseek import gundam_positions, positions

__all__ = ["ENCODERS", "GUNDAM", "Encoder", "FakeEncoder", "as_numpy", "encoded_positions", "get_encoder"]

GUNDAM = "gundam"
"""The mode name for tiled images larger than a page (not a rung of the ladder)."""


@runtime_checkable
class Encoder(Protocol):
    """Pages to vision tokens.

    Attributes:
        fingerprint: A stable string naming the weights (cache key for stored tokens).
        hidden_size: Width of each token (1280 for DeepSeek-OCR).
    """

    @property
    def fingerprint(self) -> str: ...

    @property
    def hidden_size(self) -> int: ...

    def encode(self, images: Sequence[Image.Image], rung: Rung | str) -> list[Any]:
        """Per image, an array of shape ``(encoded_positions(image, rung), hidden_size)``."""
        ...


def parse_mode(rung: Rung | str) -> Rung | str:
    """A visible rung, or ``"gundam"``.

    Raises:
        ConfigError: For an unknown name or ``forgotten`` (which has no page to encode).
    """
    if isinstance(rung, str) and rung.strip().lower() == GUNDAM:
        return GUNDAM
    r = as_rung(rung)
    spec(r)  # refuses 'forgotten'
    return r


def encoded_positions(
    size: tuple[int, int],
    rung: Rung | str,
    *,
    min_tiles: int = GUNDAM_MIN_TILES,
    max_tiles: int = GUNDAM_MAX_TILES,
) -> int:
    """Sequence positions an image of ``size`` (width, height) takes at ``rung`` (or ``"gundam"``).

    Raises:
        ConfigError: For an unknown rung or ``forgotten``.
        InputError: For a non-positive size in Gundam mode.
    """
    mode = parse_mode(rung)
    if mode == GUNDAM:
        cols, rows = gundam_grid(size[0], size[1], min_tiles=min_tiles, max_tiles=max_tiles)
        return gundam_positions(cols, rows)
    return positions(mode)


def as_numpy(tokens: Any) -> np.ndarray:
    """Tokens from any encoder as a float32 numpy array on the CPU (torch bf16 tensors included)."""
    if isinstance(tokens, np.ndarray):
        return tokens.astype(np.float32, copy=False)
    detach = getattr(tokens, "detach", None)
    if detach is not None:  # a torch tensor: numpy has no bfloat16
        return np.asarray(detach().float().cpu().numpy(), dtype=np.float32)
    return np.asarray(tokens, dtype=np.float32)


class FakeEncoder:
    """Deterministic stand-in for the DeepEncoder: seeded random tokens of the exact shapes.

    The tokens of an image depend only on its pixels (mode, size and bytes), the rung, the seed and the
    width, so equal pages give equal tokens and any change of pixels gives different ones.

    Args:
        hidden_size: Token width (DeepSeek-OCR: 1280).
        seed: Mixed into every hash, to make independent fakes.
        max_tiles: Largest Gundam tile count (DeepSeek-OCR's HF code: 9; vLLM: 6).
    """

    def __init__(self, hidden_size: int = 1280, *, seed: int = 0, max_tiles: int = GUNDAM_MAX_TILES) -> None:
        if hidden_size <= 0:
            raise ConfigError(f"hidden_size must be positive, got {hidden_size}")
        self._hidden_size = int(hidden_size)
        self._seed = int(seed)
        self._max_tiles = int(max_tiles)

    @property
    def fingerprint(self) -> str:
        """``fake:<hidden_size>:<seed>:<max_tiles>``."""
        return f"fake:{self._hidden_size}:{self._seed}:{self._max_tiles}"

    @property
    def hidden_size(self) -> int:
        """Token width."""
        return self._hidden_size

    def encode(self, images: Sequence[Image.Image], rung: Rung | str) -> list[np.ndarray]:
        """Per image, a float32 array of shape ``(positions, hidden_size)``.

        Raises:
            ConfigError: For an unknown rung or ``forgotten``.
            InputError: If an item is not a PIL image.
        """
        mode = parse_mode(rung)
        out = []
        for image in images:
            if not isinstance(image, Image.Image):
                raise InputError(f"expected a PIL image, got {type(image).__name__}")
            n = encoded_positions(image.size, mode, max_tiles=self._max_tiles)
            digest = hashlib.sha256()
            digest.update(f"{self._seed}|{mode}|{image.mode}|{image.size}|".encode())
            digest.update(image.tobytes())
            rng = np.random.default_rng(int.from_bytes(digest.digest()[:8], "little"))
            out.append(rng.standard_normal((n, self._hidden_size), dtype=np.float32))
        return out


def _fake(**kwargs: Any) -> Encoder:
    return FakeEncoder(**kwargs)


def _deepseek(**kwargs: Any) -> Encoder:
    path = kwargs.pop("path", None) or kwargs.pop("checkpoint", None)
    if path is None:
        raise ConfigError("the 'deepseek' encoder needs path=<folder of the DeepSeek-OCR checkpoint>")
    module = importlib.import_module("optical_memory.encoders.deepseek")
    encoder: Encoder = module.DeepSeekOCREncoder.from_pretrained(path, **kwargs)
    return encoder


ENCODERS: dict[str, Callable[..., Encoder]] = {"fake": _fake, "deepseek": _deepseek}
"""Encoder names and their factories; ``deepseek`` imports torch only when called."""


def get_encoder(name: str, **kwargs: Any) -> Encoder:
    """Build an encoder by name: ``"fake"`` (numpy only) or ``"deepseek"`` (``path=`` a checkpoint folder).

    Raises:
        ConfigError: For an unknown name or a missing ``path``.
        CheckpointError: If the DeepSeek-OCR checkpoint cannot be loaded.
        MissingDependencyError: If the ``model`` extra is needed and not installed.
    """
    factory = ENCODERS.get(name.strip().lower())
    if factory is None:
        raise ConfigError(f"unknown encoder {name!r}: use one of {', '.join(sorted(ENCODERS))}")
    return factory(**kwargs)
