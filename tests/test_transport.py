"""Transport behaviour over real HTTP on 127.0.0.1 (scripted server); unit cases also on aioresponses."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import socket
import time
from collections.abc import AsyncIterator
from importlib.metadata import version
from typing import Any, Protocol

import aiohttp
import pytest
import pytest_asyncio
from aioresponses import aioresponses

from magic_hour_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncClient,
    ClientClosedError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
    Timeout,
    __version__,
)
from magic_hour_async._http._retry import RetryPolicy
from magic_hour_async._http._transport import Transport
from tests._scripted import Scripted, ScriptedServer, default_project

TOKEN = "mhk_live_s3cr3t_token_value"
PATH = "/v1/video-projects/abc"


class SleepRecorder:
    """Stands in for asyncio.sleep: records each requested delay and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def make_transport(
    base_url: str, sleep: SleepRecorder, *, max_retries: int = 2, timeout: Timeout | None = None
) -> Transport:
    return Transport(
        base_url=base_url,
        token=TOKEN,
        timeout=timeout or Timeout(),
        retry=RetryPolicy(max_retries=max_retries),
        sleep=sleep,
        rand=lambda: 0.5,
    )


@pytest_asyncio.fixture
async def sleep() -> SleepRecorder:
    return SleepRecorder()


@pytest_asyncio.fixture
async def transport(scripted: ScriptedServer, sleep: SleepRecorder) -> AsyncIterator[Transport]:
    t = make_transport(scripted.url, sleep)
    yield t
    await t.aclose()


HTML_502 = (
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center>"
    "<hr><center>nginx</center>" + "x" * 2000 + "</body></html>"
)


@pytest.mark.asyncio
async def test_get_sends_bearer_token_and_user_agent(transport: Transport, scripted: ScriptedServer) -> None:
    body = await transport.request("GET", PATH)
    assert body == default_project(PATH)
    sent = scripted.requests[0].headers
    assert sent["Authorization"] == f"Bearer {TOKEN}"
    assert sent["User-Agent"].startswith(f"magic-hour-async/{__version__} (python ")
    assert "aiohttp " in sent["User-Agent"]


@pytest.mark.asyncio
async def test_503_is_retried_with_backoff_then_succeeds(
    transport: Transport, scripted: ScriptedServer, sleep: SleepRecorder
) -> None:
    scripted.add(PATH, Scripted(status=503, body={"message": "busy"}), Scripted(status=503, body={}))
    body = await transport.request("GET", PATH)
    assert body["id"] == "abc"
    assert scripted.count("GET", PATH) == 3
    assert sleep.delays == [0.25, 0.5]  # full jitter at rand=0.5 of 0.5 s then 1 s


@pytest.mark.asyncio
async def test_html_500_is_retried_and_exhaustion_raises_server_error_with_short_message(
    transport: Transport, scripted: ScriptedServer, sleep: SleepRecorder
) -> None:
    scripted.add(PATH, *[Scripted(status=502, body=HTML_502)] * 3)
    with pytest.raises(ServerError) as info:
        await transport.request("GET", PATH)
    assert info.value.status_code == 502
    assert info.value.message == "502 Bad Gateway"
    assert len(str(info.value)) < 200
    assert scripted.count("GET", PATH) == 3
    assert len(sleep.delays) == 2


@pytest.mark.asyncio
async def test_connection_reset_is_retried_for_get(
    transport: Transport, scripted: ScriptedServer, sleep: SleepRecorder
) -> None:
    # aiohttp itself re-sends an idempotent request once when the connection drops; ours comes after.
    scripted.add(PATH, Scripted(reset=True), Scripted(reset=True))
    body = await transport.request("GET", PATH)
    assert body["id"] == "abc"
    assert scripted.count("GET", PATH) == 3
    assert len(sleep.delays) == 1


@pytest.mark.asyncio
async def test_reset_exhaustion_raises_api_connection_error(
    transport: Transport, scripted: ScriptedServer, sleep: SleepRecorder
) -> None:
    scripted.add(PATH, *[Scripted(reset=True)] * 6)
    with pytest.raises(APIConnectionError):
        await transport.request("GET", PATH)
    assert len(sleep.delays) == 2


@pytest.mark.asyncio
async def test_429_retry_after_seconds_is_honoured(
    transport: Transport, scripted: ScriptedServer, sleep: SleepRecorder
) -> None:
    scripted.add(PATH, Scripted(status=429, body={"message": "slow"}, headers={"Retry-After": "3"}))
    await transport.request("GET", PATH)
    assert sleep.delays == [3.0]


