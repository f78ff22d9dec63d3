"""Markdown blocks, wrapping rules (Latin, CJK kinsoku, over-long tokens, code) and line geometry."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from optical_memory.renderers import RenderStyle
from optical_memory.renderers.layout import CONTINUATION, NO_END, NO_START, Line, can_break, layout_turn
from optical_memory.renderers.markdown import blocks
from optical_memory.types import Turn

STYLE = RenderStyle()


def _content_lines(text: str, role: str = "assistant") -> list[Line]:
    return list(layout_turn(Turn(role, text), STYLE))[1:]


def _right_edge(line: Line) -> int:
    edge = 0
    for x, font, text in line.runs:
        edge = max(edge, x + round(sum(font.getlength(c) for c in text.rstrip(" "))))
    return edge


def test_blocks_classify_markdown_lines() -> None:
    text = "# Head\n\n- a\n  cont\n2. b\n> q\n---\n```py\n  x = 1\n```\nplain"
    kinds = [(b.kind, text[b.start : b.end], b.level, b.marker) for b in blocks(text)]
    assert kinds == [
        ("heading", "Head", 1, ""),
        ("blank", "", 0, ""),
        ("item", "a", 0, "•"),
        ("para", "cont", 1, ""),
        ("item", "b", 0, "2."),
        ("quote", "q", 1, ""),
        ("rule", "---", 0, ""),
        ("code", "  x = 1", 0, ""),
        ("para", "plain", 0, ""),
    ]


def test_blank_lines_collapse_and_edges_drop() -> None:
    assert [b.kind for b in blocks("\n\n\na\r\n\r\n\n\nb\n\n")] == ["para", "blank", "para"]
    assert list(blocks("")) == []


def test_unclosed_fence_runs_to_the_end() -> None:
    assert [b.kind for b in blocks("```\na\n\nb")] == ["code", "code", "code"]


def test_label_then_content_and_names() -> None:
    lines = list(layout_turn(Turn("tool", "ok", name="search\nweb"), STYLE))
    assert [line.text for line in lines] == ["Tool: search web", "ok"]
    assert next(iter(layout_turn(Turn("user", ""), STYLE))).text == "User"


def test_latin_wraps_at_spaces_within_the_column() -> None:
    words = " ".join(f"word{i}" for i in range(400))
    lines = _content_lines(words)
    assert len(lines) > 5
    assert " ".join(line.text or "" for line in lines) == words
    assert all(_right_edge(line) <= STYLE.size - STYLE.margin for line in lines)
    assert all(not (line.text or "").startswith(" ") for line in lines)


def test_overlong_token_breaks_at_the_width() -> None:
    token = "x" * 1000
    lines = _content_lines(token)
    assert "".join(line.text or "" for line in lines) == token
    assert len(lines) >= 5
    assert all(_right_edge(line) <= STYLE.size - STYLE.margin for line in lines)


def test_source_ranges_tile_the_content() -> None:
    text = "alpha beta gamma " * 200 + "\n\n" + "中文句子，" * 300
    lines = _content_lines(text)
    assert lines[0].src_start == 0 and lines[-1].src_end == len(text)
    for a, b in itertools.pairwise(lines):
        assert a.src_end <= b.src_start or a.gap or b.gap


def test_code_keeps_indentation_and_marks_continuations() -> None:
    code = "```\ndef f():\n\treturn " + "+".join(["value"] * 60) + "\n```"
    lines = _content_lines(code)
    assert lines[0].text == "def f():"
    assert lines[1].text == "    return"  # wrapped at the space, then the long expression at the width
    assert len(lines) >= 4
    assert all((line.text or "").startswith(CONTINUATION) for line in lines[2:])
    assert all(line.fill == STYLE.code_paper for line in lines)


def test_inline_code_uses_mono_and_drops_backticks() -> None:
    (line,) = _content_lines("use `len(x)` here, and a lone ` tick")
    assert line.text == "use len(x) here, and a lone ` tick"
    fonts = {font.getname()[0] for _, font, _ in line.runs}
    assert {"Noto Sans", "Noto Sans Mono"} <= fonts


def test_can_break_rules() -> None:
    assert can_break(" ", "a") and can_break("中", "文") and can_break("a", "中")
    assert not can_break("中", "。") and not can_break("「", "中") and not can_break("a", "b")
    assert can_break("-", "b") and not can_break("-", "-")


CJK_TEXT = st.text(
    alphabet=st.sampled_from(list("中文日本語한국어漢字かなカナ") + list("，。、）」』！？（「『")),
    min_size=1,
    max_size=400,
)


@settings(max_examples=60, deadline=None)
@given(CJK_TEXT)
def test_kinsoku_holds_whenever_a_legal_break_exists(text: str) -> None:
    lines = _content_lines(text * 3)
    for line in lines[1:]:
        body = line.text or ""
        if body and body[0] in NO_START:
            # Only allowed when the previous line had no legal break at all (degenerate punctuation runs).
            prev = (lines[lines.index(line) - 1].text or "") + body[0]
            assert not any(can_break(a, b) for a, b in itertools.pairwise(prev))
    for line in lines[:-1]:
        body = line.text or ""
        if body and body[-1] in NO_END:
            assert all(ch in NO_END for ch in body)


def test_cjk_wraps_per_character() -> None:
    text = "光学记忆把较早的对话轮次渲染成页面图像。" * 20
    lines = _content_lines(text)
    assert "".join(line.text or "" for line in lines) == text
    assert all((line.text or "")[0] not in NO_START for line in lines)
    assert len(lines) >= 6


def test_strong_spans_are_bold_and_unmatched_markers_stay() -> None:
    (line,) = _content_lines("a **bold** b and a ** loose ** pair and **open")
    assert line.text == "a bold b and a ** loose ** pair and **open"
    styles = [(font.getname()[1], text) for _, font, text in line.runs]
    assert styles[:3] == [
        ("Regular", "a "),
        ("Bold", "bold"),
        ("Regular", " b and a ** loose ** pair and **open"),
    ]


def test_markers_scan_in_linear_time() -> None:
    lines = _content_lines("`a " * 20_000 + "**b " * 20_000)
    assert sum(len(line.text or "") for line in lines) > 100_000
