"""Whole-transcript rendering: page properties, determinism, and hostile input."""

from __future__ import annotations

import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import optical_memory.renderers as renderers
from optical_memory.errors import ConfigError, InputError
from optical_memory.images import encode_png
from optical_memory.renderers import ChatRenderer, Renderer, RenderStyle, render_turns
from optical_memory.tokens import count_tokens
from optical_memory.types import Turn

TINY = RenderStyle.for_size(256)
TRICKY = st.sampled_from(
    list("\ud800\udfff\x00\x1b\x85\x7f\ue000\n\r\t `#->*1.（」。中😀\u200d\ufe0f\u0301 ")
)
"""Characters that exercise surrogates, controls, Markdown markers, kinsoku and fallback."""


def test_public_names() -> None:
    assert sorted(renderers.__all__) == [
        "ChatRenderer",
        "FontChain",
        "PagePacker",
        "RenderStyle",
        "Renderer",
        "render_turns",
    ]
    assert isinstance(ChatRenderer(), Renderer)


def test_pages_are_square_grayscale_on_white() -> None:
    (page,) = render_turns([{"role": "user", "content": "Hello there"}])
    assert page.image.mode == "L" and page.size == 1280 and page.image.size == (1280, 1280)
    assert page.image.getpixel((0, 0)) == 255 and page.image.getextrema() == (0, 255)
    assert page.text == "User: Hello there"
    assert page.text_tokens == count_tokens(page.text)
    assert page.missing_glyphs == 0


def test_same_turns_give_byte_identical_pngs() -> None:
    turns = [Turn("user", "abc 中文 😀 ∑\n```\n\tx\n```"), Turn("assistant", "word " * 2000)]
    first = [encode_png(p.image) for p in ChatRenderer().render(turns)]
    second = [encode_png(p.image) for p in ChatRenderer().render(turns)]
    assert len(first) >= 2 and first == second


def test_render_turns_scales_the_style() -> None:
    pages = render_turns([Turn("user", "hi " * 3000)], size=512)
    assert {p.size for p in pages} == {512} and len(pages) >= 2
    with pytest.raises(ConfigError):
        render_turns([Turn("user", "hi")], size=10)


def test_default_density_fits_about_a_thousand_english_tokens() -> None:
    sentence = "Optical memory keeps recent turns as text and renders older ones onto pages. "
    pages = ChatRenderer().render([Turn("user", sentence * 200)])
    full = pages[0]
    assert 4000 <= len(full.text) <= 5200
    assert 800 <= full.text_tokens <= 1200


def test_empty_and_whitespace_turns_render() -> None:
    pages = ChatRenderer().render([Turn("user", ""), Turn("assistant", " \n\t\n "), Turn("user", "\n\n")])
    assert len(pages) == 1
    assert [(s.start, s.end) for s in pages[0].spans] == [(0, 0), (0, 5), (0, 2)]
    assert ChatRenderer().render([]) == []


def test_non_string_content_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="content"):
        ChatRenderer().render([{"role": "user", "content": 12}])
    with pytest.raises(InputError, match="role"):
        ChatRenderer().render([{"role": "narrator", "content": "x"}])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["user", "assistant", "system", "tool"]),
            st.text(alphabet=st.one_of(st.characters(exclude_categories=()), TRICKY), max_size=300),
        ),
        max_size=4,
    )
)
def test_any_unicode_renders(turns: list[tuple[str, str]]) -> None:
    pages = ChatRenderer(TINY).render([Turn(role, text) for role, text in turns])
    if turns:
        assert pages
    for page in pages:
        page.text.encode("utf-8")  # lone surrogates were replaced
        assert page.image.size == (256, 256)
    surrogates = sum(1 for _, t in turns for c in t if 0xD800 <= ord(c) <= 0xDFFF)
    assert sum(p.missing_glyphs for p in pages) >= surrogates


@pytest.mark.parametrize("flow", [False, True])
def test_ten_megabytes_without_a_newline_stream_in_bounded_memory(flow: bool) -> None:
    text = ("abcdefghij" * 100 + " ") * 9_900  # about 10 MB, one paragraph, no newline
    if flow:
        text = text.replace(" ", "\n")  # 9,900 short source lines, run on with marks
    tracemalloc.start()
    try:
        start = time.perf_counter()
        pages = ChatRenderer(RenderStyle(flow=flow)).iter_pages([Turn("user", text)])
        first = [next(pages) for _ in range(3)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 20
    assert peak < 40_000_000, f"peak {peak:,} bytes for three pages"
    assert first[2].spans[0].start > first[1].spans[0].start > 0
    assert first[1].text.startswith("User (cont.):\n")


def test_ten_megabytes_of_one_token_breaks_at_the_width() -> None:
    text = "x" * 10_000_000
    pages = ChatRenderer().iter_pages([Turn("assistant", text)])
    page = next(pages)
    lines = page.text.split("\n")[1:]
    assert len(lines) > 30 and len(set(map(len, lines[:-1]))) == 1
