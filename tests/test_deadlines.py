"""``Timeout.total`` without a timer per request: one sweep per loop cancels what passed its deadline.

Over loopback (a server that never answers, or trickles): the deadline's cancellation becomes
``APITimeoutError``; anyone else's cancellation stays a cancellation.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from magic_hour_async import APITimeoutError, AsyncClient, Timeout
from magic_hour_async._http._deadlines import Deadlines

TOKEN = "mhk_live_deadline_tests"


class Silent:
    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.arrived = asyncio.Event()  # a /silent request reached the server
        app = web.Application()
        app.router.add_get("/silent", self._silent)
        app.router.add_get("/quick", self._quick)
        self.server = TestServer(app, host="127.0.0.1")

    async def _silent(self, request: web.Request) -> web.Response:
        self.arrived.set()
        await self.release.wait()
        return web.json_response({})

    async def _quick(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})


@pytest_asyncio.fixture
async def silent() -> AsyncIterator[Silent]:
    server = Silent()
    await server.server.start_server()
    try:
        yield server
    finally:
        server.release.set()
        await server.server.close()


@pytest.mark.asyncio
async def test_a_request_past_its_total_raises_api_timeout_error_and_leaves_the_task_uncancelled(
    silent: Silent,
) -> None:
    url = str(silent.server.make_url("")).rstrip("/")
    async with AsyncClient(token=TOKEN, base_url=url, timeout=Timeout(total=0.4), max_retries=0) as client:
        started = time.monotonic()
        with pytest.raises(APITimeoutError, match=r"within 0.4 s \(Timeout.total\)") as info:
            await client._transport.request("GET", "/silent")
        assert 0.4 <= time.monotonic() - started < 2.0
        assert info.value.__context__ is None
        current = asyncio.current_task()
        assert current is not None
        if sys.version_info >= (3, 11):
            assert current.cancelling() == 0
        await asyncio.sleep(0)  # no stray cancellation is pending for this task
        assert await client._transport.request("GET", "/quick") == {"ok": True}


@pytest.mark.asyncio
async def test_someone_elses_cancellation_is_not_turned_into_a_timeout(silent: Silent) -> None:
    url = str(silent.server.make_url("")).rstrip("/")
    async with AsyncClient(token=TOKEN, base_url=url, timeout=Timeout(total=30)) as client:
        task = asyncio.ensure_future(client._transport.request("GET", "/silent"))
        await asyncio.wait_for(silent.arrived.wait(), 10)  # the request is in flight, inside the watch
        assert client._transport._watch is not None and client._transport._watch._running != {}
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert client._transport._watch is not None
        assert client._transport._watch._running == {}  # the request left the watch


@pytest.mark.asyncio
async def test_an_outer_asyncio_timeout_wins_over_a_longer_total(silent: Silent) -> None:
    url = str(silent.server.make_url("")).rstrip("/")
    async with AsyncClient(token=TOKEN, base_url=url, timeout=Timeout(total=30)) as client:
        with pytest.raises(asyncio.TimeoutError) as info:  # the builtin TimeoutError from 3.11
            await asyncio.wait_for(client._transport.request("GET", "/silent"), 0.2)
    assert not isinstance(info.value, APITimeoutError)


@pytest.mark.asyncio
async def test_the_sweep_runs_only_while_requests_are_in_flight() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop, 8.0)
    task = deadlines.enter()
    assert deadlines._timer is not None
    assert deadlines._step == 1.0  # a deadline fires at most a second late
    deadlines.leave(task)
    deadlines._timer.cancel()
    deadlines._sweep()  # finds nothing in flight: schedules nothing
    assert deadlines._timer is None
