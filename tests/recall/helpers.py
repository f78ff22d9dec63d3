"""Test fixtures for recall: a byte-level tokenizer with DeepSeek-OCR's special-token ids, and a tiny
random DeepSeek-OCR checkpoint folder that the ``deepseek`` reader can load (weights from
``tests/encoders/tiny.py`` plus this ``tokenizer.json``).

The tokenizer has no merges (one token per byte, ids 3-258), the three sentence tokens at 0-2 and the
DeepSeek-OCR specials at their real ids (``<image>`` 128815 ... ``<|Assistant|>`` 128826), so prompts are
built exactly as with the real ``tokenizer.json``; ids between are unused placeholders.

Also :func:`add_reply_headers`, for the endpoint tests' chat server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.servers import ChatServer

SPECIALS = {
    "<｜begin▁of▁sentence｜>": 0,
    "<｜end▁of▁sentence｜>": 1,
    "<｜▁pad▁｜>": 2,
    "<image>": 128815,
    "<|ref|>": 128816,
    "<|/ref|>": 128817,
    "<|det|>": 128818,
    "<|/det|>": 128819,
    "<|grounding|>": 128820,
    "<td>": 128821,
    "</td>": 128822,
    "<tr>": 128823,
    "</tr>": 128824,
    "<|User|>": 128825,
    "<|Assistant|>": 128826,
}
VOCAB_SIZE = 128827


def make_tokenizer(*, spaced: bool = False) -> Any:
    """A ``tokenizers.Tokenizer``: byte-level, no merges, DeepSeek-OCR special ids.

    With ``spaced`` each placeholder decodes as a word and a space (``<unused_5> ``), so transformers'
    streamers, which hand out text a whole word at a time, hand out a random model's text token by token.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {name: i for name, i in SPECIALS.items() if i < 3}
    vocab.update({ch: 3 + i for i, ch in enumerate(alphabet)})
    by_id = {i: name for name, i in SPECIALS.items()}
    tail = "Ġ" if spaced else ""  # the byte-level alphabet's space
    for i in range(len(vocab), VOCAB_SIZE):
        vocab[by_id.get(i, f"<unused_{i}>{tail}")] = i
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(name, special=True, normalized=False) for name in SPECIALS])
    return tok


def write_tokenizer(folder: str | Path) -> Path:
    """Save :func:`make_tokenizer` as ``folder/tokenizer.json``."""
    path = Path(folder) / "tokenizer.json"
    make_tokenizer().save(str(path))
    return path


def make_reader_checkpoint(folder: str | Path, *, seed: int = 0, **kw: Any) -> Path:
    """A tiny random DeepSeek-OCR checkpoint folder with a ``tokenizer.json`` (official layout)."""
    from tests.encoders.tiny import make_tiny_checkpoint

    path = make_tiny_checkpoint(folder, seed=seed, **kw)
    write_tokenizer(path)
    return path


def add_reply_headers(server: ChatServer, headers: dict[str, str]) -> None:
    """Make ``server`` send ``headers`` with every answer from now on (``Retry-After``, ``Content-Encoding``)."""
    base = server.httpd.RequestHandlerClass

    class Handler(base):  # type: ignore[valid-type, misc]
        def end_headers(self) -> None:
            for key, value in headers.items():
                self.send_header(key, value)
            super().end_headers()

    server.httpd.RequestHandlerClass = Handler
