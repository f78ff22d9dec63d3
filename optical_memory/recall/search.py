"""Search over a memory's pages: BM25 over what the memory still holds of each page.

A page's document is made of:

- ``text``: the text of its turn pieces, while it is kept (``keep_text=True``, or a turn not yet dropped);
- else ``terms``: the search terms of that text, taken as the page was sealed and stored with it until it
  is forgotten (what its image shows, in the form the index reads: no OCR is needed to find a page);
- else, for a page stored before there were terms, ``ocr:<reader>``: what a reader read from its image at
  its current rung (kept in the store by :meth:`~optical_memory.memory.OpticalMemory.read_pages` and
  ``recall``, one per page and reader, while the page stays at that rung);
- ``exact``: its verbatim spans (see :mod:`optical_memory.spans`), as trimmed at its rung.

:class:`SearchIndex` is an inverted index kept per memory and brought up to date at each search from the
pages that changed (a page's key: its rung, spans, whether its text is kept, its reading), so ``add()`` only
stores a sealed page's terms and a search reads back only what changed since the last. Scores are BM25 as
Lucene computes it (``idf = ln(1 + (N - df + 0.5) / (df + 0.5))``, term weight
``tf / (tf + k1 * (1 - b + b * len / avg_len))``, ``k1=1.5``, ``b=0.75``). Terms are NFKC case-folded runs
of letters and digits; CJK runs become character bigrams, so a Chinese query matches without a word
segmenter. Neighbouring words (function words skipped) also make a term, so a phrase such as ``load test``
outranks pages that only hold its words apart; a query leaves out English function words (``what``,
``the``, ``you``...).
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optical_memory.ladder import Rung
from optical_memory.spans import Exact
from optical_memory.store import ReadRow

if TYPE_CHECKING:
    from optical_memory.writer import SessionWriter

__all__ = [
    "STOPWORDS",
    "SearchHit",
    "SearchIndex",
    "Source",
    "index_terms",
    "pairs",
    "query_terms",
    "terms",
    "update_index",
]

_WORD = re.compile(r"[^\W_]+")
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_PIECE = re.compile(f"[{_CJK}]+|[^{_CJK}]+")
_HAS_CJK = re.compile(f"[{_CJK}]")
_FUNCTION_WORDS = (
    "a an and are as at be been but by can could did do does for from had has have he her him his how i "
    "if in into is it its me my of on or our please she so than that the their them then there these they "
    "this to us was we were what when where which who why will with would you your"
)
STOPWORDS = frozenset(_FUNCTION_WORDS.split())
"""English function words left out of a query (a query of nothing else keeps them): in a small history they
are rare enough to outweigh the words that matter."""
K1 = 1.5
B = 0.75
SNIPPET_CHARS = 240
"""Longest snippet a hit carries."""


def terms(text: str) -> list[str]:
    """The search terms of ``text``: case-folded words and numbers, CJK runs as character bigrams."""
    out: list[str] = []
    for word in _WORD.findall(unicodedata.normalize("NFKC", text).casefold()):
        if not _HAS_CJK.search(word):
            out.append(word)
            continue
        for piece in _PIECE.findall(word):
            if not _HAS_CJK.match(piece) or len(piece) == 1:
                out.append(piece)
            else:
                out.extend(piece[i : i + 2] for i in range(len(piece) - 1))
    return out


def pairs(found: Sequence[str]) -> list[str]:
    """Each two neighbouring words of ``found`` once function words are skipped (``"load test"``): a
    document and a query sharing a pair share a phrase, which single words shared across a long history
    cannot tell apart. CJK terms, already pairs of characters, take no part."""
    words = [t for t in found if t not in STOPWORDS and not _HAS_CJK.search(t)]
    return [f"{a} {b}" for a, b in itertools.pairwise(words)]


def index_terms(text: str) -> list[str]:
    """What a document is indexed by: its :func:`terms`, then their :func:`pairs`."""
    found = terms(text)
    return found + pairs(found)


def _indexed(source: Source) -> list[str]:
    """A source's :func:`index_terms` (stored terms are terms already: they are split, not parsed again)."""
    if source.kind != "terms":
        return index_terms(source.text)
    found = source.text.split()
    return found + pairs(found)


def query_terms(query: str) -> list[str]:
    """The distinct terms a query is scored by: its terms less :data:`STOPWORDS` (all of them when that
    leaves none), then their :func:`pairs`."""
    found = terms(query)
    words = [t for t in found if t not in STOPWORDS] or found
    return list(dict.fromkeys(words + pairs(found)))


@dataclass(frozen=True, slots=True)
class Source:
    """One part of a page's document: its kind (``text``, ``terms``, ``exact``, ``ocr:<reader>``) and text."""

    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A page found by :meth:`~optical_memory.memory.OpticalMemory.search`.

    ``snippet`` is the line of its kept text or reading sharing the most terms with the query, and
    ``source`` says which (``text`` or ``ocr:<reader>``; both None when the page has neither). ``spans`` are
    the page's verbatim spans exactly as stored: those that share a term with the query or stand on that
    line, or all of them when there is no line to show. ``sources`` lists what the page's
    document was made of.
    """

    page_id: int
    score: float
    rung: Rung
    spans: tuple[str, ...]
    snippet: str | None
    source: str | None
    sources: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The hit as a tool answers with it (JSON-able; ``sources`` left out)."""
        return {
            "page_id": self.page_id,
            "score": self.score,
            "rung": self.rung.value,
            "spans": list(self.spans),
            "snippet": self.snippet,
            "source": self.source,
        }


@dataclass(slots=True)
class _Doc:
    key: Hashable
    rung: Rung
    sources: tuple[Source, ...]
    counts: Counter[str]
    length: int


