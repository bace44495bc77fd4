from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

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
