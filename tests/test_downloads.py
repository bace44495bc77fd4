"""``AsyncClient.download_outputs`` over loopback HTTP against a small storage + API stand-in.

The stand-in serves output bytes with ``Range``/``206`` support, signs URLs (``?sig=``) and answers a stale
signature with 403, and takes a per-file script of faults (truncate after N bytes, ignore Range, wrong
``Content-Range``, a status, a reset, a stall) so each fault is exact. Sleeps between retries are recorded,
not slept.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import os
import random
import threading
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import attrs
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from magic_hour_async import (
    AsyncClient,
    Download,
    DownloadError,
    ImageProject,
    Project,
    Timeout,
    TransferProgress,
    VideoProject,
)
from magic_hour_async._transfers import _downloads
from magic_hour_async._transfers import _parts as _transfers
from magic_hour_async._transfers._parts import MAX_CONCURRENT_TRANSFERS, PartFile
from magic_hour_async.testing import Emulator, ManualClock

TOKEN = "mhk_live_download_tests_token"
FUTURE = datetime.now(timezone.utc) + timedelta(hours=24)


@attrs.define
class Fault:
    """One scripted answer for a file request; fields combine (e.g. ``ignore_range`` with ``truncate``)."""

    status: int = 0
    truncate: int | None = None
    ignore_range: bool = False
    content_range: str | None = None
    reset: bool = False
    stall_after: int | None = None


@attrs.define
class Blob:
    data: bytes
    sig: str = "v1"


class Storage:
    """Serves blobs at ``/files/{key}?sig=...`` and projects at ``/v1/{kind}-projects/{id}``."""

    def __init__(self) -> None:
        self.blobs: dict[str, Blob] = {}
        self.faults: dict[str, deque[Fault]] = defaultdict(deque)
        self.projects: dict[str, list[str]] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.project_gets = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.bytes_sent = 0
        self.hold = 0.0
        self.stalled = asyncio.Event()
        app = web.Application()
        app.router.add_get("/files/{key:.+}", self._file)
        app.router.add_get("/v1/{kind}-projects/{id}", self._project)
        self.server = TestServer(app, host="127.0.0.1")

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    def add(self, key: str, data: bytes, *faults: Fault) -> str:
        self.blobs[key] = Blob(data)
        self.faults[key].extend(faults)
        return self.signed(key)

    def signed(self, key: str) -> str:
        return f"{self.url}/files/{key}?sig={self.blobs[key].sig}"

    def rotate(self, key: str) -> None:
        """Invalidate the key's current URL (as an expiry would) and sign a new one."""
        blob = self.blobs[key]
        blob.sig = f"v{int(blob.sig[1:]) + 1}"

    def file_requests(self, key: str) -> list[str | None]:
        return [rng for path, rng in self.requests if path == key]

    async def _project(self, request: web.Request) -> web.Response:
        self.project_gets += 1
        keys = self.projects[request.match_info["id"]]
        downloads = [{"url": self.signed(key), "expires_at": FUTURE.isoformat()} for key in keys]
        body = {"id": request.match_info["id"], "status": "complete", "downloads": downloads}
        return web.json_response(body)

    async def _file(self, request: web.Request) -> web.StreamResponse:
        key = request.rel_url.raw_path.removeprefix("/files/")  # still percent-encoded, as it was added
        self.requests.append((key, request.headers.get("Range")))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.hold:
                await asyncio.sleep(self.hold)
            return await self._serve(request, key)
        finally:
            self.in_flight -= 1

    async def _serve(self, request: web.Request, key: str) -> web.StreamResponse:
        blob = self.blobs[key]
        if request.query.get("sig") != blob.sig:
            return web.Response(
                status=403, text="<Error><Code>AccessDenied</Code>Request has expired</Error>"
            )
        fault = self.faults[key].popleft() if self.faults[key] else Fault()
        if fault.reset:
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if fault.status:
            return web.Response(status=fault.status, text=f"scripted {fault.status}")
        data, start, status = blob.data, 0, 200
        header = request.headers.get("Range")
        response = web.StreamResponse()
        if header and not fault.ignore_range:
            start = int(header.removeprefix("bytes=").rstrip("-"))
            if start >= len(data):
                response.headers["Content-Range"] = f"bytes */{len(data)}"
                return web.Response(status=416, headers=response.headers)
            status = 206
            response.headers["Content-Range"] = (
                fault.content_range or f"bytes {start}-{len(data) - 1}/{len(data)}"
            )
        response.set_status(status)
        response.content_length = len(data) - start
        response.content_type = "video/mp4"
        await response.prepare(request)
        body = memoryview(data)[start:]
        limit = len(body) if fault.truncate is None else fault.truncate
        for offset in range(0, limit, 256 * 1024):
            piece = body[offset : min(offset + 256 * 1024, limit)]
            await response.write(bytes(piece))
            self.bytes_sent += len(piece)
            if fault.stall_after is not None and offset + len(piece) >= fault.stall_after:
                self.stalled.set()
                await asyncio.sleep(30)
        if fault.truncate is not None:
            assert request.transport is not None
            request.transport.close()
        return response


