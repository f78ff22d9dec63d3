"""Text token counting that works offline.

tiktoken downloads its BPE rank files on first use, which fails on machines without internet and behind
firewalls. The two files we need (o200k_base, cl100k_base, as OpenAI publishes them) ship gzipped in
``optical_memory/data``; they are checked against the sha256 tiktoken itself expects and turned into
``tiktoken.Encoding`` objects with the same split patterns and special tokens as tiktoken's registry, so
ids are identical to ``tiktoken.get_encoding(name)``.

The DeepSeek-OCR tokenizer (``tokenizer.json`` in a checkpoint folder) is available through
:func:`deepseek_tokenizer` when the ``tokenizers`` package is installed.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import threading
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tiktoken

from optical_memory.errors import CheckpointError, ConfigError, MissingDependencyError

if TYPE_CHECKING:
    import tokenizers

DEFAULT_ENCODING = "o200k_base"

_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
_CL100K_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""

# name -> (split pattern, special tokens, sha256 of the uncompressed rank file as tiktoken expects it)
_ENCODINGS: dict[str, tuple[str, dict[str, int], str]] = {
    "o200k_base": (
        _O200K_PATTERN,
        {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "cl100k_base": (
        _CL100K_PATTERN,
        {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
}
ENCODINGS = tuple(_ENCODINGS)

_lock = threading.Lock()


def _load_ranks(name: str, expected_sha256: str) -> dict[bytes, int]:
    raw = gzip.decompress(resources.files("optical_memory.data").joinpath(f"{name}.tiktoken.gz").read_bytes())
    digest = hashlib.sha256(raw).hexdigest()
    if digest != expected_sha256:
        raise ConfigError(
            f"the bundled {name} BPE file is corrupt (sha256 {digest}); reinstall optical-memory"
        )
    ranks: dict[bytes, int] = {}
    for line in raw.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


@functools.cache
def _build(name: str) -> tiktoken.Encoding:
    pattern, special, sha = _ENCODINGS[name]
    return tiktoken.Encoding(
        name=name, pat_str=pattern, mergeable_ranks=_load_ranks(name, sha), special_tokens=special
    )


def get_encoding(name: str = DEFAULT_ENCODING) -> tiktoken.Encoding:
    """A tiktoken encoding built from the bundled BPE file, with no network access.

    Raises:
        ConfigError: For an encoding that is not bundled.
    """
    if name not in _ENCODINGS:
        raise ConfigError(f"unknown text encoding {name!r}: use one of {', '.join(ENCODINGS)}")
    with _lock:  # building takes ~1 s; do it once even when threads race
        return _build(name)


def count_tokens(text: str, encoding: str = DEFAULT_ENCODING) -> int:
    """Number of tokens of ``text`` in a bundled tiktoken encoding (special tokens counted as text)."""
    if not text:
        return 0
    return len(get_encoding(encoding).encode(text, disallowed_special=()))


@functools.cache
def _deepseek_tokenizer(path: str) -> tokenizers.Tokenizer:
    try:
        import tokenizers
    except ImportError as exc:
        raise MissingDependencyError("tokenizers", "model", "the DeepSeek tokenizer") from exc
    return tokenizers.Tokenizer.from_file(path)


def deepseek_tokenizer(checkpoint: str | Path) -> tokenizers.Tokenizer:
    """The DeepSeek-OCR tokenizer from a checkpoint folder (or a ``tokenizer.json`` path).

    Raises:
        CheckpointError: If the folder has no ``tokenizer.json``.
        MissingDependencyError: If ``tokenizers`` is not installed.
    """
    path = Path(checkpoint)
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise CheckpointError(f"no tokenizer.json at {path}: point to the DeepSeek-OCR checkpoint folder")
    return _deepseek_tokenizer(str(path.resolve()))


def count_deepseek_tokens(text: str, checkpoint: str | Path) -> int:
    """Tokens of ``text`` for the DeepSeek-OCR language model (no BOS added)."""
    tok: Any = deepseek_tokenizer(checkpoint)
    return len(tok.encode(text, add_special_tokens=False).ids) if text else 0
