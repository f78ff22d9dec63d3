"""Markdown blocks, wrapping rules (Latin, CJK kinsoku, over-long tokens, code) and line geometry."""

from __future__ import annotations

import itertools
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from optical_memory.renderers import RenderStyle
from optical_memory.renderers.layout import (
    CONTINUATION,
    LINE_MARK,
    NO_END,
    NO_START,
    PARAGRAPH_MARK,
    Line,
    can_break,
    join_line,
    label_text,
    layout_turn,
)
from optical_memory.renderers.markdown import blocks
from optical_memory.types import ToolCall, Turn

STYLE = RenderStyle()


def _content_lines(text: str, role: str = "assistant", style: RenderStyle = STYLE) -> list[Line]:
    """The lines of a turn's content: the label line dropped, or the inline label cut off the first line."""
    turn = Turn(role, text)
    lines = list(layout_turn(turn, style))
    if lines[0].label_only:
        return lines[1:]
    label = label_text(turn) + " "
    first = lines[0]
    body = (first.text or "").removeprefix(label)
    return [replace(first, text=body, runs=first.runs[1:]), *lines[1:]]


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
    assert [b.kind for b in blocks("```\na\n\nb")] == ["code", "gap", "code"]


def test_code_folds_what_carries_no_information() -> None:
    text = "```\nx = 1\n\n\n\n\ny = 2\n" + "m" * 2500 + "\n```"
    kinds = [(b.kind, b.marker) for b in blocks(text)]
    assert kinds == [
        ("code", ""), ("fold", "⟨4 blank lines⟩"), ("code", ""), ("fold", "⟨long line · 2,500 chars⟩"),
    ]  # fmt: skip
    dump = "\n".join(f"{i * 16:08x}: " + " ".join(["00ff"] * 8) for i in range(6))
    assert [(b.kind, b.marker) for b in blocks(dump, verbatim=True)] == [("fold", "⟨hex dump · 6 lines⟩")]


def test_label_then_content_and_names() -> None:
    lines = list(layout_turn(Turn("tool", "ok", name="search\nweb"), STYLE))
    assert [line.text for line in lines] == ["← search web: ok"]
    assert next(iter(layout_turn(Turn("user", ""), STYLE))).text == "User:"
    (prose,) = layout_turn(Turn("user", "hello there", name="Ann"), STYLE)
    assert prose.text == "User (Ann): hello there" and not prose.label_only
    code = list(layout_turn(Turn("assistant", "```\nx = 1\n```"), STYLE))
    assert code[0].text == "Assistant:" and code[0].label_only and code[1].text == "x = 1"


def test_tool_calls_draw_as_compact_lines_and_a_short_result_joins_its_call() -> None:
    call = ToolCall("c1", "bash", '{"command": "ls -F"}')
    (line,) = layout_turn(Turn("assistant", "", tool_calls=(call,)), STYLE)
    assert line.text == 'Assistant: → bash({"command":"ls -F"})' and line.call_id == "c1"
    joined = join_line(line, Turn("tool", "AUTHORS LICENSE", tool_call_id="c1"), STYLE)
    assert joined is not None and joined.text == 'Assistant: → bash({"command":"ls -F"}) ⇒ AUTHORS LICENSE'
    assert joined.call_id is None and joined.end > line.end
    assert join_line(line, Turn("tool", "a\nb", tool_call_id="c1"), STYLE) is None
    assert join_line(line, Turn("tool", "x" * 500, tool_call_id="c1"), STYLE) is None
    two = list(
        layout_turn(Turn("assistant", "Reading both.", tool_calls=(call, ToolCall("c2", "cat", "{}"))), STYLE)
    )
    assert [line.text for line in two] == [
        "Assistant: Reading both.",
        '→ bash({"command":"ls -F"})',
        "→ cat({})",
    ]


def test_what_carries_no_information_is_not_drawn() -> None:
    (line,) = _content_lines("a    b\tc   ")
    assert line.text == "a b c"
    code = _content_lines("```\n\tif x:      y\n```")
    assert code[0].text == "    if x:  y"  # indentation kept, an inner run of spaces drawn as two
    blob = "iVBORw0KGgoAAAANSUhEUgAA" * 20
    (line,) = _content_lines(f"see {blob} and data:image/png;base64,{blob} ok")
    assert (
        line.text
        == "see ⟨base64\xa0·\xa0480\xa0chars⟩ and ⟨image/png\xa0data\xa0URL\xa0·\xa0502\xa0chars⟩ ok"
    )
    (rule,) = _content_lines("=" * 20 + " FAILURES " + "=" * 20 + " -- ok")
    assert rule.text == "===×20 FAILURES ===×20 -- ok"  # runs of one character: what and how long
    path = "/".join(["src", "optical_memory", "renderers"] * 12)
    assert path in _content_lines(path)[0].text or len(_content_lines(path)) > 1  # a path is not a blob


def test_flowed_lines_run_on_with_marks() -> None:
    flowed = replace(STYLE, flow=True)
    text = "menu:\n1. one\n2. two\n\nnext para\n\n```\ndef f():\n    return 1\n```"
    lines = _content_lines(text, style=flowed)
    assert [line.text for line in lines] == [
        f"menu:{LINE_MARK}1. one{LINE_MARK}2. two{PARAGRAPH_MARK}next para",
        f"def f():{LINE_MARK}    return 1",
    ]
    assert lines[0].src_start == 0 and lines[1].src_end == len(text) - 4
    assert can_break(LINE_MARK, "a") and not can_break("a", LINE_MARK)


def test_latin_wraps_at_spaces_within_the_column() -> None:
    words = " ".join(f"word{i}" for i in range(400))
    lines = _content_lines(words)
    assert len(lines) > 5
    assert " ".join(line.text or "" for line in lines) == words
    assert all(_right_edge(line) <= STYLE.width - STYLE.margin for line in lines)
    assert all(not (line.text or "").startswith(" ") for line in lines)


def test_overlong_token_breaks_at_the_width() -> None:
    token = "x" * 1000
    lines = _content_lines(token)
    assert "".join(line.text or "" for line in lines) == token
    assert len(lines) >= 5
    assert all(_right_edge(line) <= STYLE.width - STYLE.margin for line in lines)


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
