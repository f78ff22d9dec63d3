"""The PostgreSQL store: the same memory semantics as SQLite (a reopen resumes exactly, tool calls, images,
pop and clear), async calls, a second memory on the same session catching up, and clear errors."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from optical_memory.errors import StoreError
from optical_memory.memory import OpticalMemory
from tests.memory.helpers import turns
from tests.memory.test_tool_turns import agent_session
from tests.memory.test_turn_images import chart_url, pasted

CONFIG = {"provider": "openai:gpt-4o", "recent_turns": 4, "keep_text": True}


def _session() -> str:
    return f"s-{uuid.uuid4().hex[:8]}"


def test_a_reopened_session_resumes_exactly(postgres_url: str) -> None:
    session = _session()
    with OpticalMemory.open(postgres_url, session=session, config=CONFIG) as memory:
        for message in agent_session(20)[1:]:
            memory.add(message)
        memory.add(pasted("this chart", chart_url()))
        before = memory.context(budget=None)
        pages = memory.pages()
    assert len(pages) >= 2
    with OpticalMemory.open(postgres_url, session=session) as memory:
        after = memory.context(budget=None)
        assert after.messages == before.messages and after.usage == before.usage
        assert [p.rung for p in memory.pages()] == [p.rung for p in pages]
        assert memory.recall(0, reader="exact").text
        memory.pop()
        assert len(memory) == len(agent_session(20)) - 1
        memory.clear()
        assert len(memory) == 0 and memory.pages() == []


def test_two_memories_on_one_session_take_turns(postgres_url: str) -> None:
    session = _session()
    first = OpticalMemory.open(postgres_url, session=session, config=CONFIG)
    second = OpticalMemory.open(postgres_url, session=session)
    for i, turn in enumerate(turns(20)):
        (first if i % 2 == 0 else second).add(turn)  # each catches up with the other before writing
    assert len(first) == len(second) == 20
    assert first.context().messages == second.context().messages
    first.close()
    second.close()


def test_async_adds_on_one_loop(postgres_url: str) -> None:
    memory = OpticalMemory.open(postgres_url, session=_session(), config=CONFIG)

    async def main() -> int:
        await asyncio.gather(*(memory.aadd(t) for t in turns(30)))
        return (await memory.acontext()).usage.context_tokens

    assert asyncio.run(main()) > 0 and len(memory) == 30
    memory.close()


def test_an_unreachable_server_is_a_clear_error() -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(StoreError, match=r"cannot connect to the store postgresql://u:\*\*\*@127.0.0.1:1/x"):
        OpticalMemory.open("postgresql://u:secret@127.0.0.1:1/x?connect_timeout=2", session="s")


def test_pools_closed_at_shutdown_open_again_on_the_next_open(postgres_url: str) -> None:
    from optical_memory.postgres import close_pools

    session = _session()
    with OpticalMemory.open(postgres_url, session=session, config=CONFIG) as memory:
        memory.add("before the pools closed", role="user")
    close_pools()
    with OpticalMemory.open(postgres_url, session=session) as memory:
        memory.add("after", role="assistant")
        assert len(memory) == 2


def test_search_terms_and_readings_on_postgres(postgres_url: str) -> None:
    from tests.memory.test_exact import ORDER, _chat, _planted_page
    from tests.recall.fakes import ConstantReader

    session = _session()
    first = OpticalMemory.open(postgres_url, session=session, config={**CONFIG, "keep_text": False})
    first.extend(_chat(40))
    page = _planted_page(first)
    assert first.page_text(page) is None
    assert (
        first.search("what was my order at the shop?", 1)[0].page_id == page
    )  # by the terms stored with the page
    second = OpticalMemory.open(postgres_url, session=session)
    assert ORDER in second.search("what was my order at the shop?", 1)[0].spans
    with first._w.store.transaction():  # as a page stored before version 7: no terms
        first._w.store.delete_page_terms(first._w.sid, page)
    first.recall(page, reader=ConstantReader("a parcel tracking note"))
    third = OpticalMemory.open(postgres_url, session=session)
    hit = third.search("parcel tracking", 1)[0]
    assert (hit.page_id, hit.source, hit.snippet) == (page, "ocr:constant", "a parcel tracking note")
    for memory in (first, second, third):
        memory.close()


def test_tables_of_version_5_gain_the_span_columns_and_the_readings(postgres_url: str) -> None:
    """Last in this module: it takes the module's tables back to version 5, as an older release left them."""
    import psycopg

    from optical_memory.postgres import SCHEMA_VERSION

    session = _session()
    with OpticalMemory.open(postgres_url, session=session, config=CONFIG) as memory:
        memory.extend(turns(30))
        n_pages = len(memory.pages())
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE pages DROP COLUMN exact, DROP COLUMN masked")
        conn.execute("DROP TABLE page_reads")
        conn.execute("UPDATE optical_memory_schema SET version = 5")
    with OpticalMemory.open(postgres_url, session=session) as memory:
        assert len(memory.pages()) == n_pages and all(p.exact == () for p in memory.pages() if p.sealed)
        memory.add("order ORD-48213 shipped to https://shop.example.com/o/48213", role="user")
        memory.extend(turns(12))
        assert any(("id", "ORD-48213", "user") in p.exact for p in memory.pages())
        assert memory.search("ORD-48213", 1)  # the readings' table is back
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        assert conn.execute("SELECT version FROM optical_memory_schema").fetchone() == (SCHEMA_VERSION,)
