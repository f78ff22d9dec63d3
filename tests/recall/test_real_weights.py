"""The official DeepSeek-OCR weights end to end: encode a rendered page, then read it back.

Marked ``weights`` and skipped unless ``OPTICAL_MEMORY_CHECKPOINT`` names the official folder as users
download it (``config.json``, ``model-00001-of-000001.safetensors`` and its index, ``tokenizer.json``).
On a CUDA GPU the models run in bf16; on the CPU they run in fp32 and the reader test takes minutes.
"""

from __future__ import annotations

import os

import pytest

from optical_memory.types import Turn

CHECKPOINT = os.environ.get("OPTICAL_MEMORY_CHECKPOINT")

pytestmark = [
    pytest.mark.weights,
    pytest.mark.skipif(not CHECKPOINT, reason="set OPTICAL_MEMORY_CHECKPOINT to the DeepSeek-OCR folder"),
    # third-party libraries may warn about their own versions while loading 6.7 GB of real weights
    pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning", "ignore::UserWarning"),
]

TEXT = (
    "We moved the nightly export to 02:00 UTC because the warehouse job overlaps at midnight. "
    "The new schedule is in cron/export.yaml and the alert threshold stays at 15 minutes. "
    "Next week we will compare the row counts of March 3 and March 10 before closing ticket OPS-4127."
)


def _page():  # type: ignore[no-untyped-def]
    from optical_memory.renderers import render_turns

    return render_turns([Turn("user", TEXT)])[0]


def test_encoder_loads_the_official_folder_and_encodes_every_rung() -> None:
    import torch

    from optical_memory.encoders import DeepSeekOCREncoder
    from optical_memory.images import downsample
    from optical_memory.ladder import LADDER
    from optical_memory.pricing.deepseek import positions

    encoder = DeepSeekOCREncoder.from_pretrained(CHECKPOINT)
    page = _page()
    for rung in LADDER:
        (tokens,) = encoder.encode([downsample(page.image, rung.size)], rung.rung)
        assert tokens.shape == (positions(rung.rung), encoder.hidden_size)
        assert torch.isfinite(tokens.float()).all()


def test_deepseek_reader_reads_a_large_page_back() -> None:
    from optical_memory.recall import char_accuracy, get_reader

    page = _page()
    reading = get_reader("deepseek", checkpoint=CHECKPOINT, max_new_tokens=400).read(page.image, rung="large")
    assert char_accuracy(page.text, reading.text) > 0.9, reading.text
