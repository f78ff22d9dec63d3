"""Offline tiktoken encodings built from the bundled BPE files."""

import pytest

from optical_memory import tokens
from optical_memory.errors import CheckpointError, ConfigError


def test_o200k_known_ids_offline(monkeypatch):
    # No network here: the encoding must come from package data, not tiktoken's download cache.
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "/nonexistent")
    enc = tokens.get_encoding("o200k_base")
    assert enc.encode("hello world") == [24912, 2375]
    assert enc.n_vocab == 200019


def test_cl100k_known_ids():
    enc = tokens.get_encoding("cl100k_base")
    assert enc.encode("hello world") == [15339, 1917]


def test_count_tokens_handles_special_text_and_empty():
    assert tokens.count_tokens("") == 0
    assert tokens.count_tokens("<|endoftext|>") > 1  # counted as text, never as a control token
    assert tokens.count_tokens("你好，世界") >= 2


def test_unknown_encoding_is_a_clear_error():
    with pytest.raises(ConfigError, match="o200k_base, cl100k_base"):
        tokens.get_encoding("p50k_base")


def test_deepseek_tokenizer_needs_a_folder(tmp_path):
    with pytest.raises(CheckpointError, match=r"tokenizer\.json"):
        tokens.deepseek_tokenizer(tmp_path)


def test_deepseek_tokenizer_from_folder(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import models, pre_tokenizers

    tok = tokenizers.Tokenizer(models.WordLevel({"[UNK]": 0, "hello": 1, "world": 2}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(tmp_path / "tokenizer.json"))
    assert tokens.count_deepseek_tokens("hello world hello", tmp_path) == 3