@pytest.mark.asyncio
async def test_429_retry_after_http_date_is_honoured(
    transport: Transport, scripted: ScriptedServer, sleep: SleepRecorder
) -> None:
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    scripted.add(PATH, Scripted(status=429, body={"message": "slow"}, headers={"Retry-After": when}))
    await transport.request("GET", PATH)
    assert len(sleep.delays) == 1
    assert 17.0 <= sleep.delays[0] <= 20.0  # whole seconds in the header, time passes during the test


@pytest.mark.asyncio
async def test_retry_after_ms_wins_over_retry_after(
    transport: Transport, scripted: ScriptedServer, sleep: SleepRecorder
) -> None:
    headers = {"Retry-After": "3", "retry-after-ms": "1500"}
    scripted.add(PATH, Scripted(status=429, body={"message": "slow"}, headers=headers))
    await transport.request("GET", PATH)
    assert sleep.delays == [1.5]


@pytest.mark.asyncio
async def test_429_exhaustion_raises_rate_limit_error_with_retry_after(
    transport: Transport, scripted: ScriptedServer
) -> None:
    scripted.add(PATH, *[Scripted(status=429, body={"message": "slow"}, headers={"Retry-After": "2"})] * 3)
    with pytest.raises(RateLimitError) as info:
        await transport.request("GET", PATH)
    assert info.value.retry_after == 2.0
    assert info.value.message == "slow"


@pytest.mark.asyncio
async def test_retry_after_beyond_the_cap_raises_at_once(
    transport: Transport, scripted: ScriptedServer, sleep: SleepRecorder
) -> None:
    scripted.add(PATH, Scripted(status=429, body={"message": "later"}, headers={"Retry-After": "3600"}))
    with pytest.raises(RateLimitError) as info:
        await transport.request("GET", PATH)
    assert info.value.retry_after == 3600.0
    assert sleep.delays == []
    assert scripted.count("GET", PATH) == 1


@pytest.mark.asyncio
async def test_post_is_not_retried_after_a_5xx(
    transport: Transport, scripted: ScriptedServer, sleep: SleepRecorder
) -> None:
    scripted.add("/v1/face-swap", Scripted(status=503, body={"message": "busy"}))
    with pytest.raises(ServerError):
        await transport.request("POST", "/v1/face-swap", json_body={"a": 1}, paid=True)
    assert scripted.count("POST", "/v1/face-swap") == 1
    assert sleep.delays == []


@pytest.mark.asyncio
async def test_post_is_not_retried_after_the_request_was_sent(
    transport: Transport, scripted: ScriptedServer
) -> None:
    scripted.add("/v1/face-swap", Scripted(reset=True))
    with pytest.raises(APIConnectionError):
        await transport.request("POST", "/v1/face-swap", json_body={"a": 1}, paid=True)
    assert scripted.count("POST", "/v1/face-swap") == 1


@pytest.mark.asyncio
async def test_post_is_retried_on_429(transport: Transport, scripted: ScriptedServer) -> None:
    created = {"id": "new", "credits_charged": 5}
    scripted.add(
        "/v1/face-swap",
        Scripted(status=429, body={"message": "slow"}, headers={"Retry-After": "1"}),
        Scripted(body=created),
    )
    body = await transport.request("POST", "/v1/face-swap", json_body={"a": 1}, paid=True)
    assert body == created
    assert scripted.count("POST", "/v1/face-swap") == 2
    assert scripted.requests[0].body == b'{"a":1}'


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.asyncio
async def test_refused_connection_raises_api_connection_error_after_retries(sleep: SleepRecorder) -> None:
    t = make_transport(f"http://127.0.0.1:{_unused_port()}", sleep)
    try:
        with pytest.raises(APIConnectionError) as info:
            await t.request("GET", PATH)
    finally:
        await t.aclose()
    assert not isinstance(info.value, APITimeoutError)
    assert len(sleep.delays) == 2


@pytest.mark.asyncio
async def test_post_is_retried_when_the_connection_was_refused(sleep: SleepRecorder) -> None:
    t = make_transport(f"http://127.0.0.1:{_unused_port()}", sleep)
    try:
        with pytest.raises(APIConnectionError):
            await t.request("POST", "/v1/face-swap", json_body={}, paid=True)
    finally:
        await t.aclose()
    assert len(sleep.delays) == 2  # nothing was sent, so retrying cannot create a second render


