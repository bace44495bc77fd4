"""``client.v1.files``: upload URLs, streamed PUTs, retries and pass-through, over loopback HTTP.

The stand-in answers ``POST /v1/files/upload-urls`` like the API and hashes each ``PUT`` body as it streams
in, so tests compare digests, never whole bodies. Sleeps between retries are recorded, not slept.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any, cast

import attrs
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from magic_hour_async import (
    APITimeoutError,
    AsyncClient,
    ConfigurationError,
    PermissionDeniedError,
    ServerError,
    Timeout,
    TransferProgress,
)
from magic_hour_async._transfers._uploads import UPLOAD_CHUNK, UploadUrlRequestItem, UploadUrlsResponse
from magic_hour_async.testing import Emulator

TOKEN = "mhk_live_upload_tests_token"


@attrs.define
class Received:
    sha256: str
    size: int
    content_type: str | None
    content_length: str | None
    chunked: bool
    authorization: str | None


class Storage:
    """``POST /v1/files/upload-urls`` and the presigned ``PUT /put/...`` targets it hands out."""

    def __init__(self) -> None:
        self.url_requests: list[Any] = []
        self.puts: list[str] = []
        self.received: dict[str, Received] = {}
        self.faults: dict[str, deque[str]] = defaultdict(deque)
        self.batches = 0
        self.release = asyncio.Event()
        app = web.Application()
        app.router.add_post("/v1/files/upload-urls", self._upload_urls)
        app.router.add_put("/put/{path:.+}", self._put)
        self.server = TestServer(app, host="127.0.0.1")

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def requests(self) -> int:
        return len(self.url_requests) + len(self.puts)

    async def _upload_urls(self, request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        body = await request.json()
        self.url_requests.append(body)
        self.batches += 1
        items = []
        for number, item in enumerate(body["items"]):
            path = f"api-assets/b{self.batches}/{number}.{item['extension']}"
            items.append(
                {
                    "upload_url": f"{self.url}/put/{path}?X-Amz-Signature=s3cr3t",
                    "expires_at": "2030-01-01T00:00:00.000Z",
                    "file_path": path,
                }
            )
        return web.json_response({"items": items})

    async def _put(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        self.puts.append(path)
        fault = self.faults[path].popleft() if self.faults[path] else ""
        if fault == "stall":
            await self.release.wait()  # never reads the body: the client's socket buffers fill up
        digest, size = hashlib.sha256(), 0
        async for chunk in request.content.iter_chunked(1 << 20):
            digest.update(chunk)
            size += len(chunk)
        if fault.isdigit():
            return web.Response(status=int(fault), text=f"scripted {fault}")
        self.received[path] = Received(
            digest.hexdigest(),
            size,
            request.headers.get("Content-Type"),
            request.headers.get("Content-Length"),
            "chunked" in request.headers.get("Transfer-Encoding", ""),
            request.headers.get("Authorization"),
        )
        return web.Response(status=200)


class SleepRecorder:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class ReadRecorder(io.RawIOBase):
    """A binary file object that records the size of every read."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb")
        self.name = str(path)
        self.reads: list[int] = []

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def read(self, size: int = -1) -> bytes:
        self.reads.append(size)
        return self._file.read(size)

    def close(self) -> None:
        self._file.close()
        super().close()


@pytest_asyncio.fixture
async def storage() -> AsyncIterator[Storage]:
    server = Storage()
    await server.server.start_server()
    try:
        yield server
    finally:
        server.release.set()
        await server.server.close()


@pytest_asyncio.fixture
async def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest_asyncio.fixture
async def client(storage: Storage, sleeps: SleepRecorder) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(token=TOKEN, base_url=storage.url, max_retries=2) as api:
        api._transport._sleep = sleeps
        api._transport._rand = lambda: 0.5
        yield api


