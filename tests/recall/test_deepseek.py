"""The ``deepseek`` reader on a tiny random DeepSeek-OCR checkpoint saved in the official layout."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image, ImageDraw

from optical_memory.errors import CheckpointError, ConfigError, InputError
from optical_memory.ladder import Rung
from optical_memory.pricing.deepseek import IMAGE_TOKEN_ID
from optical_memory.recall import deepseek
from optical_memory.recall.deepseek import (
    BOS_ID,
    EOS_ID,
    DeepSeekReader,
    PageInput,
    prompt_ids,
    view_size,
)
from optical_memory.recall.ngram import SlidingWindowNoRepeatNGram
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


def _completes_a_seen_ngram(generated: list[int], token: int, n: int, window: int) -> bool:
    """The rule as ngram.py documents it, written out again: ``token`` would complete an n-gram that
    starts inside the last ``window`` generated tokens (nothing is banned before n tokens; <td> and </td>
    are exempt).
    """
    if len(generated) < n or token in (128821, 128822):
        return False
    candidate = [*generated[len(generated) - (n - 1) :], token]
    first = max(0, len(generated) - window)
    return any(generated[i : i + n] == candidate for i in range(first, len(generated) - n + 1))


@torch.inference_mode()
def _independent_greedy(
    model: Any, page: PageInput, steps: int, *, ngram: tuple[int, int] | None
) -> tuple[list[int], int]:
    """Greedy decoding over the model's plain forward pass (the whole sequence each step, no cache and no
    ``generate``): the best-scoring token that the rule allows. Returns the ids and how many steps the
    rule changed.
    """
    generated: list[int] = []
    banned_steps = 0
    for _ in range(steps):
        ids = torch.tensor([[*page.input_ids, *generated]])
        logits = model(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            pixel_values=page.pixel_values,
            use_cache=False,
        ).logits[0, -1]
        ranked = torch.topk(logits, 64).indices.tolist()
        allowed = [t for t in ranked if ngram is None or not _completes_a_seen_ngram(generated, t, *ngram)]
        banned_steps += allowed[0] != ranked[0]
        generated.append(allowed[0])
        if allowed[0] == EOS_ID:
            break
    return generated, banned_steps


@pytest.fixture(scope="module")
def ruled(reader: DeepSeekReader) -> list[int]:
    """What the independent loop makes of the page under the reader's rule (n 3 in a window of 12)."""
    expected, banned_steps = _independent_greedy(
        reader.model, reader.prepare(_page()), NEW_TOKENS, ngram=(3, 12)
    )
    assert banned_steps > 0  # the tiny model repeats on this page: the rule has work to do
    return expected


def test_greedy_decoding_matches_an_independent_loop_with_the_ngram_rule(
    reader: DeepSeekReader, ruled: list[int]
) -> None:
    assert reader.generate_ids(reader.prepare(_page())) == ruled


def test_without_the_rule_the_reader_differs_from_the_loop(
    reader: DeepSeekReader, ruled: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    page = reader.prepare(_page())
    monkeypatch.setattr(SlidingWindowNoRepeatNGram, "__call__", lambda self, input_ids, scores: scores)
    free = reader.generate_ids(page)
    assert free == _independent_greedy(reader.model, page, NEW_TOKENS, ngram=None)[0]  # plain greedy agrees
    assert free != ruled
    off = DeepSeekReader(
        model=reader.model, tokenizer=reader.tokenizer, max_new_tokens=NEW_TOKENS, ngram_size=0
    )
    assert off.generate_ids(page) == free  # ngram_size=0 is the documented way to turn the rule off
    assert any(_completes_a_seen_ngram(free[:t], free[t], 3, 12) for t in range(len(free)))  # it repeated


@pytest.fixture(scope="module")
def spaced(reader: DeepSeekReader) -> DeepSeekReader:
    """The same model, with placeholders that decode as words, so its text streams in many pieces."""
    return DeepSeekReader(
        model=reader.model,
        tokenizer=make_tokenizer(spaced=True),
        max_new_tokens=NEW_TOKENS,
        ngram_size=3,
        ngram_window=12,
    )


def _decoding_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "deepseek-recall"]


def test_streamed_pieces_add_up_to_the_text(spaced: DeepSeekReader, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="optical_memory.recall.deepseek"):
        whole = spaced.read(_page())
        assert whole.reader == "deepseek" and whole.rung is None  # 256 px: below the ladder
        assert whole.tokens == NEW_TOKENS  # no EOS on this page: decoding runs to the bound
        pieces: list[str] = []
        reading = spaced.read(_page(), on_text=pieces.append)
        assert len(pieces) > NEW_TOKENS // 2 and "".join(pieces) == reading.text == whole.text
        assert list(spaced.stream(_page())) == pieces
        assert not _decoding_threads()
        assert caplog.text.count("stopped at max_new_tokens") == 3  # each way of reading says so
        caplog.clear()
        for _ in spaced.stream(_page()):
            break
    assert "max_new_tokens" not in caplog.text  # a consumer that left did not hit the bound


def test_text_without_word_breaks_comes_at_the_end(reader: DeepSeekReader) -> None:
    pieces = list(reader.stream(_page()))
    assert pieces == [reader.read(_page()).text]  # the streamer holds a word back until it is finished


def _count_steps(model: Any) -> tuple[list[int], Any]:
    steps = [0]

    def count(module: Any, args: Any) -> None:
        steps[0] += 1

    return steps, model.register_forward_pre_hook(count)


def test_leaving_the_stream_early_stops_the_decoding(
    spaced: DeepSeekReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deepseek, "STREAM_QUEUE_SIZE", 2)  # decoding may run two pieces ahead
    steps, hook = _count_steps(spaced.model)
    try:
        stream = spaced.stream(_page())
        assert next(stream)
        last, deadline = -1, time.monotonic() + 10
        while steps[0] != last and time.monotonic() < deadline:  # until the decoding thread waits
            last = steps[0]
            time.sleep(0.3)
        assert steps[0] <= 6 < NEW_TOKENS  # held by the full queue (a whole read takes NEW_TOKENS steps)
        stream.close()  # returns once the decoding thread has ended
        assert not _decoding_threads()
        at_close = steps[0]
        assert at_close <= 7
        time.sleep(0.2)
        assert steps[0] == at_close
        steps[0] = 0
        for _ in spaced.stream(_page()):
            break  # the for loop drops the generator, which closes it
        assert not _decoding_threads() and steps[0] <= 7
    finally:
        hook.remove()


def test_a_failing_callback_stops_the_decoding(spaced: DeepSeekReader) -> None:
    def fail(piece: str) -> None:
        raise KeyboardInterrupt

    steps, hook = _count_steps(spaced.model)
    try:
        with pytest.raises(KeyboardInterrupt):
            spaced.read(_page(), on_text=fail)
    finally:
        hook.remove()
    assert not _decoding_threads() and steps[0] < NEW_TOKENS


def test_stream_reraises_errors(spaced: DeepSeekReader, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError):
        list(spaced.stream(_page(), rung="forgotten"))

    def broken(*args: Any, **kwargs: Any) -> list[int]:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(spaced, "generate_ids", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        list(spaced.stream(_page()))
    assert not _decoding_threads()


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
