"""DeepSeek-OCR's token arithmetic: vision tokens and LM positions per rung, per view and per Gundam grid."""

import pytest

from optical_memory.ladder import LADDER, Rung
from optical_memory.pricing import deepseek
from optical_memory.pricing.providers import get_provider


def test_rungs_cost_the_native_modes_tokens_and_positions():
    table = {s.rung: (deepseek.vision_tokens(s.rung), deepseek.positions(s.rung)) for s in LADDER}
    assert table == {
        Rung.LARGE: (400, 421),
        Rung.BASE: (256, 273),
        Rung.SMALL: (100, 111),
        Rung.TINY: (64, 73),
    }


def test_forgotten_costs_nothing():
    assert deepseek.positions("forgotten") == 0
    assert deepseek.vision_tokens(Rung.FORGOTTEN) == 0


@pytest.mark.parametrize(("size", "tokens", "positions"), [(384, 36, 43), (256, 16, 21), (1024, 256, 273)])
def test_a_view_is_a_grid_with_a_newline_per_row_and_a_separator(size, tokens, positions):
    assert deepseek.view_vision_tokens(size) == tokens
    assert deepseek.view_positions(size) == positions


@pytest.mark.parametrize(
    ("w", "h", "positions", "tokens"),
    [(3, 2, 893, 856), (2, 3, 903, 856), (1, 1, 273, 256), (3, 3, 30 * 31 + 273, 1156)],
)
def test_gundam_positions(w, h, positions, tokens):
    assert deepseek.gundam_positions(w, h) == positions
    assert deepseek.gundam_vision_tokens(w, h) == tokens


@pytest.mark.parametrize(("size", "positions"), [((512, 512), 73), ((1280, 1280), 421), ((500, 300), 273)])
def test_the_provider_formula_is_native_for_rung_squares_and_gundam_otherwise(size, positions):
    assert deepseek.deepseek_ocr_tokens(*size) == positions
    assert get_provider("deepseek-ocr").image_tokens(*size) == positions


def test_the_image_token_id():
    assert deepseek.IMAGE_TOKEN_ID == 128815