def make_file(path: Path, size: int) -> str:
    """Write ``size`` pseudo-random bytes in 1 MiB pieces; return their sha256."""
    digest = hashlib.sha256()
    block = hashlib.sha256(b"seed").digest() * (1 << 15)  # 1 MiB
    with path.open("wb") as handle:
        written = 0
        while written < size:
            piece = block[: min(len(block), size - written)]
            piece = bytes([written % 251]) + piece[1:]  # every MiB differs
            handle.write(piece)
            digest.update(piece)
            written += len(piece)
    return digest.hexdigest()


@pytest.mark.asyncio
async def test_upload_file_streams_a_path_and_returns_its_file_path(
    client: AsyncClient, storage: Storage, tmp_path: Path
) -> None:
    source = tmp_path / "Face.PNG"
    digest = make_file(source, 3_000_000)
    file_path = await client.v1.files.upload_file(source)
    assert file_path == "api-assets/b1/0.png"
    assert storage.url_requests == [{"items": [{"type": "image", "extension": "png"}]}]
    received = storage.received[file_path]
    assert (received.sha256, received.size) == (digest, 3_000_000)
    assert received.content_type == "image/png"
    assert received.content_length == "3000000" and not received.chunked  # presigned PUTs need a length
    assert received.authorization is None  # the API token never goes to the storage URL


@pytest.mark.asyncio
async def test_a_large_file_object_is_byte_exact_and_read_in_bounded_chunks(
    client: AsyncClient, storage: Storage, tmp_path: Path
) -> None:
    size = 64 * 1024 * 1024
    digest = make_file(tmp_path / "clip.mp4", size)
    recorder = ReadRecorder(tmp_path / "clip.mp4")
    with recorder:
        file_path = await client.v1.files.upload_file(cast("IO[bytes]", recorder))
    assert storage.received[file_path].sha256 == digest
    assert storage.received[file_path].size == size
    assert max(recorder.reads) == UPLOAD_CHUNK == 1 << 20
    assert -1 not in recorder.reads  # never "read everything"
    assert sum(recorder.reads) >= size


@pytest.mark.asyncio
async def test_upload_files_asks_for_all_urls_in_one_request_and_keeps_input_order(
    client: AsyncClient, storage: Storage, tmp_path: Path
) -> None:
    names = ["a.mp4", "b.mp3", "c.jpg", "d.webm", "e.gif", "f.webp"]
    digests = [make_file(tmp_path / name, 1000 + i) for i, name in enumerate(names)]
    sources: list[Any] = [tmp_path / name for name in names]
    sources.insert(2, "https://example.com/already/public.png")
    sources.insert(5, "api-assets/existing/x.mp4")
    paths = await client.v1.files.upload_files(sources)
    assert len(storage.url_requests) == 1
    assert storage.url_requests[0]["items"] == [
        {"type": "video", "extension": "mp4"},
        {"type": "audio", "extension": "mp3"},
        {"type": "image", "extension": "jpg"},
        {"type": "video", "extension": "webm"},
        {"type": "video", "extension": "gif"},
        {"type": "image", "extension": "webp"},
    ]
    assert paths == [
        "api-assets/b1/0.mp4",
        "api-assets/b1/1.mp3",
        "https://example.com/already/public.png",
        "api-assets/b1/2.jpg",
        "api-assets/b1/3.webm",
        "api-assets/existing/x.mp4",
        "api-assets/b1/4.gif",
        "api-assets/b1/5.webp",
    ]
    uploaded = [p for p in paths if p.startswith("api-assets/b1/")]
    assert [storage.received[p].sha256 for p in uploaded] == digests


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "source", ["https://cdn.example.com/face.png?token=1", "http://x.test/a.mp4", "api-assets/id/video.mp4"]
)
async def test_urls_and_uploaded_paths_pass_through_without_a_request(
    client: AsyncClient, storage: Storage, source: str
) -> None:
    assert await client.v1.files.upload_file(source) == source
    assert await client.v1.files.upload_files([source, source]) == [source, source]
    assert storage.requests == 0