class SearchIndex:
    """An inverted index of page documents, updated page by page (see the module docstring)."""

    def __init__(self) -> None:
        self._docs: dict[int, _Doc] = {}
        self._postings: dict[str, dict[int, int]] = {}
        self._total = 0

    def __len__(self) -> int:
        return len(self._docs)

    def key(self, page_id: int) -> Hashable | None:
        """The key a page was indexed under (None when it is not indexed)."""
        doc = self._docs.get(page_id)
        return None if doc is None else doc.key

    def put(self, page_id: int, key: Hashable, rung: Rung, sources: Sequence[Source]) -> None:
        """Index (or re-index) a page's document; a page with nothing left to search is dropped."""
        self.drop(page_id)
        counts = Counter(t for source in sources for t in _indexed(source))
        if not counts:
            return
        length = sum(counts.values())
        self._docs[page_id] = _Doc(key, rung, tuple(sources), counts, length)
        self._total += length
        for term, n in counts.items():
            self._postings.setdefault(term, {})[page_id] = n

    def drop(self, page_id: int) -> None:
        """Remove a page from the index (nothing happens when it is not there)."""
        doc = self._docs.pop(page_id, None)
        if doc is None:
            return
        self._total -= doc.length
        for term in doc.counts:
            posting = self._postings[term]
            del posting[page_id]
            if not posting:
                del self._postings[term]

    def keep_only(self, page_ids: Iterable[int]) -> None:
        """Drop every indexed page not in ``page_ids``."""
        keep = set(page_ids)
        for page_id in [p for p in self._docs if p not in keep]:
            self.drop(page_id)

    def scores(self, query: str) -> dict[int, float]:
        """The BM25 score of every page sharing a term with ``query`` (each distinct term counted once)."""
        n = len(self._docs)
        if not n:
            return {}
        avg = self._total / n
        out: dict[int, float] = {}
        for term in query_terms(query):
            posting = self._postings.get(term)
            if not posting:
                continue
            idf = math.log(1 + (n - len(posting) + 0.5) / (len(posting) + 0.5))
            for page_id, tf in posting.items():
                norm = K1 * (1 - B + B * self._docs[page_id].length / avg)
                out[page_id] = out.get(page_id, 0.0) + idf * tf / (tf + norm)
        return out

    def search(self, query: str, k: int) -> list[SearchHit]:
        """The ``k`` best pages for ``query``, best first (ties: the newer page first)."""
        scores = self.scores(query)
        best = sorted(scores, key=lambda p: (-scores[p], -p))[:k]
        wanted = set(query_terms(query))
        return [self._hit(page_id, scores[page_id], wanted) for page_id in best]

    def _hit(self, page_id: int, score: float, wanted: set[str]) -> SearchHit:
        doc = self._docs[page_id]
        best, source, most = "", None, 0
        for s in doc.sources:
            if s.kind in ("exact", "terms"):
                continue
            for text_line in s.text.splitlines():
                shared = len(wanted & set(terms(text_line)))
                if shared > most:
                    best, source, most = text_line.strip(), s.kind, shared
        exact = [s.text for s in doc.sources if s.kind == "exact"]
        spans = tuple(t for t in exact if t in best or wanted & set(terms(t))) if source else tuple(exact)
        snippet = best[:SNIPPET_CHARS] if source else None
        kinds = tuple(dict.fromkeys(s.kind for s in doc.sources))
        return SearchHit(page_id, round(score, 6), doc.rung, spans, snippet, source, kinds)


def update_index(index: SearchIndex, writer: SessionWriter) -> None:
    """Bring ``index`` up to date with the session: re-index the pages whose key changed, drop the gone."""
    readings = writer.readings()
    changed: dict[int, tuple[Hashable, bool, ReadRow | None]] = {}
    for page in writer.pages:
        kept = writer.text_kept(page.spans)
        reading = None if kept else _reading(readings.get(page.page_id, {}), page.rung)
        key: Hashable = (page.rung, page.exact, kept, reading)
        if index.key(page.page_id) != key:
            changed[page.page_id] = (key, kept, reading)
    bags = writer.store.page_terms(writer.sid, [p for p, (_, kept, _) in changed.items() if not kept])
    for page_id, (key, kept, reading) in changed.items():
        page = writer.pages[page_id]
        text = writer.page_text(page.spans) if kept else None
        index.put(page_id, key, page.rung, _sources(text, bags.get(page_id), page.exact, reading))
    ids = list(range(len(writer.pages)))
    spans = writer.packer.pending_spans() if writer.pending_ids else ()
    if spans:  # the open page: its text is held until it is sealed
        open_id = len(writer.pages)
        open_key = ("open", spans, writer.text_kept(spans))
        if index.key(open_id) != open_key:
            sources = _sources(writer.page_text(spans), None, writer.open_exact(), None)
            index.put(open_id, open_key, writer.top, sources)
        ids.append(open_id)
    index.keep_only(ids)


def _reading(rows: Mapping[str, ReadRow], rung: Rung) -> ReadRow | None:
    """The reading a page is searched by: one made at its current rung (the first reader by name)."""
    if rung is Rung.FORGOTTEN:
        return None
    return next((rows[name] for name in sorted(rows) if rows[name].rung == rung.value), None)


def _sources(text: str | None, bag: str | None, exact: Exact, reading: ReadRow | None) -> list[Source]:
    """A page's document: its kept text, else its terms (or, for a page stored without, its reading),
    then its verbatim spans."""
    out = [] if text is None else [Source("text", text)]
    if text is None and bag is not None:
        out.append(Source("terms", bag))
    elif text is None and reading is not None:
        out.append(Source(f"ocr:{reading.reader}", reading.text))
    out.extend(Source("exact", span) for _, span, _ in exact)
    return out
