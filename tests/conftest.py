from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from tests._postgres_server import PostgresServer, find_binaries
from tests._scripted import ScriptedServer


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C works in the tests however the suite was started.

    A background job of a non-interactive shell (``cmd &`` in a script, as CI runners do) starts with SIGINT
    ignored; Python then installs no KeyboardInterrupt handler, and its children inherit the ignored signal.
    The Ctrl-C tests (the blocking client, the emulator's CLI) would hang instead of testing anything.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


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
