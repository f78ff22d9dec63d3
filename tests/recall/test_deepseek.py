"""The ``deepseek`` reader on a tiny random DeepSeek-OCR checkpoint saved in the official layout."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from optical_memory.errors import CheckpointError, ConfigError, InputError
from optical_memory.ladder import Rung
from optical_memory.pricing.deepseek import IMAGE_TOKEN_ID
from optical_memory.recall.deepseek import (
    BOS_ID,
    EOS_ID,
    DeepSeekReader,
    prompt_ids,
    view_size,
)
from optical_memory.recall.ngram import banned_tokens
from tests.recall.helpers import make_reader_checkpoint, make_tokenizer

NEW_TOKENS = 24


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_reader_checkpoint(tmp_path_factory.mktemp("tiny-deepseek-ocr"))


@pytest.fixture(scope="module")
def reader(checkpoint: Path) -> DeepSeekReader:
    # n-gram 3 in a window of 12, so the rule bites within a short random generation
    return DeepSeekReader(checkpoint, device="cpu", max_new_tokens=NEW_TOKENS, ngram_size=3, ngram_window=12)


def _page(size: int = 256) -> Image.Image:
    image = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(image)
    for i in range(8):
        draw.text((20, 20 + 40 * i), f"line {i}: the quick brown fox", fill=0)
    return image


def test_prompt_layout_matches_deepseek_ocr(reader: DeepSeekReader) -> None:
    page = reader.prepare(_page(512))
    tail = make_tokenizer().encode("\nFree OCR.", add_special_tokens=False).ids
    assert page.rung is Rung.TINY and page.size == 512
    assert list(page.input_ids) == [BOS_ID] + [IMAGE_TOKEN_ID] * 73 + tail
    assert tuple(page.pixel_values.shape) == (1, 3, 512, 512)


@pytest.mark.parametrize(("rung", "positions"), [("small", 111), ("base", 273)])
def test_placeholders_follow_the_rung(reader: DeepSeekReader, rung: str, positions: int) -> None:
    page = reader.prepare(_page(512), rung=rung)
    assert page.input_ids.count(IMAGE_TOKEN_ID) == positions


def test_markdown_prompt_uses_the_grounding_token() -> None:
    tok = make_tokenizer()
    ids = prompt_ids(
        lambda s: tok.encode(s, add_special_tokens=False).ids,
        "<image>\n<|grounding|>Convert the document to markdown.",
        5,
    )
    assert ids[:6] == [BOS_ID] + [IMAGE_TOKEN_ID] * 5 and 128820 in ids


def test_view_size_off_ladder() -> None:
    assert view_size(Image.new("L", (384, 384)), None) == 384  # below Tiny: fed as is (extrapolation)
    assert view_size(Image.new("L", (300, 500)), None) == 1024
    assert view_size(Image.new("L", (384, 384)), Rung.SMALL) == 640


def test_greedy_tokens_equal_transformers_generate(reader: DeepSeekReader) -> None:
    from transformers import LogitsProcessorList

    page = reader.prepare(_page())
    ours = reader.generate_ids(page)
    ids = torch.tensor([page.input_ids])
    processor = reader.logits_processor(ids.shape[1])
    assert processor is not None
    theirs = reader.model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        pixel_values=page.pixel_values,
        logits_processor=LogitsProcessorList([processor]),
        do_sample=False,
        max_new_tokens=NEW_TOKENS,
        eos_token_id=EOS_ID,
        pad_token_id=EOS_ID,
    )
    assert theirs[0, ids.shape[1] :].tolist() == ours
    assert len(ours) == NEW_TOKENS or ours[-1] == EOS_ID


def test_generation_respects_the_ngram_rule(reader: DeepSeekReader) -> None:
    ours = reader.generate_ids(reader.prepare(_page()))
    for t in range(3, len(ours)):
        assert ours[t] not in banned_tokens(ours[:t], ngram_size=3, window_size=12)
    # without the rule a random model loops: the rule must have changed something
    free = DeepSeekReader(
        model=reader.model, tokenizer=reader.tokenizer, max_new_tokens=NEW_TOKENS, ngram_size=0
    ).generate_ids(reader.prepare(_page()))
    assert free != ours


def test_read_streams_pieces_that_add_up_to_the_text(reader: DeepSeekReader) -> None:
    pieces: list[str] = []
    reading = reader.read(_page(), on_text=pieces.append)
    assert reading.reader == "deepseek" and reading.rung is None  # 256 px: below the ladder
    assert reading.tokens is not None and 0 < reading.tokens <= NEW_TOKENS
    assert len(pieces) > 1 and "".join(pieces) == reading.text
    assert list(reader.stream(_page())) == pieces


def test_stream_reraises_errors(reader: DeepSeekReader) -> None:
    with pytest.raises(InputError):
        list(reader.stream(_page(), rung="forgotten"))


def test_cpu_warns_that_it_is_slow(checkpoint: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="optical_memory.recall.deepseek"):
        DeepSeekReader(checkpoint, device="cpu", max_new_tokens=1)
    assert "slow" in caplog.text


def test_no_checkpoint_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPTICAL_MEMORY_CHECKPOINT", raising=False)
    with pytest.raises(ConfigError, match="OPTICAL_MEMORY_CHECKPOINT"):
        DeepSeekReader()


def test_missing_tokenizer_is_named(checkpoint: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    shutil.copytree(checkpoint, folder)
    (folder / "tokenizer.json").unlink()
    with pytest.raises(CheckpointError, match=r"tokenizer\.json"):
        DeepSeekReader(folder)


def test_missing_weights_file_is_named(checkpoint: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    shutil.copytree(checkpoint, folder)
    (folder / "model-00001-of-000001.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"model-00001-of-000001.safetensors"):
        DeepSeekReader(folder)


def test_wrong_shape_checkpoint_names_the_tensors(checkpoint: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    shutil.copytree(checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    config["language_config"]["intermediate_size"] = 80  # the dense layer was saved with 64
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"(?s)mis-shaped.*layers\.0\.mlp"):
        DeepSeekReader(folder)