@pytest.mark.asyncio
async def test_read_timeout_raises_api_timeout_error(scripted: ScriptedServer, sleep: SleepRecorder) -> None:
    scripted.add(PATH, Scripted(delay=1.0))
    t = make_transport(scripted.url, sleep, max_retries=0, timeout=Timeout(read=0.05))
    try:
        with pytest.raises(APITimeoutError) as info:
            await t.request("GET", PATH)
    finally:
        await t.aclose()
    assert isinstance(info.value, TimeoutError)


@pytest.mark.asyncio
async def test_invalid_json_raises_response_decode_error(
    transport: Transport, scripted: ScriptedServer
) -> None:
    scripted.add(PATH, Scripted(status=200, body="<html>not json</html>"))
    with pytest.raises(ResponseDecodeError, match="invalid JSON"):
        await transport.request("GET", PATH)


@pytest.mark.asyncio
async def test_token_never_reaches_debug_logs(
    transport: Transport, scripted: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    scripted.add(PATH, Scripted(status=503, body={"message": "busy"}))
    with caplog.at_level(logging.DEBUG, logger="magic_hour_async"):
        await transport.request("GET", PATH)
        refused = make_transport(f"http://127.0.0.1:{_unused_port()}", SleepRecorder())
        with pytest.raises(APIConnectionError):
            await refused.request("GET", PATH)
        await refused.aclose()
    assert f"GET {scripted.url}{PATH} -> 503" in caplog.text
    assert "connection failed" in caplog.text
    assert TOKEN not in caplog.text


# -- unit cases, each run twice: on aioresponses and on a loopback aiohttp.web server ----------------------
#
# aioresponses fakes the session's responses without a socket; it does not work with every aiohttp (0.7.9
# builds ClientResponse without the stream_writer argument aiohttp 3.14 requires). Each case therefore also
# runs against the scripted loopback server, so no behaviour is tested only where aioresponses works.


class Responder(Protocol):
    """Where a case's canned responses come from."""

    base_url: str

    def add(self, method: str, path: str, *, status: int = 200, body: Any = "", stall: bool = False) -> None:
        """Answer the next ``method path`` with ``status`` and ``body`` (JSON unless a str), or stall."""


class MockedResponder:
    base_url = "http://api.test"

    def __init__(self, mocked: aioresponses) -> None:
        self.mocked = mocked

    def add(self, method: str, path: str, *, status: int = 200, body: Any = "", stall: bool = False) -> None:
        url = self.base_url + path
        if stall:
            self.mocked.add(url, method, exception=asyncio.TimeoutError())
        elif isinstance(body, str):
            self.mocked.add(url, method, status=status, body=body)
        else:
            self.mocked.add(url, method, status=status, payload=body)


class LoopbackResponder:
    def __init__(self, server: ScriptedServer) -> None:
        self.server = server
        self.base_url = server.url

    def add(self, method: str, path: str, *, status: int = 200, body: Any = "", stall: bool = False) -> None:
        # The scripted server keys its script by path (with the query); each case uses a path per method.
        self.server.add(path, Scripted(delay=STALL) if stall else Scripted(status=status, body=body))


STALL = 1.0  # a stalled loopback response: well past the read timeout of the cases below
READ_TIMEOUT = Timeout(read=0.25)


async def _aioresponses_works() -> str | None:
    """None when aioresponses can fake a response with the installed aiohttp, else why it cannot."""
    with aioresponses() as mocked:
        mocked.get("http://probe.test/", status=204)
        try:
            async with aiohttp.ClientSession() as session, session.get("http://probe.test/") as response:
                assert response.status == 204
        except TypeError as exc:
            return (
                f"aioresponses {version('aioresponses')} does not work with aiohttp {aiohttp.__version__} "
                f"({exc}); the loopback run of this case covers it"
            )
    return None


@pytest_asyncio.fixture(params=["aioresponses", "loopback"])
async def responder(request: pytest.FixtureRequest) -> AsyncIterator[Responder]:
    if request.param == "loopback":
        server = ScriptedServer()
        await server.server.start_server()
        try:
            yield LoopbackResponder(server)
        finally:
            await server.server.close()
        return
    reason = await _aioresponses_works()
    if reason is not None:
        pytest.skip(reason)
    with aioresponses() as mocked:
        yield MockedResponder(mocked)


@pytest.mark.asyncio
async def test_signed_url_query_is_redacted_in_logs(
    responder: Responder, caplog: pytest.LogCaptureFixture
) -> None:
    t = make_transport(responder.base_url, SleepRecorder(), max_retries=0)
    signed = "/outputs/1/output.mp4?X-Amz-Signature=deadbeef&Expires=1"
    responder.add("GET", signed, status=500, body="boom")
    with caplog.at_level(logging.DEBUG, logger="magic_hour_async"), pytest.raises(ServerError) as info:
        await t.request("GET", signed)
    await t.aclose()
    assert "deadbeef" not in caplog.text
    assert "?<redacted>" in caplog.text
    assert "deadbeef" not in str(info.value)


@pytest.mark.asyncio
async def test_delete_204_returns_none_and_408_is_retried(responder: Responder) -> None:
    sleep = SleepRecorder()
    t = make_transport(responder.base_url, sleep)
    responder.add("DELETE", "/v1/image-projects/x", status=408, body="")
    responder.add("DELETE", "/v1/image-projects/x", status=204, body=None)
    assert await t.request("DELETE", "/v1/image-projects/x") is None
    await t.aclose()
    assert len(sleep.delays) == 1


@pytest.mark.asyncio
async def test_timeout_from_aiohttp_is_retried_for_get_but_not_for_paid_post(responder: Responder) -> None:
    sleep = SleepRecorder()
    t = make_transport(responder.base_url, sleep, max_retries=1, timeout=READ_TIMEOUT)
    responder.add("GET", "/v1/video-projects/x", stall=True)
    responder.add("GET", "/v1/video-projects/x", body={"id": "x", "status": "queued"})
    assert (await t.request("GET", "/v1/video-projects/x"))["status"] == "queued"
    responder.add("POST", "/v1/animation", stall=True)
    with pytest.raises(APITimeoutError):
        await t.request("POST", "/v1/animation", json_body={}, paid=True)
    await t.aclose()
    assert len(sleep.delays) == 1  # the GET was retried once; the paid POST was not


@pytest.mark.asyncio
async def test_caller_owned_session_is_used_and_left_open(scripted: ScriptedServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with AsyncClient(token=TOKEN, base_url=scripted.url, session=session) as client:
            project = await client.v1.audio_projects.get(id="p1")
        assert project.id == "p1"
        assert not session.closed


@pytest.mark.asyncio
async def test_a_closed_caller_owned_session_is_a_typed_error(scripted: ScriptedServer) -> None:
    # aiohttp itself raises a bare RuntimeError("Session is closed"); the caller should learn which session.
    session = aiohttp.ClientSession()
    await session.close()
    async with AsyncClient(token=TOKEN, base_url=scripted.url, session=session) as client:
        with pytest.raises(ClientClosedError, match="session= is closed") as info:
            await client.v1.audio_projects.get(id="p1")
    assert isinstance(info.value, RuntimeError)  # what code written against aiohttp's error still catches
    assert scripted.requests == []


def test_retry_policy_rejects_nonsense() -> None:
    from magic_hour_async import ConfigurationError

    with pytest.raises(ConfigurationError):
        RetryPolicy(base=0)


def test_only_the_transport_imports_aiohttp_on_the_client_side() -> None:
    import ast
    from pathlib import Path

    import magic_hour_async

    root = Path(magic_hour_async.__file__).parent
    # The emulator, the webhook receiver (an aiohttp.web app) and the CLI are servers and tools.
    exempt = ("testing/", "_sync/", "_cli/", "webhooks/_receiver.py")
    importers = set()
    for path in root.rglob("*.py"):
        name = path.relative_to(root).as_posix()
        if name.startswith(exempt):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(module == "aiohttp" or module.startswith("aiohttp.") for module in modules):
                importers.add(name)
    # _client.py names the caller-owned session's type, under TYPE_CHECKING only.
    assert importers == {"_http/_transport.py", "_client.py"}


@pytest.mark.asyncio
async def test_a_mapped_failure_has_no_cause_or_context(sleep: SleepRecorder) -> None:
    # aiohttp's exceptions quote URLs, and their request_info holds the Authorization header.
    t = make_transport(f"http://127.0.0.1:{_unused_port()}", sleep, max_retries=0)
    try:
        with pytest.raises(APIConnectionError) as info:
            await t.request("GET", PATH)
    finally:
        await t.aclose()
    assert (info.value.__cause__, info.value.__context__) == (None, None)
    assert info.value.request_sent is False


@pytest.mark.asyncio
async def test_test_mode_zeroes_the_transport_backoff(
    transport: Transport, scripted: ScriptedServer, sleep: SleepRecorder
) -> None:
    from magic_hour_async._test_mode import set_testing

    scripted.add(PATH, Scripted(status=503, body={}), Scripted(status=429, headers={"Retry-After": "9"}))
    with set_testing(True):
        assert (await transport.request("GET", PATH))["id"] == "abc"
    assert sleep.delays == [0.0, 0.0]
