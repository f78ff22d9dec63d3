"""Encoder settings, the embeddings format's errors, the torch-free default path, and stored PNG reuse."""

from __future__ import annotations

import base64
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from optical_memory.config import EncoderConfig, MemoryConfig, as_config
from optical_memory.errors import ConfigError
from optical_memory.ladder import Rung
from optical_memory.memory import OpticalMemory
from optical_memory.vision import from_row, to_row

from .helpers import turns


def test_encoder_config_validation_and_round_trip():
    assert MemoryConfig().encoder is None
    assert as_config({"encoder": "fake"}).encoder == EncoderConfig(name="fake")
    cfg = as_config({"encoder": {"name": "DeepSeek", "path": "/ckpt", "dtype": "bf16", "batch_size": 8}})
    assert cfg.encoder is not None and (cfg.encoder.name, cfg.encoder.dtype) == ("deepseek", "bfloat16")
    assert as_config(cfg.to_json()) == cfg
    with pytest.raises(ConfigError, match="unknown encoder 'clip'"):
        as_config({"encoder": {"name": "clip"}})
    with pytest.raises(ConfigError, match="needs path="):
        as_config({"encoder": "deepseek"})
    with pytest.raises(ConfigError, match="device apply to the 'deepseek' encoder only"):
        as_config({"encoder": {"name": "fake", "device": "cuda"}})
    with pytest.raises(ConfigError, match="unknown dtype"):
        as_config({"encoder": {"name": "deepseek", "path": "/x", "dtype": "int8"}})
    with pytest.raises(ConfigError, match=r"encoder\.colour"):
        as_config({"encoder": {"name": "fake", "colour": 1}})


def test_encoder_config_is_saved_with_the_session(tmp_path):
    path = tmp_path / "m.db"
    with OpticalMemory.open(path, config={"encoder": {"name": "fake", "tokenizer": "/t.json"}}) as m:
        m.add("hi", role="user")
    with OpticalMemory.open(path) as m:
        assert m.config.encoder == EncoderConfig(name="fake", tokenizer="/t.json")


def test_embeddings_format_needs_a_checkpoint_and_the_deepseek_provider():
    m = OpticalMemory({"recent_turns": 1})
    m.add("hello", role="user")
    with pytest.raises(ConfigError, match="needs a DeepSeek-OCR checkpoint folder"):
        m.context(format="embeddings")
    with pytest.raises(ConfigError, match="provider='deepseek-ocr'"):
        m.context(provider="openai:gpt-4o", format="embeddings")
    with pytest.raises(ConfigError, match="unknown message format"):
        m.context(format="embedding")


def test_message_formats_never_import_torch():
    code = textwrap.dedent(
        """
        import sys
        from optical_memory.memory import OpticalMemory
        m = OpticalMemory({"recent_turns": 1, "page_size": 512})
        for i in range(6):
            m.add("turn %d " % i + "words " * 200, role="user" if i % 2 == 0 else "assistant")
        for fmt in (None, "openai-chat", "anthropic", "gemini"):
            m.context(format=fmt)
        assert m.pages(), "no page was made"
        assert "torch" not in sys.modules, "torch was imported"
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_fake_tokens_round_trip_as_float32_rows():
    tokens = np.random.default_rng(0).standard_normal((73, 16), dtype=np.float32)
    row = to_row(3, Rung.TINY, tokens)
    assert (row.page_id, row.rung, row.shape, row.dtype, len(row.data)) == (
        3,
        "tiny",
        (73, 16),
        "float32",
        73 * 16 * 4,
    )
    back = from_row(row)
    assert back.flags.writeable and np.array_equal(back, tokens)


def test_stored_png_bytes_are_sent_for_pages_at_their_stored_rung():
    m = OpticalMemory({"recent_turns": 1, "page_size": 512})
    for t in turns(12, words=120):
        m.add(t)
    ctx = m.context(provider="openai:gpt-4o")
    pages = [i for i in ctx.items if hasattr(i, "png")]
    sealed = [p for p in pages if p.page_id < sum(info.sealed for info in m.pages())]
    assert sealed and all(p.png == m._w.store.page_png(m._w.sid, p.page_id) for p in sealed)
    urls = [part["image_url"]["url"] for part in ctx.messages[0]["content"] if part["type"] == "image_url"]
    sent = [base64.b64decode(u.split(",", 1)[1]) for u in urls]
    assert sent[: len(sealed)] == [p.png for p in sealed]
    hf = m.context(provider="openai:gpt-4o", format="hf")
    assert all(i.png is None for i in hf.items if hasattr(i, "png"))  # hf sends PIL images: no PNG read