@pytest.mark.asyncio
async def test_an_unknown_extension_fails_before_any_request_listing_the_supported_ones(
    client: AsyncClient, storage: Storage, tmp_path: Path
) -> None:
    (tmp_path / "ok.png").write_bytes(b"png")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ConfigurationError) as caught:
        await client.v1.files.upload_files([tmp_path / "ok.png", tmp_path / "notes.txt"])
    message = str(caught.value)
    assert "'txt'" in message
    for expected in ("video: mp4, m4v, mov, webm", "weba", "oga", "amr", "jfif", "tif", "bmp", "gif: gif"):
        assert expected in message
    assert isinstance(caught.value, ValueError)
    assert storage.requests == 0


@pytest.mark.asyncio
async def test_a_missing_file_fails_before_any_request(
    client: AsyncClient, storage: Storage, tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError):
        await client.v1.files.upload_files(["https://x.test/a.png", tmp_path / "missing.mp4"])
    assert storage.requests == 0


@pytest.mark.asyncio
async def test_a_put_answered_503_is_retried_from_the_start_of_the_file(
    client: AsyncClient, storage: Storage, sleeps: SleepRecorder, tmp_path: Path
) -> None:
    digest = make_file(tmp_path / "voice.wav", 5_000_000)
    storage.faults["api-assets/b1/0.wav"].extend(["503", "502"])
    with (tmp_path / "voice.wav").open("rb") as handle:
        handle.seek(0)
        file_path = await client.v1.files.upload_file(handle)
    assert storage.received[file_path].sha256 == digest
    assert storage.puts == [file_path] * 3
    assert sleeps.delays == [0.25, 0.5]


@pytest.mark.asyncio
async def test_a_file_object_is_uploaded_from_its_current_position(
    client: AsyncClient, storage: Storage, tmp_path: Path
) -> None:
    (tmp_path / "a.mp3").write_bytes(b"HEADERpayload")
    storage.faults["api-assets/b1/0.mp3"].append("500")
    with (tmp_path / "a.mp3").open("rb") as handle:
        handle.seek(6)
        file_path = await client.v1.files.upload_file(handle)
    assert storage.received[file_path].sha256 == hashlib.sha256(b"payload").hexdigest()


@pytest.mark.asyncio
async def test_persistent_5xx_raises_server_error(
    client: AsyncClient, storage: Storage, tmp_path: Path
) -> None:
    make_file(tmp_path / "a.mp4", 10)
    storage.faults["api-assets/b1/0.mp4"].extend(["503"] * 5)
    with pytest.raises(ServerError, match="scripted 503"):
        await client.v1.files.upload_file(tmp_path / "a.mp4")
    assert len(storage.puts) == 3


@pytest.mark.asyncio
async def test_a_403_on_the_upload_url_is_not_retried(
    client: AsyncClient, storage: Storage, sleeps: SleepRecorder, tmp_path: Path
) -> None:
    make_file(tmp_path / "a.mp4", 10)
    storage.faults["api-assets/b1/0.mp4"].append("403")
    with pytest.raises(PermissionDeniedError):
        await client.v1.files.upload_file(tmp_path / "a.mp4")
    assert len(storage.puts) == 1 and sleeps.delays == []


@pytest.mark.asyncio
async def test_a_stalled_upload_times_out(storage: Storage, tmp_path: Path) -> None:
    make_file(tmp_path / "big.mp4", 48 * 1024 * 1024)
    storage.faults["api-assets/b1/0.mp4"].append("stall")
    async with AsyncClient(
        token=TOKEN, base_url=storage.url, max_retries=0, timeout=Timeout(read=0.3)
    ) as api:
        with pytest.raises(APITimeoutError, match=r"made no progress for 0\.3 s"):
            await asyncio.wait_for(api.v1.files.upload_file(tmp_path / "big.mp4"), 10)


