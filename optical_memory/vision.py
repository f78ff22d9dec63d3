"""Vision tokens of a memory's pages: the configured encoder, and a cache of its output in the store.

Internal to :mod:`optical_memory.memory`. :class:`Vision` builds the encoder named by the config's
:class:`~optical_memory.config.EncoderConfig` on first use (the deterministic
:class:`~optical_memory.encoders.FakeEncoder` when none is configured, so nothing here needs torch), and the
DeepSeek-OCR tokenizer and token-embedding table that the ``embeddings`` context format needs.

:func:`page_tokens` returns the vision tokens of the pages a context shows. Sealed pages are encoded once per
(page, rung, encoder fingerprint, dtype): cached rows are read back from the store's ``vision_tokens``
table, and all missing pages are encoded together, one ``encode`` call per rung, then written to the cache.
The store deletes a page's rows whenever its stored image changes (demotion, re-rendering, forgetting), so
demoting a page re-encodes that page only. The open page changes with every add and is encoded on each call,
never cached.

Stored bytes are the tokens' raw little-endian values: float32 for the fake encoder, the encoder's dtype for
DeepSeek-OCR (bfloat16 as its 16-bit pattern, since numpy has no bfloat16).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from optical_memory.config import EncoderConfig
from optical_memory.errors import ConfigError
from optical_memory.ladder import Rung
from optical_memory.store import Store, TokenRow

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """One page whose vision tokens a context needs.

    Attributes:
        page_id: The page's id.
        rung: The rung it is shown at.
        image: Its image at that rung.
        cacheable: False for the open page (it changes with every add).
    """

    page_id: int
    rung: Rung
    image: Image.Image = field(repr=False)
    cacheable: bool = True


def dtype_name(encoder: Any) -> str:
    """The dtype an encoder returns, as a name (``float32`` for encoders that do not say)."""
    dtype = getattr(encoder, "dtype", None)
    return "float32" if dtype is None else str(dtype).removeprefix("torch.")


def to_row(page_id: int, rung: Rung, tokens: Any) -> TokenRow:
    """A cache row holding an encoder's output (a numpy array or a torch tensor)."""
    if isinstance(tokens, np.ndarray):
        array = tokens
    else:
        import torch

        tensor = tokens.detach().to("cpu")
        if tensor.dtype == torch.bfloat16:
            bits = tensor.contiguous().view(torch.int16).numpy()
            return TokenRow(page_id, rung.value, tuple(bits.shape), "bfloat16", _le_bytes(bits))
        array = tensor.numpy()
    return TokenRow(page_id, rung.value, tuple(array.shape), array.dtype.name, _le_bytes(array))


def _le_bytes(array: np.ndarray) -> bytes:
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def from_row(row: TokenRow) -> Any:
    """The tokens of a cache row: a float numpy array, or a torch tensor for bfloat16."""
    if row.dtype == "bfloat16":
        import torch

        bits = np.frombuffer(row.data, dtype="<i2").astype(np.int16).reshape(row.shape)  # a writable copy
        return torch.from_numpy(bits).view(torch.bfloat16)
    little = np.dtype(row.dtype).newbyteorder("<")
    return np.frombuffer(row.data, dtype=little).astype(row.dtype).reshape(row.shape)


class Vision:
    """The encoder, tokenizer and embedding table of one encoder config, each built on first use.

    Args:
        config: The memory config's encoder settings (None: the fake encoder, no checkpoint).
    """

    def __init__(self, config: EncoderConfig | None) -> None:
        self.config = config
        self._encoder: Any = None
        self._table: Any = None
        self._table_loaded = False

    @property
    def encoder(self) -> Any:
        """The encoder (built on first use).

        Raises:
            CheckpointError: If the DeepSeek-OCR checkpoint cannot be loaded.
            MissingDependencyError: If the ``model`` extra is needed and missing.
        """
        if self._encoder is None:
            from optical_memory.encoders import get_encoder

            cfg = self.config
            if cfg is None:
                self._encoder = get_encoder("fake")
            elif cfg.name == "fake":
                table = self.table
                width = {} if table is None else {"hidden_size": table.shape[1]}
                self._encoder = get_encoder("fake", **width)
            else:
                options = {
                    k: v
                    for k, v in (("device", cfg.device), ("dtype", cfg.dtype), ("batch_size", cfg.batch_size))
                    if v is not None
                }
                self._encoder = get_encoder(cfg.name, path=cfg.path, **options)
            logger.info("vision encoder %s", self._encoder.fingerprint)
        return self._encoder

    @property
    def table(self) -> Any:
        """The checkpoint's token-embedding table (memory-mapped), or None without one.

        Raises:
            CheckpointError: If the checkpoint folder cannot be read.
        """
        if not self._table_loaded:
            if self.config is not None and self.config.path:
                from optical_memory.encoders.checkpoint import embedding_table

                self._table = embedding_table(self.config.path)
            self._table_loaded = True
        return self._table

    def tokenizer_path(self) -> Path:
        """The ``tokenizer.json`` to use.

        Raises:
            ConfigError: If the config names neither a checkpoint folder nor a tokenizer.
        """
        cfg = self.config
        if cfg is not None and cfg.tokenizer:
            return Path(cfg.tokenizer)
        if cfg is not None and cfg.path:
            return Path(cfg.path) / "tokenizer.json"
        raise ConfigError(
            "the 'embeddings' context format needs a DeepSeek-OCR checkpoint folder (for its tokenizer.json "
            "and token embeddings): configure encoder={'name': 'deepseek', 'path': <checkpoint folder>} "
            "(or {'name': 'fake', 'tokenizer': <tokenizer.json>} for ids and fake vision tokens only)"
        )


def page_tokens(
    store: Store, sid: int, encoder: Any, requests: Sequence[TokenRequest]
) -> tuple[list[Any], list[TokenRow]]:
    """Vision tokens of each requested page, from the cache or encoded (one ``encode`` call per rung).

    Only reads the store: the caller writes the returned new rows with
    :meth:`~optical_memory.store.Store.put_vision_tokens` (in a short transaction of its own, so that no
    write lock is held while the encoder runs).

    Args:
        store: The memory's store (its ``vision_tokens`` table is read).
        sid: The session id.
        encoder: The encoder (its ``fingerprint`` and dtype key the cache).
        requests: The pages, in context order.

    Returns:
        Per request, the tokens (numpy arrays or torch tensors of shape (positions, hidden size)); and the
        cache rows of the sealed pages that were encoded.

    Raises:
        StoreError: If the store cannot be read.
    """
    fingerprint, dtype = encoder.fingerprint, dtype_name(encoder)
    keys = [(r.page_id, r.rung.value) for r in requests if r.cacheable]
    cached = store.vision_tokens(sid, fingerprint, keys, dtype)
    out: list[Any] = [None] * len(requests)
    missing: dict[Rung, list[int]] = {}
    for i, request in enumerate(requests):
        row = cached.get((request.page_id, request.rung.value)) if request.cacheable else None
        if row is not None:
            out[i] = from_row(row)
        else:
            missing.setdefault(request.rung, []).append(i)
    new_rows: list[TokenRow] = []
    for rung, indices in missing.items():
        encoded = encoder.encode([requests[i].image for i in indices], rung)
        for i, tokens in zip(indices, encoded, strict=True):
            out[i] = tokens
            if requests[i].cacheable:
                new_rows.append(to_row(requests[i].page_id, rung, tokens))
    n_missing = sum(map(len, missing.values()))
    logger.debug("vision tokens: %d cached, %d encoded", len(requests) - n_missing, n_missing)
    return out, new_rows
