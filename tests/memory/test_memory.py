"""The OpticalMemory facade: window, paging, real forgetting, decay, pins, costs, budgets."""

from __future__ import annotations

import io
import itertools

import pytest
from PIL import Image

from optical_memory import ladder
from optical_memory.config import MemoryConfig
from optical_memory.decay import keep_levels, page_levels
from optical_memory.errors import ConfigError, InputError, PageNotFoundError
from optical_memory.ladder import Rung
from optical_memory.memory import OpticalMemory
from optical_memory.pricing import deepseek
from optical_memory.pricing.providers import get_provider
from optical_memory.renderers import PagePacker
from optical_memory.store import Store
from optical_memory.types import Turn

from .helpers import turns


def filled(n=24, **config) -> OpticalMemory:
    m = OpticalMemory({"recent_turns": 3, **config})
    m.add("You are a careful assistant.", role="system")
    for t in turns(n):
        m.add(t)
    return m


@pytest.fixture(scope="module")
def mem() -> OpticalMemory:
    return filled(30)


def test_add_accepts_turn_dict_parts_and_string():
    m = OpticalMemory()
    assert m.add(Turn("system", "be brief")).turn_id == 0
    assert m.add({"role": "user", "content": [{"type": "text", "text": "a"}, "b"]}).turn_id == 1
    assert m.add("hi", role="assistant").turn_id == 2
    assert len(m) == 3
    with pytest.raises(InputError, match="needs a role"):
        m.add("no role")
    with pytest.raises(InputError, match="role must be one of"):
        m.add({"role": "wizard", "content": "x"})
    with pytest.raises(InputError, match="image_url"):
        m.add({"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x"}}]})
    with pytest.raises(InputError, match="base64 data URL"):
        m.add({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,x"}}]})
    assert len(m) == 3


def test_recent_window_by_turns_keeps_system_prompt_as_text():
    m = OpticalMemory({"recent_turns": 2})
    m.add("system prompt", role="system")
    for t in turns(5, words=5):
        m.add(t)
    ctx = m.context()
    texts = [i for i in ctx.items if hasattr(i, "content")]
    assert texts[0].content == "system prompt"
    assert [t.content for t in texts[-2:]] == [t["content"] for t in turns(5, words=5)[-2:]]
    pages = m.pages()
    assert len(pages) == 1 and not pages[0].sealed  # three short turns share the open page
    assert pages[0].turns == (1, 3)
    # the open page is cheaper as its text than as a 1280 px image: it goes as text
    assert ctx.usage.pages_as_text == 1 and [t.turn for t in texts[1:4]] == [1, 2, 3]


def test_recent_window_by_tokens():
    m = OpticalMemory({"recent_turns": None, "recent_tokens": 100})
    for t in turns(6, words=30):  # about 45 tokens each
        m.add(t)
    texts = [i for i in m.context(format="hf").items if hasattr(i, "content")]
    assert [t.turn for t in texts][-2:] == [4, 5] and len(m._w.window) == 2
    with pytest.raises(ConfigError, match="recent_turns or recent_tokens"):
        OpticalMemory({"recent_turns": None})


def test_pages_seal_in_order_and_cover_every_paged_turn(mem):
    pages = mem.pages()
    sealed = [p for p in pages if p.sealed]
    assert len(sealed) >= 4
    assert [p.page_id for p in pages] == list(range(len(pages)))
    covered = [s.turn for p in pages for s in p.spans]
    assert sorted(set(covered)) == list(range(1, len(mem) - 3))  # not the system prompt, not the window
    assert all(a.turns[1] <= b.turns[0] for a, b in itertools.pairwise(pages))
    assert all(p.cost == deepseek.positions(p.rung) for p in pages)


def test_forgetting_is_real_by_default(mem):
    rows = mem._w.store.turns(mem._w.sid)
    pending = set(mem._w.packer.pending_turn_ids())
    for row in rows[1 : len(mem) - 3]:
        assert (row.content is None) == (row.turn_id not in pending)
    assert rows[0].content is not None  # the system prompt
    assert all(not p.text_kept for p in mem.pages() if p.sealed)
    assert mem.page_text(0) is None
    assert all(r.tokens["o200k_base"] > 0 and r.tokens["cl100k_base"] > 0 for r in rows)


def test_age_decay_downsamples_stored_pages_in_place(mem):
    pages = [p for p in mem.pages() if p.sealed]
    # default age ladder by pages: newest 2 large, next 2 base, next 4 small, then tiny
    expected = [Rung.LARGE] * 2 + [Rung.BASE] * 2 + [Rung.SMALL] * 4
    expected += [Rung.TINY] * (len(pages) - len(expected))
    assert [p.rung for p in reversed(pages)] == expected[: len(pages)]
    for p in pages:
        png = mem._w.store.page_png(mem._w.sid, p.page_id)
        assert Image.open(io.BytesIO(png)).size == (ladder.spec(p.rung).size,) * 2
        assert mem.page_image(p.page_id).size == (ladder.spec(p.rung).size,) * 2


def test_usage_image_costs_equal_provider_formulas(mem):
    for name in ("deepseek-ocr", "openai:gpt-4o", "anthropic:claude-sonnet-4-5", "gemini:gemini-2.0-flash"):
        ctx = mem.context(provider=name)
        prov = get_provider(name)
        pages = [i for i in ctx.items if hasattr(i, "image")]
        assert ctx.usage.image_tokens == sum(prov.image_tokens(*p.image.size) for p in pages)
        assert ctx.usage.context_tokens == ctx.usage.text_tokens + ctx.usage.image_tokens
        assert ctx.usage.ratio == pytest.approx(ctx.usage.history_text_tokens / ctx.usage.context_tokens)
        if name == "deepseek-ocr":  # hosted providers price a page near its text; DeepSeek far below
            assert ctx.usage.history_text_tokens > ctx.usage.context_tokens
        assert sum(ctx.usage.pages_per_rung.values()) + ctx.usage.pages_as_text == len(mem.pages())


def test_add_result_reports_the_default_context_cost():
    m = OpticalMemory({"recent_turns": 2})
    for t in turns(14):
        result = m.add(t)
        actual = m.context(budget=None).usage.context_tokens
        assert actual <= result.context_tokens <= actual + 3 * len(m.pages())  # joined pieces save a little
    assert result.turn_id == 13


def test_budget_is_never_exceeded_and_does_not_touch_stored_pages(mem):
    before = [(p.page_id, p.rung) for p in mem.pages()]
    full = mem.context(provider="anthropic:claude-sonnet-4-5").usage.context_tokens
    for budget in (full, full - 500, full // 2, full // 4):
        ctx = mem.context(provider="anthropic:claude-sonnet-4-5", budget=budget)
        assert ctx.usage.context_tokens <= budget
    assert ctx.usage.forgotten_for_budget  # a quarter cannot hold every page, even at tiny
    shown = {i.page_id for i in ctx.items if hasattr(i, "image")}
    assert not shown & set(ctx.usage.forgotten_for_budget)
    assert [(p.page_id, p.rung) for p in mem.pages()] == before


def test_budget_smaller_than_recent_text_is_a_clear_error(mem):
    with pytest.raises(ConfigError, match="smaller than the recent text alone"):
        mem.context(budget=10)


def test_pin_holds_a_page_and_unpin_releases_it():
    m = filled(30)
    assert m.pages()[0].rung is not Rung.LARGE
    m.pin(1, "tiny")
    assert m.pages()[1].rung is Rung.TINY and m.pages()[1].pinned is Rung.TINY
    with pytest.raises(ConfigError, match="cannot be pinned at the sharper"):
        m.pin(0, "large")  # text dropped: cannot sharpen
    newest = [p for p in m.pages() if p.sealed][-1].page_id
    m.pin(newest)  # held at its current rung (large) whatever its age
    for t in turns(16, start=16):
        m.add(t)
    assert m.pages()[newest].rung is Rung.LARGE
    m.unpin(newest)
    assert m.pages()[newest].rung is not Rung.LARGE
    assert m.pages()[newest].pinned is None
    with pytest.raises(PageNotFoundError):
        m.pin(999)
    with pytest.raises(ConfigError, match="unknown rung"):
        m.pin(0, "huge")


def test_forget_deletes_the_image():
    m = filled(12)
    m.forget(0)
    assert m.pages()[0].rung is Rung.FORGOTTEN
    assert m._w.store.page_png(m._w.sid, 0) is None
    with pytest.raises(PageNotFoundError, match="forgotten"):
        m.page_image(0)
    assert all(i.page_id != 0 for i in m.context().items if hasattr(i, "image"))
    assert m.context().usage.pages_per_rung["forgotten"] == 1
    open_page = m.pages()[-1]
    if not open_page.sealed:
        with pytest.raises(InputError, match="still open"):
            m.forget(open_page.page_id)


def test_keep_text_rerenders_a_page_pinned_sharper_byte_identically():
    m = filled(30, keep_text=True)
    sealed = [p for p in m.pages() if p.sealed]
    old = sealed[0]
    assert old.rung is not Rung.LARGE and old.text_kept
    assert m.page_text(old.page_id)
    # the same turns packed afresh give the page at the top rung
    packer = PagePacker(m.profile.style())
    reference = None
    for tid in range(1, 31):
        for page in packer.add(Turn(**turns(30)[tid - 1]), tid):
            if page.spans == old.spans:
                reference = page.image
    assert reference is not None
    m.pin(old.page_id, "large")
    assert m.pages()[old.page_id].rung is Rung.LARGE
    kept = keep_levels(reference, page_levels(m.profile, Rung.LARGE))  # the levels a page keeps at its rung
    assert m.page_image(old.page_id).tobytes() == kept.tobytes()


def test_context_formats_validate_against_sdk_types(mem):
    import anthropic
    import openai
    from pydantic import TypeAdapter

    chat = mem.context(provider="openai:gpt-4o")
    assert chat.format == "openai-chat"
    TypeAdapter(list[openai.types.chat.ChatCompletionMessageParam]).validate_python(chat.messages)
    claude = mem.context(provider="anthropic:claude-sonnet-4-5")
    assert claude.system == "You are a careful assistant."
    TypeAdapter(list[anthropic.types.MessageParam]).validate_python(claude.messages)
    hf = mem.context()
    assert hf.format == "hf" and hf.provider == "deepseek-ocr"
    resp = mem.context(provider="openai:gpt-4o", format="openai-responses")
    TypeAdapter(openai.types.responses.ResponseInputParam).validate_python(resp.messages)


def test_page_size_1024_tops_out_at_base():
    m = OpticalMemory(MemoryConfig(recent_turns=1, page_size=1024))
    for t in turns(10):
        m.add(t)
    pages = m.pages()
    assert pages and all(ladder.rank(p.rung) >= ladder.rank(Rung.BASE) for p in pages)
    assert m.page_image(pages[-1].page_id).size == (1024, 1024)
    with pytest.raises(ConfigError, match="sharpest rung is base"):
        m.pin(0, "large")


def test_pages_by_turn_age_policy():
    m = OpticalMemory(
        {"recent_turns": 1, "policy_options": {"unit": "turns", "large": 3, "base": 6, "small": 9}}
    )
    for t in turns(20):
        result = m.add(t)
    assert result.turn_id == 19
    for p in m.pages():
        if p.sealed:
            age = 19 - p.turns[1]
            want = Rung.LARGE if age < 3 else Rung.BASE if age < 6 else Rung.SMALL if age < 9 else Rung.TINY
            assert ladder.rank(p.rung) >= ladder.rank(want)  # never sharper than its age allows


def test_wall_clock_ages_decay_at_context_time(monkeypatch):
    m = OpticalMemory(
        {"recent_turns": 1, "policy_options": {"unit": "seconds", "large": 100, "base": 200, "small": 300}}
    )
    for t in turns(8):
        m.add(t)
    sealed = [p for p in m.pages() if p.sealed]
    assert sealed and all(p.rung is Rung.LARGE for p in sealed)
    import optical_memory.memory as memory_module

    later = memory_module.time.time() + 1000
    monkeypatch.setattr(memory_module.time, "time", lambda: later)
    ctx = m.context()
    assert all(p.rung is Rung.TINY for p in m.pages() if p.sealed)
    assert ctx.usage.pages_per_rung["tiny"] == len(sealed)


def test_add_never_relays_or_rereads_old_pages(monkeypatch):
    calls = {"layout": 0, "png": 0}
    real_iter_add, real_png = PagePacker.iter_add, Store.page_png

    def iter_add(self, turn, turn_id):
        calls["layout"] += 1
        return real_iter_add(self, turn, turn_id)

    def page_png(self, sid, page_id):
        calls["png"] += 1
        return real_png(self, sid, page_id)

    monkeypatch.setattr(PagePacker, "iter_add", iter_add)
    monkeypatch.setattr(Store, "page_png", page_png)
    m = filled(30)
    assert calls["layout"] == len(m) - 1 - 3  # each paged turn laid out once (not the system prompt)
    assert calls["png"] == 0  # demotions downsample the cached, freshly sealed images
    assert len([p for p in m.pages() if p.rung is Rung.SMALL]) >= 1  # demotions did happen


def test_the_budget_setting_applies_per_context_not_to_stored_pages():
    plain = filled(40, budget=None)
    budgeted = filled(40, budget=2500)
    assert [(p.page_id, p.rung) for p in budgeted.pages()] == [(p.page_id, p.rung) for p in plain.pages()]
    usage = budgeted.context().usage
    assert usage.budget == 2500 and usage.context_tokens <= 2500 < plain.context().usage.context_tokens
    assert budgeted.context(budget=None).usage == plain.context().usage
    assert budgeted.context(budget="window").usage.budget == 4096  # half of DeepSeek-OCR's 8,192


def test_the_default_budget_is_half_the_models_window():
    m = filled(40, provider="anthropic:claude-sonnet-4-5")
    assert m.context().usage.budget == 100_000
    assert m.context(provider="openai:gpt-4o").usage.budget == 64_000
    assert m.context(budget=None).usage.budget is None


def test_settled_pages_are_skipped_by_the_age_pass():
    m = filled(40)
    real = m._w.policy
    seen: list[int] = []

    class Recording:
        unit = "pages"

        def assign(self, states, **kw):
            seen.append(len(states))
            return real.assign(states, **kw)

    m._w.policy = Recording()
    for t in turns(40, start=40):
        m.add(t)
    assert m._w._settled > 0 and all(p.rung is Rung.TINY for p in m._w.pages[: m._w._settled])
    assert seen and max(seen) <= 9  # only pages that can still move: 8 above Tiny + the one settling
    fresh = filled(80)
    assert [(p.page_id, p.rung) for p in m.pages()] == [(p.page_id, p.rung) for p in fresh.pages()]


def test_a_page_that_never_pays_keeps_its_text_without_holding_back_later_pages(monkeypatch):
    from optical_memory.writer import SessionWriter

    real = SessionWriter._pays
    monkeypatch.setattr(SessionWriter, "_pays", lambda self, page: page.page_id != 1 and real(self, page))
    m = filled(40)
    sealed = [p for p in m.pages() if p.sealed]
    assert len(sealed) >= 4
    assert sealed[1].text_kept and not sealed[0].text_kept and not sealed[-1].text_kept
    ctx = m.context(budget=None)
    assert ctx.usage.pages_as_text >= 1  # page 1 goes as text, the others as images