@pytest.mark.asyncio
async def test_progress_reaches_bytes_total(client: AsyncClient, storage: Storage, tmp_path: Path) -> None:
    make_file(tmp_path / "a.mp4", 3_500_000)
    (tmp_path / "b.png").write_bytes(b"tiny")
    seen: list[TransferProgress] = []
    await client.v1.files.upload_files([tmp_path / "a.mp4", tmp_path / "b.png"], on_progress=seen.append)
    finals = {event.index: event for event in seen if event.bytes_done == event.bytes_total}
    assert finals == {
        0: TransferProgress(name="a.mp4", index=0, bytes_done=3_500_000, bytes_total=3_500_000),
        1: TransferProgress(name="b.png", index=1, bytes_done=4, bytes_total=4),
    }
    assert [e.bytes_done for e in seen if e.index == 0] == [1 << 20, 2 << 20, 3 << 20, 3_500_000]


@pytest.mark.asyncio
async def test_file_objects_must_be_binary_and_named(
    client: AsyncClient, storage: Storage, tmp_path: Path
) -> None:
    (tmp_path / "a.png").write_text("x")
    with (tmp_path / "a.png").open("r") as text, pytest.raises(ConfigurationError, match="text mode"):
        await client.v1.files.upload_file(text)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="without a name"):
        await client.v1.files.upload_file(io.BytesIO(b"data"))
    with pytest.raises(ConfigurationError, match="cannot upload a int"):
        await client.v1.files.upload_file(42)  # type: ignore[arg-type]
    assert storage.requests == 0


@pytest.mark.asyncio
async def test_upload_urls_create_accepts_dicts_and_attrs_items(
    client: AsyncClient, storage: Storage
) -> None:
    response = await client.v1.files.upload_urls.create(
        items=[
            {"type": "video", "extension": "mp4"},
            {"type_": "audio", "extension": "mp3"},  # the official SDK's spelling
            UploadUrlRequestItem(type="image", extension="png"),
        ]
    )
    assert isinstance(response, UploadUrlsResponse)
    assert [item.file_path for item in response.items] == [
        "api-assets/b1/0.mp4",
        "api-assets/b1/1.mp3",
        "api-assets/b1/2.png",
    ]
    assert response.items[0].upload_url.endswith("?X-Amz-Signature=s3cr3t")
    assert response.items[0].expires_at is not None and response.items[0].expires_at.year == 2030
    assert "s3cr3t" not in repr(response)
    assert storage.url_requests[0]["items"][1] == {"type": "audio", "extension": "mp3"}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "item",
    [{"type": "gif", "extension": "gif"}, {"type": "video", "extension": ".mp4"}, {"type": "video"}, "mp4"],
)
async def test_upload_urls_create_rejects_bad_items_before_any_request(
    client: AsyncClient, storage: Storage, item: Any
) -> None:
    with pytest.raises(ConfigurationError):
        await client.v1.files.upload_urls.create(items=[item])
    assert storage.requests == 0


# -- end to end against the emulator ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_emulator_stores_uploaded_bytes(tmp_path: Path) -> None:
    video_digest = make_file(tmp_path / "clip.mp4", 9_000_000)
    (tmp_path / "face.jpg").write_bytes(b"\xff\xd8\xff jpeg")
    async with Emulator(seed=1) as emu, AsyncClient(token=emu.token, base_url=emu.url) as api:
        emu.faults.add(route="PUT /uploads/*", status=503)  # the first PUT fails once and is retried
        paths = await api.v1.files.upload_files([tmp_path / "clip.mp4", tmp_path / "face.jpg"])
        assert emu.counters.count("POST /v1/files/upload-urls") == 1
        stored = [emu.uploads[path] for path in paths]
        assert (stored[0].sha256, stored[0].size, stored[0].content_type) == (
            video_digest,
            9_000_000,
            "video/mp4",
        )
        assert stored[1].read_bytes() == b"\xff\xd8\xff jpeg"
        assert emu.counters.count("PUT /uploads/*") == 3
