"""The encoder contract, the fake encoder and the name table (no torch needed)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from optical_memory.encoders import ENCODERS, Encoder, FakeEncoder, as_numpy, encoded_positions, get_encoder
from optical_memory.errors import ConfigError, InputError


def _page(seed: int, size: tuple[int, int] = (64, 48)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


@pytest.mark.parametrize(("rung", "positions"), [("large", 421), ("base", 273), ("small", 111), ("tiny", 73)])
def test_fake_tokens_have_the_lm_positions_of_each_rung(rung, positions):
    (tokens,) = FakeEncoder().encode([_page(0)], rung)
    assert tokens.shape == (positions, 1280) and tokens.dtype == np.float32


@pytest.mark.parametrize(("size", "positions"), [((1900, 1300), 893), ((1300, 1900), 903), ((600, 400), 273)])
def test_fake_gundam_positions_follow_the_tile_grid(size, positions):
    image = Image.new("RGB", size, "white")
    assert encoded_positions(size, "gundam") == positions
    assert FakeEncoder(hidden_size=8).encode([image], "gundam")[0].shape == (positions, 8)


def test_equal_pages_give_equal_tokens_and_different_pages_differ():
    fake = FakeEncoder(hidden_size=16)
    a, b, c = fake.encode([_page(1), _page(1), _page(2)], "tiny")
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    other_rung = fake.encode([_page(1)], "small")[0]
    assert not np.allclose(a[:73], other_rung[:73])
    reseeded = FakeEncoder(hidden_size=16, seed=1).encode([_page(1)], "tiny")[0]
    assert not np.allclose(a, reseeded)
    assert FakeEncoder(hidden_size=16).encode([_page(1)], "tiny")[0].tobytes() == a.tobytes()


def test_fake_is_an_encoder_with_a_fingerprint():
    fake = FakeEncoder(hidden_size=64, seed=3)
    assert isinstance(fake, Encoder)
    assert fake.hidden_size == 64 and fake.fingerprint == "fake:64:3:9"
    assert FakeEncoder(hidden_size=64, seed=4).fingerprint != fake.fingerprint


def test_fake_refuses_bad_input():
    with pytest.raises(ConfigError):
        FakeEncoder().encode([_page(0)], "forgotten")
    with pytest.raises(InputError):
        FakeEncoder().encode(["page"], "tiny")  # type: ignore[list-item]
    with pytest.raises(ConfigError):
        FakeEncoder(hidden_size=0)


def test_name_table():
    assert set(ENCODERS) == {"fake", "deepseek"}
    assert isinstance(get_encoder("fake", hidden_size=8), FakeEncoder)
    with pytest.raises(ConfigError, match="deepseek, fake"):
        get_encoder("clip")
    with pytest.raises(ConfigError, match="path"):
        get_encoder("deepseek")


def test_as_numpy_handles_numpy_and_torch():
    np.testing.assert_array_equal(as_numpy(np.ones((2, 3), dtype=np.float64)), np.ones((2, 3), np.float32))
    torch = pytest.importorskip("torch")
    out = as_numpy(torch.ones((2, 3), dtype=torch.bfloat16))
    assert out.dtype == np.float32 and out.shape == (2, 3)


def test_importing_encoders_does_not_import_torch():
    code = (
        "import sys, optical_memory.encoders as e; assert e.FakeEncoder; "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
