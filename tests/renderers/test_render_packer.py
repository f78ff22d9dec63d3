"""Incremental packing: sealing, spans, pending pages, and exact state()/restore() round trips."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import pytest

from optical_memory.errors import InputError
from optical_memory.images import encode_png
from optical_memory.renderers import ChatRenderer, PagePacker, RenderStyle
from optical_memory.renderers import packer as packer_module
from optical_memory.types import RenderedPage, ToolCall, Turn

SMALL = RenderStyle.for_size(512)  # fewer pixels: fast tests, same layout rules


def _turns() -> list[Turn]:
    prose = "The quick brown fox jumps over the lazy dog. " * 40
    return [
        Turn("system", "Be brief."),
        Turn("user", prose),
        Turn("assistant", "## Plan\n\n- one\n- two\n\n```\ncode line\n\tindented\n```\n" + prose * 3),
        Turn("user", ""),
        Turn("assistant", "中文内容，测试。" * 400),
        Turn("tool", "result " * 40, name="search"),
        Turn("user", "short"),
    ]


def _fingerprint(pages: list[RenderedPage]) -> list[tuple[bytes, tuple[object, ...], str, int]]:
    return [(encode_png(p.image), p.spans, p.text, p.text_tokens) for p in pages]


def _pack(turns: list[Turn], *, round_trip: bool) -> list[RenderedPage]:
    by_id = dict(enumerate(turns))
    packer = PagePacker(SMALL)
    pages: list[RenderedPage] = []
    for i, turn in enumerate(turns):
        if round_trip:
            state = json.loads(json.dumps(packer.state()))
            packer = PagePacker.restore(state, by_id, SMALL)
        pages += packer.add(turn, i)
    last = packer.seal()
    return pages + ([last] if last else [])


def test_restore_at_every_step_gives_identical_pages() -> None:
    turns = _turns()
    plain = _pack(turns, round_trip=False)
    assert len(plain) >= 4
    assert _fingerprint(plain) == _fingerprint(_pack(turns, round_trip=True))


def test_packer_matches_chat_renderer() -> None:
    turns = _turns()
    assert _fingerprint(_pack(turns, round_trip=False)) == _fingerprint(ChatRenderer(SMALL).render(turns))


def test_spans_tile_every_turn_across_pages() -> None:
    turns = _turns()
    pages = ChatRenderer(SMALL).render(turns)
    pieces: dict[int, list[tuple[int, int]]] = {}
    for page in pages:
        for span in page.spans:
            pieces.setdefault(span.turn, []).append((span.start, span.end))
    assert sorted(pieces) == list(range(len(turns)))
    for i, ranges in pieces.items():
        assert ranges[0][0] == 0 and ranges[-1][1] == len(turns[i].content)
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    continued = [p for p in pages if "(cont.)" in p.text.split("\n")[0]]
    assert continued, "a long turn should continue under a (cont.) label"


def test_pending_and_seal() -> None:
    packer = PagePacker(SMALL)
    assert packer.pending() is None and packer.seal() is None and packer.pending_turn_ids() == []
    assert packer.add(Turn("user", "hi"), 7) == []
    pending = packer.pending()
    assert pending is not None and pending.text == "User: hi"
    assert packer.pending_turn_ids() == [7]
    sealed = packer.seal()
    assert sealed is not None and sealed.text == pending.text
    assert encode_png(sealed.image) == encode_png(pending.image)
    assert packer.pending() is None


def test_a_long_turn_seals_several_pages_in_one_add() -> None:
    packer = PagePacker(SMALL)
    packer.add(Turn("user", "first"), 0)
    sealed = packer.add(Turn("assistant", "lorem ipsum dolor " * 1500), 1)
    assert len(sealed) >= 3
    assert sealed[0].spans[0].turn == 0 and all(p.spans[-1].turn == 1 for p in sealed)
    assert packer.state()["turn_ids"] == [1] and packer.state()["first_line"] > 0


def test_adding_a_turn_lays_out_only_that_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = packer_module.layout_turn

    def spy(turn: Turn, style: RenderStyle):  # type: ignore[no-untyped-def]
        calls.append(turn.content)
        return real(turn, style)

    monkeypatch.setattr(packer_module, "layout_turn", spy)
    packer = PagePacker(SMALL)
    for i in range(30):
        packer.add(Turn("user", f"turn {i} " * 30), i)
    assert calls == [f"turn {i} " * 30 for i in range(30)]


def test_state_is_small_and_checked() -> None:
    packer = PagePacker(SMALL)
    packer.add(Turn("user", "x " * 5000), 3)
    state = packer.state()
    assert state["first_line"] > 0
    assert len(json.dumps(state)) < 200
    with pytest.raises(InputError, match="not given"):
        PagePacker.restore(state, {}, SMALL)
    with pytest.raises(InputError, match="different RenderStyle"):
        PagePacker.restore(state, {3: Turn("user", "x " * 5000)}, RenderStyle())
    with pytest.raises(InputError, match="state mismatch"):
        PagePacker.restore(state, {3: Turn("user", "x")}, SMALL)
    with pytest.raises(InputError, match="malformed"):
        PagePacker.restore({"version": 1}, {}, SMALL)


def test_duplicate_turn_id_and_bad_turns_are_input_errors() -> None:
    packer = PagePacker(SMALL)
    packer.add(Turn("user", "a"), 1)
    with pytest.raises(InputError, match="already"):
        packer.add(Turn("user", "b"), 1)
    with pytest.raises(InputError):
        packer.add({"role": "user", "content": 42}, 2)  # type: ignore[arg-type]


def test_a_role_label_is_never_left_alone_at_the_bottom_of_a_page() -> None:
    turns = [Turn("user" if i % 2 else "assistant", "word " * (7 + (i * 37) % 90)) for i in range(120)]
    pages = ChatRenderer(SMALL).render(turns)
    assert len(pages) > 5
    for page in pages:
        for span in page.spans:
            assert span.end > span.start, f"turn {span.turn} has only its label on a page"
        assert page.text.split("\n")[-1] not in ("User:", "Assistant:")


def _agent_turns() -> list[Turn]:
    out: list[Turn] = [Turn("system", "Be brief.")]
    for i in range(40):
        call = ToolCall(f"c{i}", "bash", json.dumps({"command": f"ls dir{i} " + "-la " * (i % 7)}))
        out.append(Turn("user", f"step {i}: " + "please check the folder and report back " * (1 + i % 5)))
        out.append(Turn("assistant", "Checking." if i % 3 else "", tool_calls=(call,)))
        result = "ok" if i % 2 else "\n".join(f"file{j}.py  {j * 37} bytes" for j in range(1 + i % 9))
        out.append(Turn("tool", result, tool_call_id=f"c{i}", name="bash"))
    return out


@pytest.mark.parametrize("style", [SMALL, replace(SMALL, flow=True)], ids=["lines", "flowed"])
def test_agent_turns_restore_exactly_and_keep_calls_with_results(style: RenderStyle) -> None:
    turns = _agent_turns()
    by_id = dict(enumerate(turns))

    def pack(round_trip: bool) -> list[RenderedPage]:
        packer = PagePacker(style)
        pages: list[RenderedPage] = []
        for i, turn in enumerate(turns):
            if round_trip:
                packer = PagePacker.restore(json.loads(json.dumps(packer.state())), by_id, style)
            pages += packer.add(turn, i)
        return pages + [p for p in [packer.seal()] if p]

    plain = pack(False)
    assert len(plain) >= 4
    assert _fingerprint(plain) == _fingerprint(pack(True))
    for page in plain:
        for span in page.spans:
            turn = turns[span.turn]
            if turn.tool_call_id and span.start == 0:  # a result starts on the page of its call
                call_turn = span.turn - 1
                assert any(s.turn == call_turn for s in page.spans), (span, page.spans)
    joined = [line for page in plain for line in page.text.split("\n") if "⇒ ok" in line]
    assert joined, "one-line results join their call's line"


def test_prose_turns_run_on_in_flowed_layout() -> None:
    style = replace(SMALL, flow=True)
    turns = [Turn("user" if i % 2 else "assistant", f"short message {i}.") for i in range(30)]
    (page,) = ChatRenderer(style).render(turns)
    assert len(page.text.split("\n")) < 15  # several turns share a line
    assert "short message 0. User: short message 1." in page.text