class SleepRecorder:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest_asyncio.fixture
async def storage() -> AsyncIterator[Storage]:
    server = Storage()
    await server.server.start_server()
    try:
        yield server
    finally:
        await server.server.close()


@pytest.fixture(params=["inline", "threaded"])
def write_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with writes on the loop (the fast path) and in the worker thread (after a slow write)."""
    if request.param == "threaded":
        monkeypatch.setattr(_downloads, "PartFile", functools.partial(PartFile, slow=0.0))
    return str(request.param)


@pytest_asyncio.fixture
async def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest_asyncio.fixture
async def client(storage: Storage, sleeps: SleepRecorder) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(token=TOKEN, base_url=storage.url, max_retries=2) as api:
        api._transport._sleep = sleeps
        api._transport._rand = lambda: 0.5
        yield api


def blob(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def video(
    storage: Storage, project_id: str, *keys: str, expires_at: datetime | None = FUTURE
) -> VideoProject:
    storage.projects[project_id] = list(keys)
    downloads = tuple(Download(url=storage.signed(key), expires_at=expires_at) for key in keys)
    return VideoProject(id=project_id, status="complete", downloads=downloads)


def resolved(path: Path) -> Path:
    return path.resolve()


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


# -- the happy path --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_downloads_every_output_byte_exact_in_output_order(
    client: AsyncClient, storage: Storage, tmp_path: Path, write_mode: str
) -> None:
    datas = [blob(3_000_000 + i, seed=i) for i in range(3)]
    for i, data in enumerate(datas):
        storage.add(f"img{i}/image.png", data)
    storage.projects["cmimg"] = [f"img{i}/image.png" for i in range(3)]
    project = await client.v1.image_projects.get(id="cmimg")
    assert isinstance(project, ImageProject)

    paths = await client.download_outputs(project, tmp_path / "out")

    assert [p.name for p in paths] == ["cmimg-0-image.png", "cmimg-1-image.png", "cmimg-2-image.png"]
    assert [sha(p.read_bytes()) for p in paths] == [sha(d) for d in datas]
    assert all(p.is_absolute() and p.parent == (tmp_path / "out").resolve() for p in paths)
    assert listing(tmp_path / "out") == [p.name for p in paths]  # no temporary files left


@pytest.mark.asyncio
async def test_default_directory_is_the_current_directory(
    client: AsyncClient, storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage.add("v/output.mp4", b"abc")
    monkeypatch.chdir(tmp_path)
    paths = await client.download_outputs(video(storage, "p1", "v/output.mp4"))
    assert paths == [resolved(tmp_path) / "p1-output.mp4"]


@pytest.mark.asyncio
async def test_two_projects_with_the_same_url_basename_never_overwrite_each_other(
    client: AsyncClient, storage: Storage, tmp_path: Path
) -> None:
    storage.add("a/output.mp4", b"first project")
    storage.add("b/output.mp4", b"second project")
    first = await client.download_outputs(video(storage, "pa", "a/output.mp4"), tmp_path)
    second = await client.download_outputs(video(storage, "pb", "b/output.mp4"), tmp_path)
    assert first[0].read_bytes() == b"first project"
    assert second[0].read_bytes() == b"second project"


@pytest.mark.asyncio
async def test_a_hostile_url_path_is_saved_inside_the_directory(
    client: AsyncClient, storage: Storage, tmp_path: Path
) -> None:
    storage.add("x/..%2F..%2Fetc%2Fpasswd", b"not a password file")
    target = tmp_path / "deep" / "dir"
    paths = await client.download_outputs(video(storage, "p1", "x/..%2F..%2Fetc%2Fpasswd"), target)
    assert paths == [target.resolve() / "p1-passwd"]
    assert listing(tmp_path) == ["deep"]


@pytest.mark.asyncio
async def test_progress_reaches_bytes_total(client: AsyncClient, storage: Storage, tmp_path: Path) -> None:
    storage.add("v/output.mp4", blob(5_000_000))
    seen: list[TransferProgress] = []
    await client.download_outputs(video(storage, "p1", "v/output.mp4"), tmp_path, on_progress=seen.append)
    assert seen[-1] == TransferProgress(
        name="p1-output.mp4", index=0, bytes_done=5_000_000, bytes_total=5_000_000
    )
    done = [event.bytes_done for event in seen]
    assert done == sorted(done) and len(seen) >= 3  # reported as batches arrive, not only at the end
    assert len(set(done)) == len(done)  # once per change: the rename does not repeat the last numbers
    assert not any(event.already_present for event in seen)


@pytest.mark.asyncio
async def test_a_project_without_outputs_downloads_nothing(client: AsyncClient, tmp_path: Path) -> None:
    project = VideoProject(id="p1", status="error")
    assert await client.download_outputs(project, tmp_path / "never") == []
    assert not (tmp_path / "never").exists()


@pytest.mark.asyncio
async def test_a_directory_that_cannot_be_created_raises_download_error(
    client: AsyncClient, storage: Storage, tmp_path: Path
) -> None:
    storage.add("v/output.mp4", b"x")
    (tmp_path / "file").write_text("in the way")
    with pytest.raises(DownloadError, match="cannot create the download directory"):
        await client.download_outputs(video(storage, "p1", "v/output.mp4"), tmp_path / "file" / "sub")
    assert storage.requests == []


# -- resume and restart ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_truncated_transfer_resumes_with_range_and_is_byte_exact(
    client: AsyncClient, storage: Storage, sleeps: SleepRecorder, tmp_path: Path, write_mode: str
) -> None:
    data = blob(10_000_000)
    storage.add("v/output.mp4", data, Fault(truncate=3_000_000), Fault(truncate=4_000_000))
    paths = await client.download_outputs(video(storage, "p1", "v/output.mp4"), tmp_path)
    assert sha(paths[0].read_bytes()) == sha(data)
    assert storage.file_requests("v/output.mp4") == [None, "bytes=3000000-", "bytes=7000000-"]
    assert sleeps.delays == []  # progress was made each time: resumed at once
    assert listing(tmp_path) == ["p1-output.mp4"]


@pytest.mark.asyncio
async def test_a_server_ignoring_range_restarts_the_file_from_zero(
    client: AsyncClient, storage: Storage, tmp_path: Path, write_mode: str
) -> None:
    data = blob(6_000_000)
    storage.add("v/output.mp4", data, Fault(truncate=2_500_000), Fault(ignore_range=True))
    seen: list[int] = []
    paths = await client.download_outputs(
        video(storage, "p1", "v/output.mp4"), tmp_path, on_progress=lambda p: seen.append(p.bytes_done)
    )
    assert paths[0].read_bytes() == data
    assert storage.file_requests("v/output.mp4") == [None, "bytes=2500000-"]
    assert 0 in seen[1:]  # progress went back to zero on the restart


@pytest.mark.asyncio
async def test_a_416_on_resume_restarts_from_zero_at_once(
    client: AsyncClient, storage: Storage, sleeps: SleepRecorder, tmp_path: Path
) -> None:
    data = blob(3_000_000)
    storage.add("v/output.mp4", data, Fault(truncate=1_000_000), Fault(status=416))
    paths = await client.download_outputs(video(storage, "p1", "v/output.mp4"), tmp_path)
    assert paths[0].read_bytes() == data
    assert storage.file_requests("v/output.mp4") == [None, "bytes=1000000-", None]
    assert sleeps.delays == []


@pytest.mark.asyncio
async def test_a_wrong_content_range_restarts_without_range(
    client: AsyncClient, storage: Storage, sleeps: SleepRecorder, tmp_path: Path, write_mode: str
) -> None:
    data = blob(4_000_000)
    bad = Fault(content_range="bytes 0-3999999/4000000")  # a 206 that does not start where we asked
    storage.add("v/output.mp4", data, Fault(truncate=1_000_000), bad)
    paths = await client.download_outputs(video(storage, "p1", "v/output.mp4"), tmp_path)
    assert paths[0].read_bytes() == data
    assert storage.file_requests("v/output.mp4") == [None, "bytes=1000000-", None]
    assert sleeps.delays == [0.25]


# -- retries ---------------------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "fault", [Fault(status=503), Fault(status=500), Fault(status=429), Fault(status=408)]
)
async def test_transient_failures_retry_with_backoff(
    client: AsyncClient, storage: Storage, sleeps: SleepRecorder, tmp_path: Path, fault: Fault
) -> None:
    data = blob(1_000_000)
    storage.add("v/output.mp4", data, fault, attrs.evolve(fault))
    paths = await client.download_outputs(video(storage, "p1", "v/output.mp4"), tmp_path)
    assert paths[0].read_bytes() == data
    assert sleeps.delays == [0.25, 0.5]  # Backoff(base=0.5) with full jitter at rand=0.5
    assert len(storage.file_requests("v/output.mp4")) == 3


@pytest.mark.asyncio
async def test_connection_resets_retry_with_backoff(
    client: AsyncClient, storage: Storage, sleeps: SleepRecorder, tmp_path: Path
) -> None:
    data = blob(1_000_000)
    storage.add("v/output.mp4", data, *[Fault(reset=True)] * 4)
    paths = await client.download_outputs(video(storage, "p1", "v/output.mp4"), tmp_path)
    assert paths[0].read_bytes() == data
    assert sleeps.delays == [0.25, 0.5]
    # aiohttp itself resends an idempotent request once after a disconnect: 2 + 2 failed, then 1 good.
    assert len(storage.file_requests("v/output.mp4")) == 5


@pytest.mark.asyncio
async def test_a_stalled_transfer_times_out_and_resumes(storage: Storage, tmp_path: Path) -> None:
    data = blob(6_000_000)
    storage.add("v/output.mp4", data, Fault(stall_after=2_000_000))
    sleeps = SleepRecorder()
    async with AsyncClient(token=TOKEN, base_url=storage.url, timeout=Timeout(read=0.3)) as api:
        api._transport._sleep = sleeps
        paths = await asyncio.wait_for(
            api.download_outputs(video(storage, "p1", "v/output.mp4"), tmp_path), 10
        )
    assert paths[0].read_bytes() == data
    first, second = storage.file_requests("v/output.mp4")
    assert first is None and second is not None and second.startswith("bytes=")
    assert sleeps.delays == []  # bytes had arrived before the stall: resumed at once


@pytest.mark.asyncio
async def test_persistent_5xx_raises_download_error_and_leaves_no_file(
    client: AsyncClient, storage: Storage, sleeps: SleepRecorder, tmp_path: Path, write_mode: str
) -> None:
    storage.add("v/output.mp4", blob(1000), *[Fault(status=503)] * 5)
    with pytest.raises(DownloadError) as caught:
        await client.download_outputs(video(storage, "p1", "v/output.mp4"), tmp_path)
    message = str(caught.value)
    assert "output 0" in message and "p1-output.mp4" in message and "scripted 503" in message
    assert "/files/v/output.mp4?<redacted>" in message and "sig=" not in message and TOKEN not in message
    assert len(storage.file_requests("v/output.mp4")) == 3  # max_retries=2
    assert listing(tmp_path) == []


@pytest.mark.asyncio
async def test_repeated_truncation_without_progress_gives_up_and_cleans_up(
    client: AsyncClient, storage: Storage, tmp_path: Path
) -> None:
    # Every answer ignores Range and breaks at the same byte: restarts bring nothing new, so retries run out.
    storage.add("v/output.mp4", blob(3_000_000), *[Fault(truncate=1_000_000, ignore_range=True)] * 10)
    with pytest.raises(DownloadError, match="ClientPayloadError"):
        await client.download_outputs(video(storage, "p1", "v/output.mp4"), tmp_path)
    assert len(storage.file_requests("v/output.mp4")) == 4  # 1 with progress, then 1 + max_retries without
    assert listing(tmp_path) == []


@pytest.mark.asyncio
async def test_a_404_is_not_retried(
    client: AsyncClient, storage: Storage, sleeps: SleepRecorder, tmp_path: Path
) -> None:
    storage.add("v/output.mp4", b"x", Fault(status=404))
    with pytest.raises(DownloadError, match="HTTP 404"):
        await client.download_outputs(video(storage, "p1", "v/output.mp4"), tmp_path)
    assert len(storage.file_requests("v/output.mp4")) == 1
    assert sleeps.delays == []


# -- expired URLs ----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_403_fetches_fresh_urls_and_retries(
    client: AsyncClient, storage: Storage, tmp_path: Path
) -> None:
    data = blob(2_000_000)
    storage.add("v/output.mp4", data)
    project = video(storage, "p1", "v/output.mp4")
    storage.rotate("v/output.mp4")  # the URL in hand is now refused with 403
    paths = await client.download_outputs(project, tmp_path)
    assert paths[0].read_bytes() == data
    assert storage.project_gets == 1
    assert len(storage.file_requests("v/output.mp4")) == 2


@pytest.mark.asyncio
async def test_a_403_mid_resume_refreshes_and_keeps_the_bytes_already_saved(
    client: AsyncClient, storage: Storage, tmp_path: Path, write_mode: str
) -> None:
    data = blob(5_000_000)
    storage.add("v/output.mp4", data, Fault(truncate=2_000_000), Fault(status=403))
    paths = await client.download_outputs(video(storage, "p1", "v/output.mp4"), tmp_path)
    assert paths[0].read_bytes() == data
    assert storage.file_requests("v/output.mp4") == [None, "bytes=2000000-", "bytes=2000000-"]
    assert storage.project_gets == 1


@pytest.mark.asyncio
async def test_an_expired_url_is_refreshed_before_it_is_tried(
    client: AsyncClient, storage: Storage, tmp_path: Path
) -> None:
    storage.add("v/output.mp4", b"fresh bytes")
    past = datetime.now(timezone.utc) - timedelta(minutes=1)
    project = video(storage, "p1", "v/output.mp4", expires_at=past)
    storage.rotate("v/output.mp4")
    paths = await client.download_outputs(project, tmp_path)
    assert paths[0].read_bytes() == b"fresh bytes"
    assert storage.project_gets == 1
    assert len(storage.file_requests("v/output.mp4")) == 1  # the stale URL was never requested


@pytest.mark.asyncio
async def test_one_refresh_serves_every_expired_output_of_a_project(
    client: AsyncClient, storage: Storage, tmp_path: Path
) -> None:
    keys = [f"img{i}/image.png" for i in range(3)]
    for key in keys:
        storage.add(key, key.encode())
    project = video(storage, "p1", *keys)
    for key in keys:
        storage.rotate(key)
    paths = await client.download_outputs(project, tmp_path)
    assert [p.read_bytes() for p in paths] == [key.encode() for key in keys]
    assert storage.project_gets == 1


@pytest.mark.asyncio
async def test_urls_that_stay_refused_raise_download_error_without_the_signature(
    client: AsyncClient, storage: Storage, tmp_path: Path
) -> None:
    storage.add("v/output.mp4", b"x", *[Fault(status=403)] * 5)
    with pytest.raises(DownloadError) as caught:
        await client.download_outputs(video(storage, "p1", "v/output.mp4"), tmp_path)
    assert storage.project_gets == 2
    assert "HTTP 403" in str(caught.value) and "sig=" not in str(caught.value)
    assert listing(tmp_path) == []


@pytest.mark.asyncio
async def test_a_plain_project_cannot_be_refreshed(
    client: AsyncClient, storage: Storage, tmp_path: Path
) -> None:
    storage.add("v/output.mp4", b"x")
    url = storage.signed("v/output.mp4")
    storage.rotate("v/output.mp4")
    project = Project(id="p1", status="complete", downloads=(Download(url=url),))
    with pytest.raises(DownloadError, match="cannot fetch fresh URLs for a plain Project"):
        await client.download_outputs(project, tmp_path)


# -- existing files --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_an_existing_complete_file_is_kept_without_reading_the_body(
    client: AsyncClient, storage: Storage, tmp_path: Path
) -> None:
    data = blob(8_000_000)
    storage.add("v/output.mp4", data)
    existing = tmp_path / "p1-output.mp4"
    existing.write_bytes(data)
    os.utime(existing, (1_000_000, 1_000_000))
    seen: list[TransferProgress] = []
    paths = await client.download_outputs(
        video(storage, "p1", "v/output.mp4"), tmp_path, on_progress=seen.append
    )
    assert paths == [existing.resolve()]
    assert seen == [
        TransferProgress(
            name="p1-output.mp4", index=0, bytes_done=len(data), bytes_total=len(data), already_present=True
        )
    ]
    assert existing.stat().st_mtime == 1_000_000  # untouched
    assert len(storage.file_requests("v/output.mp4")) == 1  # one GET for its size...
    assert storage.bytes_sent < len(data)  # ...whose body was not read to the end
    assert listing(tmp_path) == ["p1-output.mp4"]


@pytest.mark.asyncio
async def test_a_different_existing_file_is_never_overwritten_silently(
    client: AsyncClient, storage: Storage, tmp_path: Path
) -> None:
    storage.add("v/output.mp4", b"the render")
    existing = tmp_path / "p1-output.mp4"
    existing.write_bytes(b"my own notes")
    with pytest.raises(DownloadError, match=r"p1-output\.mp4 already exists.*overwrite=True"):
        await client.download_outputs(video(storage, "p1", "v/output.mp4"), tmp_path)
    assert existing.read_bytes() == b"my own notes"
    assert listing(tmp_path) == ["p1-output.mp4"]

    paths = await client.download_outputs(video(storage, "p1", "v/output.mp4"), tmp_path, overwrite=True)
    assert paths[0].read_bytes() == b"the render"
    assert listing(tmp_path) == ["p1-output.mp4"]


# -- cancellation and concurrency ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_cancellation_leaves_no_temporary_file(
    client: AsyncClient, storage: Storage, tmp_path: Path, write_mode: str
) -> None:
    storage.add("v/output.mp4", blob(8_000_000), Fault(stall_after=3_000_000))
    task = asyncio.create_task(client.download_outputs(video(storage, "p1", "v/output.mp4"), tmp_path))
    await asyncio.wait_for(storage.stalled.wait(), 10)
    for _ in range(50):  # let the client drain what was sent, so a batch write is under way or done
        await asyncio.sleep(0.01)
        if any(name.endswith(".part") for name in listing(tmp_path)):
            break
    assert any(name.endswith(".part") for name in listing(tmp_path))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert listing(tmp_path) == []


@pytest.mark.asyncio
async def test_one_failing_output_cancels_the_others_and_leaves_nothing(
    client: AsyncClient, storage: Storage, tmp_path: Path, write_mode: str
) -> None:
    storage.add("a/image.png", blob(8_000_000), Fault(stall_after=1_000_000))
    storage.add("b/image.png", b"x", Fault(status=404))
    with pytest.raises(DownloadError, match="HTTP 404"):
        await client.download_outputs(video(storage, "p1", "a/image.png", "b/image.png"), tmp_path)
    assert listing(tmp_path) == []


@pytest.mark.asyncio
async def test_concurrent_transfers_are_bounded_per_client(
    client: AsyncClient, storage: Storage, tmp_path: Path
) -> None:
    storage.hold = 0.05
    projects = []
    for p in range(3):
        keys = [f"p{p}/{i}/image.png" for i in range(4)]
        for key in keys:
            storage.add(key, key.encode())
        projects.append(video(storage, f"p{p}", *keys))
    results = await asyncio.gather(*(client.download_outputs(project, tmp_path) for project in projects))
    assert sum(len(paths) for paths in results) == 12
    assert storage.max_in_flight == MAX_CONCURRENT_TRANSFERS == 4


# -- end to end against the emulator ---------------------------------------------------------------------

MiB = 1024 * 1024


@pytest.mark.asyncio
async def test_emulator_outputs_download_byte_exact(tmp_path: Path) -> None:
    async with Emulator(seed=3) as emu, AsyncClient(token=emu.token, base_url=emu.url) as api:
        pid = emu.create_project("image", status="complete", outputs=3, output_size=3 * MiB)
        project = await api.v1.image_projects.get(id=pid)
        paths = await api.download_outputs(project, tmp_path)
        assert [p.name for p in paths] == [f"{pid}-{i}-output.png" for i in range(3)]
        for index, path in enumerate(paths):
            assert sha(path.read_bytes()) == sha(emu.output_bytes(pid, index))


@pytest.mark.asyncio
async def test_emulator_truncated_downloads_resume_with_range(tmp_path: Path) -> None:
    async with Emulator(seed=4) as emu, AsyncClient(token=emu.token, base_url=emu.url) as api:
        pid = emu.create_project("video", status="complete", output_size=5 * MiB)
        emu.faults.add(route="GET /outputs/*", truncate_after=2 * MiB, times=2)
        paths = await api.download_outputs(await api.v1.video_projects.get(id=pid), tmp_path)
        assert sha(paths[0].read_bytes()) == sha(emu.output_bytes(pid))
        ranges = [r.headers.get("Range") for r in emu.counters.requests("GET /outputs/*")]
        assert ranges == [None, f"bytes={2 * MiB}-", f"bytes={4 * MiB}-"]


@pytest.mark.asyncio
async def test_emulator_without_range_support_restarts_from_zero(tmp_path: Path) -> None:
    async with (
        Emulator(seed=5, honor_range=False) as emu,
        AsyncClient(token=emu.token, base_url=emu.url) as api,
    ):
        pid = emu.create_project("audio", status="complete", output_size=3 * MiB)
        emu.faults.add(route="GET /outputs/*", truncate_after=MiB)
        paths = await api.download_outputs(await api.v1.audio_projects.get(id=pid), tmp_path)
        assert sha(paths[0].read_bytes()) == sha(emu.output_bytes(pid))
        assert paths[0].stat().st_size == 3 * MiB


@pytest.mark.asyncio
async def test_emulator_expired_urls_are_refreshed(tmp_path: Path) -> None:
    clock = ManualClock()
    async with (
        Emulator(seed=6, clock=clock, url_ttl=60) as emu,
        AsyncClient(token=emu.token, base_url=emu.url) as api,
    ):
        pid = emu.create_project("video", status="complete", output_size=MiB)
        project = await api.v1.video_projects.get(id=pid)
        clock.advance(120)  # the emulator's storage now refuses the URLs in hand with 403
        paths = await api.download_outputs(project, tmp_path)
        assert paths[0].read_bytes() == emu.output_bytes(pid)
        assert emu.counters.count("GET /v1/video-projects/{id}") == 2
        assert [r.status for r in emu.counters.requests("GET /outputs/*")] == [403, 200]


# -- the temporary file's writer -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_slow_write_moves_the_rest_of_the_file_to_a_worker_thread(
    client: AsyncClient,
    storage: Storage,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real = _transfers._write_all
    calls: list[str] = []

    def slow_once(fd: int, data: memoryview) -> None:
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            time.sleep(0.05)  # the disk stalls once
        real(fd, data)

    monkeypatch.setattr(_transfers, "_write_all", slow_once)
    data = blob(20_000_000)
    storage.add("v/output.mp4", data)
    with caplog.at_level(logging.DEBUG, logger="magic_hour_async"):
        paths = await client.download_outputs(video(storage, "p1", "v/output.mp4"), tmp_path)
    assert paths[0].read_bytes() == data
    assert calls[0] == threading.current_thread().name  # the first write ran on the loop
    assert all(name.startswith("magic-hour-write") for name in calls[1:])
    assert "continuing in a worker thread" in caplog.text


@pytest.mark.asyncio
async def test_threaded_writes_use_a_fixed_set_of_buffers(tmp_path: Path) -> None:
    part = PartFile(tmp_path / "out.bin", batch=1000, buffers=3, slow=0.0)
    chunks = [bytes([i]) * (300 + i) for i in range(200)]
    for chunk in chunks:
        await part.write(chunk)
        assert len(part._pending) <= 2  # at most buffers - 1 queued while one fills
    await part.close()
    assert part.path.read_bytes() == b"".join(chunks)
    assert len(part._spare) <= 3


async def first_wait_of(task: asyncio.Task[object]) -> None:
    """Return once a task created just before has run up to its first wait, and check that it is waiting.

    ``create_task`` queues the task's first step, and ``sleep(0)`` queues this coroutine behind it: when we
    resume, the task has run until it had to wait for something that is not ready (or finished). No clock
    is involved, so this holds however slow the machine is.
    """
    await asyncio.sleep(0)
    assert not task.done(), "the task did not have to wait"


@pytest.mark.asyncio
async def test_discard_waits_for_a_running_write_then_removes_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = _transfers._write_all
    entered, release = threading.Event(), threading.Event()

    def blocking(fd: int, data: memoryview) -> None:
        entered.set()
        release.wait(5)
        real(fd, data)

    monkeypatch.setattr(_transfers, "_write_all", blocking)
    part = PartFile(tmp_path / "out.bin", batch=4, slow=0.0)
    await part.write(b"abcd")
    await part.write(b"efgh")  # hands "abcd" to the thread, which blocks inside the write
    assert await asyncio.to_thread(entered.wait, 5)
    discarding = asyncio.create_task(part.discard())
    await first_wait_of(discarding)
    assert part.path.exists()  # never deleted under a running write
    release.set()
    await asyncio.wait_for(discarding, 5)
    assert listing(tmp_path) == []


@pytest.mark.asyncio
async def test_a_cancelled_write_takes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = _transfers._write_all
    release = threading.Event()
    monkeypatch.setattr(_transfers, "_write_all", lambda fd, data: (release.wait(5), real(fd, data)))
    part = PartFile(tmp_path / "out.bin", batch=4, buffers=2, slow=0.0)
    await part.write(b"abcd")
    await part.write(b"efgh")  # "abcd" queued: the only other buffer now fills
    blocked = asyncio.create_task(part.write(b"ijkl"))  # needs a free buffer: waits for the thread
    await first_wait_of(blocked)
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked
    release.set()
    await part.write(b"mnop")
    await part.close()
    assert part.path.read_bytes() == b"abcdefghmnop"  # "ijkl" was not taken, nothing was doubled
