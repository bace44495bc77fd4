"""Waits fail loudly over loopback: the public ``AsyncClient`` against hosts that never answer well.

A closed port, a server answering every GET with garbage, a server answering 503 forever: a wait with no
timeout raises the last poll error once ``PollPolicy.give_up_after`` has passed, instead of hanging; a wait
with a timeout raises ``WaitTimeoutError`` whose ``last_error`` and ``__cause__`` say why. Policies are in
tens of milliseconds, so each test takes well under a second of real time."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

import magic_hour_async as mh
from magic_hour_async import PollEvent
from magic_hour_async._models import Project

pytestmark = pytest.mark.asyncio

TOKEN = "mhk_hostile_test"
QUICK = mh.PollPolicy(initial=0.01, maximum=0.05, give_up_after=0.3)


async def serve(handler: Callable[[web.Request], web.StreamResponse]) -> TestServer:
    async def handle(request: web.Request) -> web.StreamResponse:
        return handler(request)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest_asyncio.fixture
async def garbage() -> AsyncIterator[str]:
    server = await serve(
        lambda _: web.Response(text='{"id": "a", "status": ', content_type="application/json")
    )
    yield str(server.make_url("")).rstrip("/")
    await server.close()


@pytest_asyncio.fixture
async def unavailable() -> AsyncIterator[str]:
    server = await serve(lambda _: web.json_response({"message": "Service Unavailable"}, status=503))
    yield str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there any more: connection refused


async def test_a_wait_on_an_unreachable_host_raises_api_connection_error_after_give_up_after(
    closed_port: str,
) -> None:
    events: list[PollEvent[Project]] = []
    async with mh.AsyncClient(
        token=TOKEN, base_url=closed_port, poll=QUICK, on_poll_event=events.append
    ) as client:
        start = time.monotonic()
        with pytest.raises(mh.APIConnectionError):
            await client.v1.video_projects.wait(id="a")  # no timeout: it must not hang
        elapsed = time.monotonic() - start

    assert elapsed >= 0.3
    retries = [e for e in events if e.what == "retry"]
    assert len(retries) >= 2
    assert all(isinstance(e.error, mh.APIConnectionError) for e in retries)
    assert [e.what for e in events][-1] == "error"


async def test_a_wait_on_a_server_answering_garbage_raises_response_decode_error(garbage: str) -> None:
    async with mh.AsyncClient(token=TOKEN, base_url=garbage, poll=QUICK) as client:
        with pytest.raises(mh.ResponseDecodeError):
            await client.v1.video_projects.wait(id="a")
        assert client.poll_stats.polls_retried >= 2  # retried until give_up_after, not failed at once


async def test_a_timeout_against_a_failing_server_carries_the_last_error(unavailable: str) -> None:
    policy = mh.PollPolicy(initial=0.01, maximum=0.05)  # gives up after 300 s: the timeout comes first
    async with mh.AsyncClient(token=TOKEN, base_url=unavailable, poll=policy) as client:
        with pytest.raises(mh.WaitTimeoutError) as caught:
            await client.v1.video_projects.wait_many(["a", "b"], timeout=0.2)

    error = caught.value
    assert isinstance(error.last_error, mh.ServerError)
    assert error.last_error.status_code == 503
    assert error.__cause__ is error.last_error
    assert error.project is None  # never seen


async def test_a_permanent_error_still_fails_at_once() -> None:
    server = await serve(lambda _: web.json_response({"message": "Unauthorized"}, status=401))
    try:
        url = str(server.make_url("")).rstrip("/")
        async with mh.AsyncClient(token=TOKEN, base_url=url, poll=QUICK) as client:
            with pytest.raises(mh.AuthenticationError):
                await client.v1.video_projects.wait(id="a")
            assert client.poll_stats.polls_sent == 1
    finally:
        await server.close()
