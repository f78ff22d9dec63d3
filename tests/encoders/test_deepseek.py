"""DeepSeekOCREncoder on a tiny random checkpoint: same numbers as transformers' own model, right layout."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

from optical_memory.encoders import DeepSeekOCREncoder, Encoder, get_encoder  # noqa: E402
from optical_memory.encoders.preprocess import normalize_bytes, prepare_gundam, prepare_pages  # noqa: E402
from optical_memory.errors import ConfigError  # noqa: E402
from tests.encoders.tiny import noise_image  # noqa: E402

HIDDEN = 32  # the tiny decoder width (1280 in DeepSeek-OCR)


def _reference(model: Any, **inputs: Any) -> list[Any]:
    with torch.no_grad():
        return list(model.get_image_features(**inputs).pooler_output)


@pytest.mark.parametrize(
    ("rung", "count", "positions"),
    [("tiny", 2, 73), ("small", 2, 111), ("base", 2, 273), ("large", 1, 421)],
)
def test_encode_equals_transformers_get_image_features(tiny_model, tiny_encoder, rung, count, positions):
    images = [noise_image(700 + 37 * i, 900 - 50 * i, seed=i) for i in range(count)]
    tokens = tiny_encoder.encode(images, rung)
    expected = _reference(tiny_model, pixel_values=prepare_pages(images, rung))
    assert [t.shape for t in tokens] == [(positions, HIDDEN)] * count
    for got, want in zip(tokens, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_batches_give_the_same_tokens_as_single_pages(tiny_encoder):
    images = [noise_image(600, 800, seed=s) for s in range(3)]  # batch_size 2: a full batch and a single
    together = tiny_encoder.encode(images, "tiny")
    alone = [tiny_encoder.encode([im], "tiny")[0] for im in images]
    for a, b in zip(together, alone, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(together[0], together[1])


def test_row_newlines_and_separator_are_where_the_lm_expects_them(tiny_model, tiny_encoder):
    (tokens,) = tiny_encoder.encode([noise_image(512, 512)], "tiny")  # 8 rows of 8 + newline, then separator
    newline = tiny_model.model.image_newline.detach()
    separator = tiny_model.model.view_separator.detach()
    rows = tokens[:-1].reshape(8, 9, HIDDEN)
    torch.testing.assert_close(rows[:, 8], newline.expand(8, HIDDEN))
    torch.testing.assert_close(tokens[-1], separator)
    assert not torch.allclose(rows[0, 0], newline)


@pytest.mark.parametrize(
    ("size", "grid", "positions"), [((1900, 1300), (3, 2), 893), ((1300, 1900), (2, 3), 903)]
)
def test_gundam_tiles_are_stitched_row_major_width_first(tiny_model, tiny_encoder, size, grid, positions):
    image = noise_image(*size, seed=7)
    (tokens,) = tiny_encoder.encode([image], "gundam")
    assert tokens.shape == (positions, HIDDEN)

    prepared = prepare_gundam(image)
    assert prepared.grid == grid
    cols, rows = grid
    global_view, tiles = normalize_bytes(prepared.global_view[None]), normalize_bytes(prepared.tiles)
    # Reference 1: transformers' own assembly on the same pixels.
    (want,) = _reference(
        tiny_model,
        pixel_values=global_view,
        pixel_values_local=tiles,
        num_local_patches=[cols * rows],
        patches_grid=[[cols, rows]],
    )
    torch.testing.assert_close(tokens, want, rtol=1e-5, atol=1e-5)
    # Reference 2: each tile encoded on its own lands at its (row, column) block of the stitched grid.
    per_tile = _reference(tiny_model, pixel_values=tiles)  # each (10 * 11 + 1, C)
    stitched = tokens[: 10 * rows * (10 * cols + 1)].reshape(10 * rows, 10 * cols + 1, HIDDEN)
    for index, tile_tokens in enumerate(per_tile):
        r, c = divmod(index, cols)
        block = stitched[10 * r : 10 * r + 10, 10 * c : 10 * c + 10]
        torch.testing.assert_close(
            block, tile_tokens[:-1].reshape(10, 11, HIDDEN)[:, :10], rtol=1e-4, atol=1e-5
        )
    # Then the global 1024 view (16 rows of 17) and the separator.
    (global_only,) = _reference(tiny_model, pixel_values=global_view)
    torch.testing.assert_close(tokens[-273:], global_only, rtol=1e-4, atol=1e-5)


def test_gundam_batch_mixes_tiled_and_untiled_images(tiny_encoder):
    images = [noise_image(1300, 700, seed=1), noise_image(500, 400, seed=2)]
    tokens = tiny_encoder.encode(images, "gundam")
    assert [t.shape[0] for t in tokens] == [10 * 1 * (10 * 2 + 1) + 273, 273]


def test_properties_and_protocol(tiny_encoder, tiny_checkpoint):
    assert isinstance(tiny_encoder, Encoder)
    assert tiny_encoder.hidden_size == HIDDEN
    assert tiny_encoder.device == torch.device("cpu")
    assert tiny_encoder.dtype == torch.float32
    assert tiny_encoder.fingerprint.startswith("deepseek-ocr:")
    again = get_encoder("deepseek", path=tiny_checkpoint, device="cpu")
    assert again.fingerprint == tiny_encoder.fingerprint


def test_unknown_or_forgotten_rung_is_refused(tiny_encoder):
    with pytest.raises(ConfigError):
        tiny_encoder.encode([noise_image(64, 64)], "forgotten")
    with pytest.raises(ConfigError):
        tiny_encoder.encode([noise_image(64, 64)], "huge")


def test_bfloat16_on_cpu_runs_and_stays_close(tiny_checkpoint, tiny_encoder):
    bf16 = DeepSeekOCREncoder.from_pretrained(tiny_checkpoint, device="cpu", dtype="bfloat16")
    assert bf16.dtype == torch.bfloat16
    image = noise_image(512, 512, seed=3)
    (low,) = bf16.encode([image], "tiny")
    (high,) = tiny_encoder.encode([image], "tiny")
    assert low.dtype == torch.bfloat16 and torch.isfinite(low).all()
    cosine = torch.nn.functional.cosine_similarity(low.float(), high, dim=-1)
    assert cosine.min() > 0.99


# Importing torch's inductor warns about its own use of torch.jit.script_method (torch 2.13).
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_compile_wraps_sam_and_clip_without_running_them(tiny_checkpoint):
    encoder = DeepSeekOCREncoder.from_pretrained(tiny_checkpoint, device="cpu", compile=True)
    tower = encoder.model.vision_tower
    assert tower.sam_encoder._compiled_call_impl is not None
    assert tower.vision_encoder._compiled_call_impl is not None
