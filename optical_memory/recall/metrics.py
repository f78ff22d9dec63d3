"""How much of a page came back: character accuracy and bag-of-characters recall.

Both compare texts after NFKC normalisation with all whitespace removed, so line breaks, indentation and
the spacing an OCR guesses between words do not count; what counts is the characters themselves.

- Character accuracy = 1 - Levenshtein distance / length of the longer text (1.0 for two empty texts).
  This is the measure behind every CPU OCR figure this project quotes. DeepSeek-OCR's Fox
  "precision" (paper Table 2) is a related but not identical edit-distance measure, so curves drawn beside
  the published figures compare shapes, not decimals.
- Bag-of-characters recall = the share of the reference's characters (as a multiset) found in the reading,
  which ignores order: high recall with low accuracy means the characters came back in the wrong order
  (columns or lines interleaved).

The edit distance is ``rapidfuzz``'s Levenshtein distance (C++, bit-parallel: milliseconds for page-sized
texts).
"""

from __future__ import annotations

import unicodedata
from collections import Counter

from rapidfuzz.distance import Levenshtein

__all__ = ["bag_recall", "char_accuracy", "levenshtein", "normalize"]


def normalize(text: str) -> str:
    """NFKC-normalise ``text`` and drop every whitespace character."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text) if not ch.isspace())


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions, each cost 1) between two strings."""
    return int(Levenshtein.distance(a, b))


def char_accuracy(reference: str, hypothesis: str) -> float:
    """1 - edit distance / longer length, after :func:`normalize`; in [0, 1], 1.0 for a perfect read."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    longest = max(len(ref), len(hyp))
    if longest == 0:
        return 1.0
    return 1.0 - levenshtein(ref, hyp) / longest


def bag_recall(reference: str, hypothesis: str) -> float:
    """Share of the reference's characters (counted with multiplicity) present in the hypothesis.

    1.0 when the reference is empty.
    """
    ref = Counter(normalize(reference))
    total = sum(ref.values())
    if total == 0:
        return 1.0
    hyp = Counter(normalize(hypothesis))
    return sum(min(count, hyp[ch]) for ch, count in ref.items()) / total
