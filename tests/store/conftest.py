"""The PostgreSQL server the store tests use: ``OPTICAL_MEMORY_TEST_POSTGRES`` names it (see
``scripts/test-postgres.sh``). Without it the PostgreSQL tests skip, except where
``OPTICAL_MEMORY_REQUIRE_POSTGRES=1`` (CI) makes that a failure."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A fresh database on the test server for one test module (dropped afterwards)."""
    server = os.environ.get("OPTICAL_MEMORY_TEST_POSTGRES")
    if not server:
        if os.environ.get("OPTICAL_MEMORY_REQUIRE_POSTGRES") == "1":
            pytest.fail("OPTICAL_MEMORY_REQUIRE_POSTGRES=1 but OPTICAL_MEMORY_TEST_POSTGRES is not set")
        pytest.skip("set OPTICAL_MEMORY_TEST_POSTGRES (scripts/test-postgres.sh starts a server)")
    psycopg = pytest.importorskip("psycopg")
    name = f"om_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    parts = urlsplit(server)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
