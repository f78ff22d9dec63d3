"""The search index: its terms, BM25 scores equal to an independent implementation (bm25s, Lucene's
variant) on a real chat, and an index kept up page by page equal to one built afresh."""

from __future__ import annotations

from pathlib import Path

import pytest

from optical_memory.conversation import load_conversation
from optical_memory.ladder import Rung
from optical_memory.recall.search import SearchIndex, Source, index_terms, pairs, query_terms, terms

CHATS = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "chats"
QUERIES = ["test failing", "trace context", "mix.exs dependency", "Plug.Conn session_id", "为什么"]


def _documents() -> list[str]:
    english = [t.content for t in load_conversation(CHATS / "en_agent_claude_code_spotter.json")[:120]]
    chinese = [t.content for t in load_conversation(CHATS / "zh_code_sharegpt.json")[:20]]
    return [d for d in english + chinese if terms(d)]


def test_terms_fold_case_split_ids_and_pair_cjk() -> None:
    assert terms("Order ORD-48213 at https://Shop.example.com") == [
        "order", "ord", "48213", "at", "https", "shop", "example", "com",
    ]  # fmt: skip
    assert terms("ＡＢＣ１２") == ["abc12"]  # NFKC: full-width letters and digits
    assert terms("订单号是ORD7") == ["订单", "单号", "号是", "ord7"]
    assert terms("好") == ["好"] and terms("snake_case") == ["snake", "case"]


def test_queries_leave_out_function_words_and_pair_the_words_left() -> None:
    assert query_terms("What was the order id I gave you?") == ["order", "id", "gave", "order id", "id gave"]
    assert query_terms("what is it") == ["what", "is", "it"]  # nothing else is left
    assert pairs(terms("the id of the load test, 订单号")) == ["id load", "load test"]
    assert index_terms("a load test") == ["a", "load", "test", "load test"]


def test_a_shared_phrase_outranks_its_words_far_apart() -> None:
    index = SearchIndex()
    index.put(0, 0, Rung.BASE, [Source("terms", "the id of the load test is TKT-1")])
    index.put(
        1, 1, Rung.BASE, [Source("text", "load the id config; the test runs; load again; test the id again")]
    )
    assert [h.page_id for h in index.search("What was the id of the load test?", 2)] == [0, 1]


def test_scores_equal_bm25s_lucene_on_a_real_chat() -> None:
    bm25s = pytest.importorskip("bm25s")
    docs = _documents()
    index = SearchIndex()
    for i, doc in enumerate(docs):
        index.put(i, i, Rung.LARGE, [Source("text", doc)])
    oracle = bm25s.BM25(method="lucene", k1=1.5, b=0.75)
    oracle.index([index_terms(d) for d in docs], show_progress=False)
    for query in QUERIES:
        expected = oracle.get_scores(query_terms(query))
        got = index.scores(query)
        assert any(got.values())
        for i in range(len(docs)):
            assert got.get(i, 0.0) == pytest.approx(float(expected[i]), rel=1e-5, abs=1e-6)


def test_an_index_kept_up_page_by_page_equals_a_fresh_one() -> None:
    docs = _documents()
    churned = SearchIndex()
    for i, doc in enumerate(docs):
        churned.put(i, "first", Rung.LARGE, [Source("text", doc)])
    for i in range(0, len(docs), 3):  # pages change (decay, trimmed spans), some go
        churned.put(i, "second", Rung.TINY, [Source("exact", docs[i][:40])])
    churned.keep_only(i for i in range(len(docs)) if i % 7)
    fresh = SearchIndex()
    for i, doc in enumerate(docs):
        if i % 7:
            fresh.put(
                i, "fresh", Rung.LARGE, [Source("exact", doc[:40]) if i % 3 == 0 else Source("text", doc)]
            )
    assert len(churned) == len(fresh)
    for query in QUERIES:
        assert churned.scores(query) == pytest.approx(fresh.scores(query))
    assert churned.key(1) == "first" and churned.key(0) is None and churned.key(3) == "second"


def test_hits_carry_the_matched_spans_and_the_best_line() -> None:
    index = SearchIndex()
    index.put(0, 0, Rung.BASE, [Source("exact", "ORD-48213"), Source("exact", "https://x.example/a"),
                                Source("ocr:rapidocr", "hello\nyour order ORD-48213 shipped\nbye")])  # fmt: skip
    index.put(1, 1, Rung.BASE, [Source("text", "nothing about it")])
    (hit,) = index.search("order ORD-48213", 5)
    assert (hit.page_id, hit.rung, hit.spans) == (0, Rung.BASE, ("ORD-48213",))
    assert (hit.snippet, hit.source) == ("your order ORD-48213 shipped", "ocr:rapidocr")
    assert hit.sources == ("exact", "ocr:rapidocr") and hit.score > 0


def test_stored_terms_index_as_the_text_they_were_taken_from() -> None:
    docs = _documents()
    from_text, from_terms = SearchIndex(), SearchIndex()
    for i, doc in enumerate(docs):
        from_text.put(i, i, Rung.LARGE, [Source("text", doc)])
        from_terms.put(i, i, Rung.LARGE, [Source("terms", " ".join(terms(doc)))])
    for query in QUERIES:
        assert from_terms.scores(query) == pytest.approx(from_text.scores(query))
