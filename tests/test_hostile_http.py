"""The client against a loopback server that misbehaves on purpose.

Each route of :class:`Hostile` is one bad habit of a real network: trickling a byte at a time, answering with
100 MB of JSON (declared, undeclared or gzip-compressed), JSON nested a hundred thousand deep, echoing the
token back, resetting after the body, redirecting a signed download to another signed URL that fails, and
hanging up on an upload. Backoff sleeps are recorded, never slept.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import logging
import pickle
import time
import traceback
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from magic_hour_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncClient,
    AuthenticationError,
    Download,
    DownloadError,
    MagicHourError,
    ResponseDecodeError,
    ServerError,
    Timeout,
    VideoProject,
)
from magic_hour_async._http._transport import _ExceptionMap

TOKEN = "mhk_live_Hostile0123456789secret"
FIRST_SIG = "FirstSignature0123456789abcdef"
SECOND_SIG = "SecondSignature0123456789abcdef"
UPLOAD_SIG = "UploadSignature0123456789abcdef"
SECRETS = (TOKEN, FIRST_SIG, SECOND_SIG, UPLOAD_SIG)
HUGE = 100 << 20
CAP = 1 << 20


class Hostile:
    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.bytes_sent: dict[str, int] = {}
        app = web.Application(client_max_size=64 << 20)
        app.router.add_route("*", "/trickle", self._trickle)
        app.router.add_get("/silent", self._silent)
        app.router.add_get("/huge", self._huge)
        app.router.add_get("/huge-declared", self._huge_declared)
        app.router.add_get("/bomb", self._bomb)
        app.router.add_get("/deep/{status}", self._deep)
        app.router.add_route("*", "/echo/{status}", self._echo)
        app.router.add_get("/after-body", self._after_body)
        app.router.add_get("/dl/start", self._redirect)
        app.router.add_get("/dl/real", self._storage_error)
        app.router.add_get("/dl/gzip", self._gzip_output)
        app.router.add_post("/v1/files/upload-urls", self._upload_urls)
        app.router.add_put("/put/{name}", self._hang_up)
        app.router.add_put("/sink/{name}", self._sink)
        self.upload_route = "put"
        self.server = TestServer(app, host="127.0.0.1")

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    def _count(self, request: web.Request) -> None:
        self.hits[request.path] = self.hits.get(request.path, 0) + 1

    async def _trickle(self, request: web.Request) -> web.StreamResponse:
        self._count(request)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = 10_000
        await response.prepare(request)
        for _ in range(10_000):  # a byte every 20 ms: never silent long enough for a read timeout
            await response.write(b" ")
            await asyncio.sleep(0.02)
        return response

    async def _silent(self, request: web.Request) -> web.StreamResponse:
        self._count(request)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = 2
        await response.prepare(request)
        await asyncio.sleep(3600)  # headers, then silence
        return response

    async def _stream_json(self, request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        await response.prepare(request)
        piece = b"[" + b"1," * 32767 + b"1]"
        sent = 0
        try:
            while sent < HUGE:
                await response.write(piece)
                sent += len(piece)
                self.bytes_sent[request.path] = sent
        except (ConnectionError, RuntimeError):  # the client hung up: what we wanted
            pass
        return response

    async def _huge(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        return await self._stream_json(request, response)

    async def _huge_declared(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = HUGE
        return await self._stream_json(request, response)

    async def _bomb(self, request: web.Request) -> web.Response:
        body = gzip.compress(b"[" + b"0," * (8 << 20) + b"0]")  # 16 MiB of JSON in about 16 KiB
        headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        return web.Response(body=body, headers=headers)

    async def _deep(self, request: web.Request) -> web.Response:
        depth = 100_000
        return web.Response(status=int(request.match_info["status"]), text="[" * depth + "]" * depth)

    async def _echo(self, request: web.Request) -> web.Response:
        said = request.headers.get("Authorization", "")
        token = said.removeprefix("Bearer ")
        status = int(request.match_info["status"])
        headers = {"X-Echo": said, "WWW-Authenticate": f'Bearer error="invalid_token" token="{token}"'}
        if status == 200:  # not JSON at all: the decode error quotes an excerpt
            return web.Response(text=f"<html>you sent {said}</html>", headers=headers)
        body = {
            "message": f"bad token {token}",
            "detail": {"received": [said, {token: "as a key"}]},
            "escaped": json.dumps(token),
        }
        return web.json_response(body, status=status, headers=headers)

    async def _after_body(self, request: web.Request) -> web.StreamResponse:
        payload = json.dumps({"id": "abc", "status": "complete"}).encode()
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = len(payload)
        await response.prepare(request)
        await response.write(payload)
        await response.drain()
        assert request.transport is not None
        request.transport.abort()  # a reset right after the last byte
        return response

    async def _redirect(self, request: web.Request) -> web.Response:
        self._count(request)
        raise web.HTTPFound(f"/dl/real?X-Amz-Signature={SECOND_SIG}&X-Amz-Expires=900")

    async def _storage_error(self, request: web.Request) -> web.Response:
        self._count(request)
        text = (
            f"<Error><Code>InternalError</Code><Message>failed for {request.url}</Message>"
            f"<SignatureProvided>{request.query['X-Amz-Signature']}</SignatureProvided></Error>"
        )
        return web.Response(status=503, text=text, content_type="application/xml")

    async def _gzip_output(self, request: web.Request) -> web.Response:
        self._count(request)
        body = gzip.compress(b"output bytes " * 1000)  # compressed whatever Accept-Encoding says
        return web.Response(body=body, headers={"Content-Encoding": "gzip", "Content-Type": "video/mp4"})

    async def _upload_urls(self, request: web.Request) -> web.Response:
        items = [
            {
                "upload_url": f"{self.url}/{self.upload_route}/{number}?X-Amz-Signature={UPLOAD_SIG}",
                "file_path": f"a/{number}",
            }
            for number, _ in enumerate((await request.json())["items"])
        ]
        return web.json_response({"items": items})

    async def _hang_up(self, request: web.Request) -> web.Response:
        self._count(request)
        assert request.transport is not None
        request.transport.abort()  # before reading the body: the client cannot finish writing it
        return web.Response()

    async def _sink(self, request: web.Request) -> web.Response:
        self._count(request)
        await request.read()
        return web.Response()


class Shrinking(io.BytesIO):
    """A file that says it holds 3 MiB and ends after the first read (changed while being uploaded)."""

    name = "clip.mp4"

    def __init__(self) -> None:
        super().__init__(b"\0" * (3 << 20))
        self.reads = 0

    def read(self, size: int | None = -1) -> bytes:
        if size == 0:  # the binary-mode probe
            return b""
        self.reads += 1
        return super().read(size) if self.reads == 1 else b""


class SleepRecorder:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest_asyncio.fixture
async def hostile() -> AsyncIterator[Hostile]:
    server = Hostile()
    await server.server.start_server()
    try:
        yield server
    finally:
        await server.server.close()


@pytest_asyncio.fixture
async def sleeps() -> SleepRecorder:
    return SleepRecorder()


def client_for(hostile: Hostile, sleeps: SleepRecorder, **options: object) -> AsyncClient:
    client = AsyncClient(token=TOKEN, base_url=hostile.url, **options)  # type: ignore[arg-type]
    client._transport._sleep = sleeps
    client._transport._rand = lambda: 0.5
    return client


def names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def chain(error: BaseException) -> Iterator[BaseException]:
    """The error and everything reachable through ``__cause__`` and ``__context__``."""
    seen: set[int] = set()
    todo = [error]
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        todo.extend(e for e in (item.__cause__, item.__context__) if e is not None)


def assert_no_secrets(error: BaseException, caplog: pytest.LogCaptureFixture | None = None) -> None:
    # Nothing of aiohttp's is reachable: its exceptions quote URLs and hold the request's headers.
    assert all(isinstance(item, MagicHourError) for item in chain(error))
    texts = ["".join(traceback.format_exception(error))]
    for item in chain(error):
        texts += [str(item), repr(item), repr(item.args)]
        texts += [repr(getattr(item, name, "")) for name in ("message", "body", "headers")]
        texts.append(repr(vars(item)))
    pickled = pickle.dumps(error)
    texts.append(repr(vars(pickle.loads(pickled))))
    if caplog is not None:  # the client's records; the test server's access log is not the SDK's
        records = [r for r in caplog.records if not r.name.startswith(("aiohttp.access", "aiohttp.server"))]
        texts += [r.getMessage() for r in records] + [repr(r.args) for r in records]
    for secret in SECRETS:
        for text in texts:
            assert secret not in text
        assert secret.encode() not in pickled


# -- bounded requests ------------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(("method", "paid"), [("GET", False), ("POST", True)])
async def test_a_trickling_server_ends_in_a_timeout_within_total(
    hostile: Hostile, sleeps: SleepRecorder, method: str, paid: bool
) -> None:
    # Default retries: a GET gets three attempts of 0.5 s each, a paid POST one (it was sent).
    client = client_for(hostile, sleeps, timeout=Timeout(connect=1, read=5, total=0.5))
    started = time.monotonic()
    async with client:
        with pytest.raises(APITimeoutError):
            await client._transport.request(method, "/trickle", json_body={} if paid else None, paid=paid)
    attempts = 1 if paid else 3
    assert hostile.hits["/trickle"] == attempts
    assert time.monotonic() - started < attempts * 0.5 + 2.0  # not the 200 s the body would take


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("timeout", "limit"),
    [
        (Timeout(connect=1, read=0.2, total=30), "read"),  # the silence limit fires first
        (Timeout(connect=1, read=30, total=0.3), "total"),
        # read >= total: the client leaves aiohttp's per-packet read timer off (the total always ends an
        # attempt first); the silence must still end in a timeout, the total's.
        (Timeout(connect=1, read=0.3, total=0.3), "total"),
    ],
)
async def test_a_silent_server_ends_in_the_first_limit_reached(
    hostile: Hostile, sleeps: SleepRecorder, timeout: Timeout, limit: str
) -> None:
    started = time.monotonic()
    async with client_for(hostile, sleeps, timeout=timeout, max_retries=0) as client:
        with pytest.raises(APITimeoutError) as info:
            await client._transport.request("GET", "/silent")
    assert time.monotonic() - started < 5.0  # not the hour the server stays silent
    assert ("Timeout.total" in str(info.value)) == (limit == "total")
    assert hostile.hits["/silent"] == 1


@pytest.mark.asyncio
async def test_the_default_timeout_has_a_finite_total() -> None:
    client = AsyncClient(token=TOKEN)
    assert client._transport.timeout.total == 60.0


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/huge", "/huge-declared"])
async def test_an_oversized_answer_raises_decode_error_and_stops_reading(
    hostile: Hostile, sleeps: SleepRecorder, path: str
) -> None:
    async with client_for(hostile, sleeps, max_response_bytes=CAP) as client:
        with pytest.raises(ResponseDecodeError, match="larger than max_response_bytes") as info:
            await client._transport.request("GET", path)
    if path == "/huge-declared":
        assert "Content-Length is 104,857,600 bytes" in str(info.value)
    await asyncio.sleep(0)  # let the handler see the hang-up
    # The server could write only what socket buffers and one cap's worth hold, not 100 MB.
    assert hostile.bytes_sent.get(path, 0) < 16 * CAP
    assert sleeps.delays == []  # not transient for a plain read


@pytest.mark.asyncio
async def test_a_gzip_bomb_is_stopped_while_decompressing(hostile: Hostile, sleeps: SleepRecorder) -> None:
    async with client_for(hostile, sleeps, max_response_bytes=CAP) as client:
        with pytest.raises(ResponseDecodeError, match="more than 1,048,576 bytes arrived"):
            await client._transport.request("GET", "/bomb")


@pytest.mark.asyncio
async def test_the_default_cap_reads_16_mib_of_gzip_at_most(hostile: Hostile, sleeps: SleepRecorder) -> None:
    async with client_for(hostile, sleeps) as client:
        with pytest.raises(ResponseDecodeError, match="16,777,216"):
            await client._transport.request("GET", "/bomb")  # 16 MiB + 1 byte of JSON


@pytest.mark.asyncio
async def test_deeply_nested_json_raises_decode_error_not_recursion_error(
    hostile: Hostile, sleeps: SleepRecorder
) -> None:
    async with client_for(hostile, sleeps) as client:
        with pytest.raises(ResponseDecodeError, match="nested too deeply") as info:
            await client._transport.request("GET", "/deep/200")
        assert info.value.__context__ is None
        with pytest.raises(ServerError) as server:
            await client._transport.request("GET", "/deep/500", max_retries=0)
    assert isinstance(server.value.body, str)  # kept as text: too deep to decode
    assert len(server.value.message) <= 200


@pytest.mark.asyncio
async def test_a_reset_right_after_the_body_still_returns_the_answer(
    hostile: Hostile, sleeps: SleepRecorder
) -> None:
    async with client_for(hostile, sleeps) as client:
        for _ in range(3):  # the pooled connection is dead each time: a fresh one is made
            answer = await client._transport.request("GET", "/after-body")
            assert answer == {"id": "abc", "status": "complete"}
    assert sleeps.delays == []


# -- secrets ---------------------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "expected"),
    [(401, AuthenticationError), (500, ServerError), (200, ResponseDecodeError)],
)
async def test_a_token_echoed_by_the_server_is_scrubbed_everywhere(
    hostile: Hostile,
    sleeps: SleepRecorder,
    caplog: pytest.LogCaptureFixture,
    status: int,
    expected: type[MagicHourError],
) -> None:
    with caplog.at_level(logging.DEBUG):
        async with client_for(hostile, sleeps) as client:
            with pytest.raises(expected) as info:
                await client._transport.request("GET", f"/echo/{status}")
    assert_no_secrets(info.value, caplog)
    assert "<redacted>" in str(info.value)
    if status == 401:
        body = info.value.body  # type: ignore[attr-defined]
        assert body["message"] == "bad token <redacted>"
        assert body["detail"]["received"] == ["Bearer <redacted>", {"<redacted>": "as a key"}]
        assert info.value.headers["X-Echo"] == "Bearer <redacted>"  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_a_redirected_signed_download_never_shows_either_signature(
    hostile: Hostile, sleeps: SleepRecorder, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    url = f"{hostile.url}/dl/start?X-Amz-Signature={FIRST_SIG}&X-Amz-Expires=900"
    project = VideoProject(id="p", status="complete", downloads=(Download(url=url),))
    with caplog.at_level(logging.DEBUG):
        async with client_for(hostile, sleeps) as client:
            with pytest.raises(DownloadError) as info:
                await client.download_outputs(project, tmp_path)
    assert hostile.hits["/dl/real"] == 3  # a 503 is transient: retried max_retries times
    assert len(sleeps.delays) == 2
    assert isinstance(info.value.__cause__, ServerError)
    assert "<redacted>" in str(info.value)
    assert_no_secrets(info.value, caplog)
    assert names(tmp_path) == []


@pytest.mark.asyncio
async def test_an_upload_cut_off_by_the_server_never_shows_the_signature(
    hostile: Hostile, sleeps: SleepRecorder, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"\0" * (8 << 20))  # more than socket buffers take before the hang-up shows
    with caplog.at_level(logging.DEBUG):
        async with client_for(hostile, sleeps) as client:
            with pytest.raises(APIConnectionError) as info:
                await client.v1.files.upload_file(source)
    assert len(sleeps.delays) == 2  # the policy's two retries (aiohttp may re-send an idempotent PUT itself)
    assert hostile.hits["/put/0"] >= 3
    assert_no_secrets(info.value, caplog)


def test_can_not_write_request_body_quotes_no_signature() -> None:
    # aiohttp reports a body that failed mid-way as "Can not write request body for <the full URL>".
    url = f"https://storage.test/put/0?X-Amz-Signature={UPLOAD_SIG}&X-Amz-Credential=AKIA0123456789"
    with (  # noqa: PT012
        pytest.raises(APIConnectionError, match="Can not write request body") as info,
        _ExceptionMap((TOKEN,)),
    ):
        try:
            raise ConnectionResetError(104, "reset")
        except ConnectionResetError as exc:
            raise aiohttp.ClientOSError(104, f"Can not write request body for {url}") from exc
    assert "https://storage.test/put/0?<redacted>" in str(info.value)
    assert info.value.request_sent is True
    assert_no_secrets(info.value)


@pytest.mark.asyncio
async def test_a_file_that_shrinks_during_its_upload_fails_at_once(
    hostile: Hostile, sleeps: SleepRecorder
) -> None:
    hostile.upload_route = "sink"  # a server that waits for every byte announced
    async with client_for(hostile, sleeps, timeout=Timeout(read=30)) as client:
        started = time.monotonic()
        with pytest.raises(OSError, match="ended after 1048576 of 3145728 bytes"):
            await client.v1.files.upload_file(Shrinking())
    assert time.monotonic() - started < 10  # not the 30 s stall limit
    assert sleeps.delays == []  # a local problem: not retried


@pytest.mark.asyncio
@pytest.mark.parametrize("base", ["ftp://storage.test/out.mp4", "http:///out.mp4"])
async def test_an_invalid_signed_url_error_quotes_no_signature(
    hostile: Hostile, sleeps: SleepRecorder, caplog: pytest.LogCaptureFixture, base: str
) -> None:
    url = f"{base}?X-Amz-Signature={FIRST_SIG}"
    with caplog.at_level(logging.DEBUG):
        async with client_for(hostile, sleeps) as client:
            with pytest.raises(APIConnectionError) as info:
                async with client._transport.stream("GET", url):
                    pass
    assert f"{base}?<redacted>" in str(info.value)
    assert_no_secrets(info.value, caplog)


# -- the gzip re-download bug ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_downloading_a_compressed_output_twice_keeps_the_identical_file(
    hostile: Hostile, sleeps: SleepRecorder, tmp_path: Path
) -> None:
    url = f"{hostile.url}/dl/gzip?X-Amz-Signature={FIRST_SIG}"
    project = VideoProject(id="p", status="complete", downloads=(Download(url=url),))
    async with client_for(hostile, sleeps) as client:
        first = await client.download_outputs(project, tmp_path)
        second = await client.download_outputs(project, tmp_path)
        assert first == second
        assert first[0].read_bytes() == b"output bytes " * 1000
        assert names(tmp_path) == [first[0].name]  # no .part left behind
        first[0].write_bytes(b"something else")
        with pytest.raises(DownloadError, match="differs"):
            await client.download_outputs(project, tmp_path)
        assert first[0].read_bytes() == b"something else"
        assert await client.download_outputs(project, tmp_path, overwrite=True) == first
    assert first[0].read_bytes() == b"output bytes " * 1000
    assert names(tmp_path) == [first[0].name]


def test_a_project_repr_hides_download_signatures() -> None:
    url = f"https://cdn.test/out.mp4?X-Amz-Signature={FIRST_SIG}"
    project = VideoProject(id="p", status="complete", downloads=(Download(url=url),))
    assert FIRST_SIG not in repr(project)
    assert "https://cdn.test/out.mp4?<redacted>" in repr(project)
    assert project.downloads[0].url == url  # the value itself is untouched
