"""Character accuracy, bag-of-characters recall and the edit distance (rapidfuzz) they rest on."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optical_memory.recall.metrics import bag_recall, char_accuracy, levenshtein, normalize


def _dp(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="abcé中 ", max_size=30), st.text(alphabet="abdé中", max_size=30))
def test_distance_equals_the_textbook_dp(a: str, b: str) -> None:
    # unit costs for insertion, deletion and substitution (not rapidfuzz's Indel or a normalised score)
    assert levenshtein(a, b) == _dp(a, b)


def test_known_distances() -> None:
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3
    assert levenshtein("abc", "") == 3
    assert levenshtein("same", "same") == 0


def test_distance_is_fast_on_page_sized_strings() -> None:
    a = "the quick brown fox jumps over the lazy dog " * 100  # 4,400 chars
    b = a.replace("fox", "cat")
    assert levenshtein(a, b) == 300


def test_normalize_applies_nfkc_and_drops_whitespace() -> None:
    assert normalize("ﬁ  Ｆｕｌｌ\twidth\n１２") == "fiFullwidth12"


def test_char_accuracy() -> None:
    assert char_accuracy("hello world", "hello\nworld") == 1.0  # whitespace does not count
    assert char_accuracy("abcd", "abcx") == pytest.approx(0.75)
    assert char_accuracy("abcd", "") == 0.0
    assert char_accuracy("", "") == 1.0
    assert char_accuracy("ab", "abcd") == pytest.approx(0.5)  # divided by the longer length


def test_bag_recall_ignores_order_but_counts_multiplicity() -> None:
    assert bag_recall("abc", "cba") == 1.0
    assert bag_recall("aab", "ab") == pytest.approx(2 / 3)
    assert bag_recall("", "anything") == 1.0
    assert char_accuracy("abc", "cba") < 1.0
