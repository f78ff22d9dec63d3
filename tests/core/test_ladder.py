"""The ladder: the size and token grid of each rung, navigation, and Gundam tile grids."""

import pytest

from optical_memory import ladder
from optical_memory.errors import ConfigError, InputError
from optical_memory.ladder import Rung


def test_rungs_match_deepseek_ocr_native_modes():
    table = {s.rung: (s.size, s.grid) for s in ladder.LADDER}
    assert table == {
        Rung.LARGE: (1280, 20),
        Rung.BASE: (1024, 16),
        Rung.SMALL: (640, 10),
        Rung.TINY: (512, 8),
    }
    assert [s.resize for s in ladder.LADDER] == [False, False, True, True]


def test_forgotten_has_no_page():
    with pytest.raises(ConfigError, match="no page"):
        ladder.spec("forgotten")


def test_order_and_navigation():
    assert ladder.ORDER == (Rung.LARGE, Rung.BASE, Rung.SMALL, Rung.TINY, Rung.FORGOTTEN)
    assert ladder.below("large") is Rung.BASE
    assert ladder.below("tiny") is Rung.FORGOTTEN
    assert ladder.below("forgotten") is Rung.FORGOTTEN
    assert ladder.sharper("base", "small") and not ladder.sharper("small", "base")
    assert ladder.as_rung(" Tiny ") is Rung.TINY


def test_unknown_rung_lists_the_names():
    with pytest.raises(ConfigError, match="large, base, small, tiny, forgotten"):
        ladder.as_rung("huge")


@pytest.mark.parametrize(
    ("size", "grid"),
    [
        ((640, 640), (1, 1)),
        ((500, 300), (1, 1)),
        ((1700, 2200), (2, 3)),
        ((3000, 1000), (3, 1)),
        ((1920, 1280), (3, 2)),
        ((1280, 1920), (2, 3)),
        ((1280, 1280), (2, 2)),  # square: 2x2 and 3x3 tie; 3x3 only wins above half its pixel area
        ((2000, 2000), (3, 3)),
        ((700, 660), (2, 2)),
    ],
)
def test_gundam_grid_follows_dynamic_preprocess(size, grid):
    assert ladder.gundam_grid(*size) == grid


def test_gundam_grid_respects_tile_limits():
    assert ladder.gundam_grid(10000, 500, max_tiles=6) == (6, 1)
    assert ladder.gundam_grid(10000, 500) == (9, 1)
    with pytest.raises(InputError):
        ladder.gundam_grid(0, 10)
