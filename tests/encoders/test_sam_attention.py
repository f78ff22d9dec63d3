"""The folded SAM attention gives the stock transformers forward's numbers, windowed and global layers alike."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from optical_memory.encoders.sam_attention import fold_sam_attention


@pytest.mark.parametrize("size", [512, 640, 1024, 1280])
def test_folded_attention_matches_stock(tiny_model: Any, size: int) -> None:
    stock = tiny_model.model.vision_tower
    folded = copy.deepcopy(stock)
    layers = len(folded.sam_encoder.layers)
    assert fold_sam_attention(folded) == layers  # windowed and global layers both carry rel-pos tables
    pixels = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(size))
    with torch.inference_mode():
        want = stock(pixels).last_hidden_state
        got = folded(pixels).last_hidden_state
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_folding_is_not_a_no_op(tiny_model: Any) -> None:
    # Zeroing the rel-pos tables must change the stock and the folded outputs alike: the bias is really used.
    folded = copy.deepcopy(tiny_model.model.vision_tower)
    fold_sam_attention(folded)
    flat = copy.deepcopy(folded)
    for layer in flat.sam_encoder.layers:
        torch.nn.init.zeros_(layer.attn.rel_pos_h)
        torch.nn.init.zeros_(layer.attn.rel_pos_w)
    pixels = torch.randn(1, 3, 512, 512, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        assert not torch.allclose(folded(pixels).last_hidden_state, flat(pixels).last_hidden_state)
