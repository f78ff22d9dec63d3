"""Per-character font fallback over the bundled fonts."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from optical_memory.errors import ConfigError
from optical_memory.renderers import FontChain
from optical_memory.renderers.draw import glyph_mask
from optical_memory.renderers.fontchain import FONT_DIR, MONO, SANS, chain, load_font


@pytest.mark.parametrize(
    ("ch", "face"),
    [
        ("A", "NotoSans-Regular.ttf"),
        ("é", "NotoSans-Regular.ttf"),
        ("Ж", "NotoSans-Regular.ttf"),
        ("中", "NotoSansCJKsc-Regular.otf"),
        ("カ", "NotoSansCJKsc-Regular.otf"),
        ("한", "NotoSansCJKsc-Regular.otf"),
        ("😀", "NotoEmoji-VF.ttf"),
        ("∫", "NotoSansMath-Regular.ttf"),
        ("␀", "NotoSansSymbols2-Regular.ttf"),
    ],
)
def test_each_script_has_a_font(ch: str, face: str) -> None:
    fonts = FontChain(SANS, 22)
    index = fonts.font_index(ch)
    assert index is not None and fonts.faces[index] == face
    assert not fonts.glyph(ch).missing
    assert fonts.glyph(ch).advance > 0


@pytest.mark.parametrize("ch", ["\x85", "\ud800", "\udfff", "\ue000", "\U0010fffd", "\U000e0001"])
def test_uncoverable_characters_become_a_counted_replacement(ch: str) -> None:
    g = FontChain(SANS, 22).glyph(ch)
    assert g.drawn == "\ufffd" and g.missing and g.advance > 0


def test_c0_controls_become_control_pictures() -> None:
    fonts = FontChain(MONO, 20)
    assert [fonts.glyph(c).drawn for c in "\x00\x07\x1b\x7f"] == ["␀", "␇", "␛", "␡"]
    assert fonts.missing("a\x00b\x85") == 1


def test_runs_group_characters_by_font() -> None:
    fonts = chain(SANS, 22)
    runs = fonts.runs("ab中文cd")
    assert [text for _, text in runs] == ["ab", "中文", "cd"]
    assert runs[0][0] is runs[2][0] is fonts.fonts[0]
    assert fonts.length("ab中文cd") == sum(fonts.glyph(c).advance for c in "ab中文cd")


def test_variable_emoji_font_is_pinned_to_regular_weight() -> None:
    font = load_font("NotoEmoji-VF.ttf", 22)
    assert font.get_variation_axes()[0]["name"] == b"Weight"
    assert len(FONT_DIR.joinpath("LICENSE-OFL.txt").read_text()) > 1000


def test_unknown_font_and_bad_size_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="not in"):
        FontChain(("NoSuchFont.ttf",), 22)
    with pytest.raises(ConfigError):
        FontChain(SANS, 0)


def test_glyph_stamps_match_pillow_text_runs() -> None:
    """The cached per-glyph drawing is pixel-identical to one ImageDraw.text call per run."""
    fonts = chain(SANS, 22)
    text = "Quick fox, 中文，かな 한글 ∑ 😀 — fj"
    by_run = Image.new("L", (900, 40), 255)
    stamped = Image.new("L", (900, 40), 255)
    draw_run, draw_stamp = ImageDraw.Draw(by_run), ImageDraw.Draw(stamped)
    x = 5
    for font, run in fonts.runs(text):
        draw_run.text((x, 30), run, font=font, fill=0, anchor="ls")
        for ch in run:
            mask, dx, dy, advance = glyph_mask(font, ch)
            if mask is not None:
                draw_stamp.bitmap((x + dx, 30 + dy), mask, fill=0)
            x += advance
    assert by_run.getextrema()[0] < 64  # something was drawn
    assert by_run.tobytes() == stamped.tobytes()
