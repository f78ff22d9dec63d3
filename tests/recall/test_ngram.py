"""The sliding-window no-repeat-n-gram rule (DeepSeek-OCR ngram_norepeat.py)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from optical_memory.errors import ConfigError
from optical_memory.recall.ngram import (
    EXEMPT_TOKEN_IDS,
    NGRAM_SIZE,
    NGRAM_WINDOW,
    SlidingWindowNoRepeatNGram,
    banned_tokens,
)


def test_upstream_settings() -> None:
    assert (NGRAM_SIZE, NGRAM_WINDOW) == (30, 90)
    assert frozenset({128821, 128822}) == EXEMPT_TOKEN_IDS


def test_bans_the_token_that_would_repeat_an_ngram() -> None:
    # 1 2 3 ... 1 2 -> "3" would repeat the trigram 1 2 3
    assert banned_tokens([1, 2, 3, 4, 1, 2], ngram_size=3, window_size=10) == {3}
    assert banned_tokens([1, 2, 3, 4, 1, 5], ngram_size=3, window_size=10) == set()


def test_nothing_banned_before_n_tokens() -> None:
    assert banned_tokens([7, 7], ngram_size=3, window_size=10) == set()
    assert banned_tokens([7, 7, 7], ngram_size=3, window_size=10) == {7}


def test_only_ngrams_starting_inside_the_window_count() -> None:
    seq = [1, 2, 3, 9, 8, 7, 6, 5, 4, 1, 2]
    assert banned_tokens(seq, ngram_size=3, window_size=len(seq)) == {3}
    # the 1 2 3 n-gram starts 11 tokens back: outside a window of 10
    assert banned_tokens(seq, ngram_size=3, window_size=10) == set()


def test_exempt_tokens_may_repeat() -> None:
    td = 128821
    seq = [5, 6, td, 0, 5, 6]
    assert banned_tokens(seq, ngram_size=3, window_size=10) == set()
    assert banned_tokens(seq, ngram_size=3, window_size=10, exempt=()) == {td}


def test_unigram_rule_bans_the_window() -> None:
    assert banned_tokens([1, 2, 3, 4], ngram_size=1, window_size=2) == {3, 4}


@pytest.mark.parametrize(("n", "w"), [(0, 5), (3, 0), (-1, 5), (2.5, 5)])
def test_bad_sizes_are_config_errors(n: object, w: object) -> None:
    with pytest.raises(ConfigError):
        banned_tokens([1, 2, 3], ngram_size=n, window_size=w)  # type: ignore[arg-type]


def _repeats(seq: list[int], n: int, window: int) -> bool:
    """True when the last n-gram of seq already occurs starting within the window before it."""
    if len(seq) < n:
        return False
    body = seq[:-1]
    last = seq[-n:]
    start = max(0, len(body) - window)
    return any(body[i : i + n] == last for i in range(start, len(body) - n + 1))


@settings(max_examples=300, deadline=None)
@given(
    seq=st.lists(st.integers(0, 4), max_size=40),
    nxt=st.integers(0, 4),
    n=st.integers(1, 5),
    window=st.integers(1, 30),
)
def test_banned_exactly_when_the_next_token_repeats_an_ngram(
    seq: list[int], nxt: int, n: int, window: int
) -> None:
    banned = nxt in banned_tokens(seq, ngram_size=n, window_size=window, exempt=())
    assert banned == _repeats([*seq, nxt], n, window)


def test_processor_ignores_the_prompt_and_masks_per_row() -> None:
    prompt = [1, 2, 3, 1, 2]  # would ban 3 if the prompt counted
    rows = torch.tensor([[*prompt, 4, 5, 6, 4, 5], [*prompt, 4, 5, 6, 7, 8]])
    scores = torch.zeros(2, 10)
    proc = SlidingWindowNoRepeatNGram(len(prompt), ngram_size=3, window_size=10)
    out = proc(rows, scores)
    assert (
        out[0, 6] == float("-inf") and torch.isfinite(out[0, :6]).all() and torch.isfinite(out[0, 7:]).all()
    )
    assert torch.isfinite(out[1]).all()
    assert torch.equal(scores, torch.zeros(2, 10))  # input not modified
    only_prompt = torch.tensor([prompt])
    counted = SlidingWindowNoRepeatNGram(0, ngram_size=3, window_size=10)(only_prompt, torch.zeros(1, 10))
    assert counted[0, 3] == float("-inf")
    ignored = SlidingWindowNoRepeatNGram(len(prompt), ngram_size=3, window_size=10)(
        only_prompt, torch.zeros(1, 10)
    )
    assert torch.isfinite(ignored).all()


def test_processor_matches_the_pure_rule_on_long_sequences() -> None:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 3, (1, 400), generator=gen)
    proc = SlidingWindowNoRepeatNGram(7, ngram_size=4, window_size=90)
    out = proc(ids, torch.zeros(1, 3))
    expected = banned_tokens(ids[0, 7:].tolist(), ngram_size=4, window_size=90)
    assert {i for i in range(3) if out[0, i] == float("-inf")} == expected


def test_processor_rejects_a_negative_prompt_length() -> None:
    with pytest.raises(ConfigError):
        SlidingWindowNoRepeatNGram(-1)
