from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from tests._postgres_server import PostgresServer, find_binaries
from tests._scripted import ScriptedServer


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's real token or base URL."""
    monkeypatch.delenv("MAGIC_HOUR_API_KEY", raising=False)
    monkeypatch.delenv("MAGIC_HOUR_BASE_URL", raising=False)


@pytest_asyncio.fixture
async def scripted() -> AsyncIterator[ScriptedServer]:
    server = ScriptedServer()
    await server.server.start_server()
    try:
        yield server
    finally:
        await server.server.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throw-away PostgreSQL server on loopback for the whole session (the batch journal's tests)."""
    binaries = find_binaries()
    if binaries is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL binaries (initdb, pg_ctl) are required under CI=true")
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found")
    server = PostgresServer(binaries)
    try:
        server.start()
        yield server
    finally:
        server.stop()
