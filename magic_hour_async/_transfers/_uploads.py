"""Uploads of input files to Magic Hour storage (``client.v1.files``).

The flow is the API's: one ``POST /v1/files/upload-urls`` for all files of a call (the answer keeps request
order), then one ``PUT`` of the raw bytes per presigned URL, concurrently under the client's transfer bound.
The returned ``file_path`` (``api-assets/...``) is what create endpoints take as ``*_file_path``.

Bodies are streamed: a file is read in 1 MiB chunks in a worker thread and handed to aiohttp as an async
generator with an explicit ``Content-Length`` (presigned storage URLs refuse chunked uploads), so memory
stays at a chunk or two whatever the file's size. A PUT to a presigned URL is idempotent, so what the
client's :class:`RetryPolicy` calls transient for ``RequestKind.UPLOAD`` (connection errors, timeouts, 408,
429, 500, 502, 503, 504) is retried with its backoff; each attempt reopens the path, or seeks a file object
back to where it started (unseekable streams are sent once). Errors never quote the presigned URL's query
(aiohttp's "Can not write request body for <url>" is scrubbed by the transport). aiohttp's read timeout
only starts once the body is sent, so a stall watchdog (``Stall``: an ``anyio.CancelScope`` whose deadline
moves with the chunks) bounds the upload itself: no progress for the client's read timeout raises
``APITimeoutError``. The client's total timeout does not apply to transfers: a large file may need longer.

Asset types follow the extension. ``webm`` is uploaded as ``video`` and ``webp`` as ``image`` (both also
valid elsewhere); ``gif``, which the API only accepts as face swap's ``video_file_path``, is uploaded as
``video`` because the request's ``type`` has no ``gif`` value.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator, Callable, Generator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import attrs

from .._converter import decode
from .._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ConfigurationError,
    ResponseDecodeError,
    raise_detached,
)
from .._http._redact import redact_url
from .._http._retry import RequestKind
from .._http._transport import Transport
from ._parts import (
    ProgressCallback,
    Stall,
    TransferProgress,
    gather_all,
    stall_limit,
    transfer_slots,
)

__all__ = [
    "UploadSource",
    "UploadUrl",
    "UploadUrlRequestItem",
    "UploadUrlsResponse",
    "create_upload_urls",
    "upload_files",
]

UploadSource = str | os.PathLike[str] | IO[bytes]

UPLOAD_CHUNK = 1 << 20
EXTENSIONS: Mapping[str, tuple[str, ...]] = {
    "video": ("mp4", "m4v", "mov", "webm"),
    "audio": ("mp3", "wav", "aac", "flac", "webm", "weba", "m4a", "opus", "ogg", "oga", "aiff", "amr"),
    "image": ("png", "jpg", "jpeg", "jfif", "heic", "heif", "webp", "avif", "jp2", "tiff", "tif", "bmp"),
    "gif": ("gif",),
}
# The first kind listed wins for an extension valid in several (webm: video; webp: image).
_ASSET_TYPE = {ext: kind for kind in ("audio", "image", "video") for ext in EXTENSIONS[kind]}
_ASSET_TYPE["gif"] = "video"
_CONTENT_TYPE = {
    "mp4": "video/mp4", "m4v": "video/x-m4v", "mov": "video/quicktime", "webm": "video/webm",
    "mp3": "audio/mpeg", "wav": "audio/wav", "aac": "audio/aac", "flac": "audio/flac", "weba": "audio/webm",
    "m4a": "audio/mp4", "opus": "audio/opus", "ogg": "audio/ogg", "oga": "audio/ogg", "aiff": "audio/aiff",
    "amr": "audio/amr", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "jfif": "image/jpeg",
    "heic": "image/heic", "heif": "image/heif", "webp": "image/webp", "avif": "image/avif",
    "jp2": "image/jp2", "tiff": "image/tiff", "tif": "image/tiff", "bmp": "image/bmp", "gif": "image/gif",
}  # fmt: skip
_EXTENSION = re.compile(r"[a-z0-9]+")


@attrs.frozen(kw_only=True)
class UploadUrlRequestItem:
    """One file to upload: its asset ``type`` (``video``, ``audio``, ``image``) and ``extension`` (no dot)."""

    type: str
    extension: str

    def __attrs_post_init__(self) -> None:
        if self.type not in ("video", "audio", "image"):
            raise ConfigurationError(f"type must be 'video', 'audio' or 'image', not {self.type!r}")
        if not isinstance(self.extension, str) or not _EXTENSION.fullmatch(self.extension):
            raise ConfigurationError(
                f"extension must be lower-case letters and digits, not {self.extension!r}"
            )


@attrs.frozen(kw_only=True)
class UploadUrl:
    """Where to ``PUT`` one file, until when, and the ``file_path`` to pass to create endpoints."""

    upload_url: str = attrs.field(repr=lambda url: repr(redact_url(url)))
    file_path: str
    expires_at: datetime | None = None


@attrs.frozen(kw_only=True)
class UploadUrlsResponse:
    """``POST /v1/files/upload-urls``: one :class:`UploadUrl` per requested item, in request order."""

    items: tuple[UploadUrl, ...]


for _cls in (UploadUrlRequestItem, UploadUrl, UploadUrlsResponse):
    attrs.resolve_types(_cls)


def _request_item(item: object) -> UploadUrlRequestItem:
    if isinstance(item, UploadUrlRequestItem):
        return item
    if isinstance(item, Mapping):
        fields: Mapping[str, Any] = item  # pyright: ignore[reportUnknownVariableType]
        # ``type_`` is how the official SDK spells the key; accept both.
        return UploadUrlRequestItem(
            type=fields.get("type", fields.get("type_", "")), extension=fields.get("extension", "")
        )
    raise ConfigurationError(
        f"each item must be a dict or an UploadUrlRequestItem, not {type(item).__name__}"
    )


async def create_upload_urls(transport: Transport, items: Sequence[object]) -> UploadUrlsResponse:
    """One ``POST /v1/files/upload-urls``; raises ResponseDecodeError if the answer has the wrong length."""
    checked = [_request_item(item) for item in items]
    if not checked:
        raise ConfigurationError("items must list at least one file")
    body = {"items": [{"type": item.type, "extension": item.extension} for item in checked]}
    # Not paid: asking for upload URLs creates no render, so the transport may retry it like a GET.
    response = decode(
        await transport.request("POST", "/v1/files/upload-urls", json_body=body), UploadUrlsResponse
    )
    if len(response.items) != len(checked):
        raise ResponseDecodeError(f"asked for {len(checked)} upload URLs, got {len(response.items)}")
    return response


def supported_extensions() -> str:
    """The supported extensions by asset type, for error messages."""
    return "; ".join(f"{kind}: {', '.join(exts)}" for kind, exts in EXTENSIONS.items())


def asset_type(name: str) -> tuple[str, str]:
    """``(type, extension)`` for a file name, or ConfigurationError listing the supported extensions."""
    extension = Path(name).suffix.lower().lstrip(".")
    kind = _ASSET_TYPE.get(extension)
    if kind is None:
        what = f"extension {extension!r}" if extension else "no extension"
        raise ConfigurationError(f"cannot upload {name!r}: {what}. Supported: {supported_extensions()}")
    return kind, extension


@attrs.define
class _Source:
    """A local file to upload, checked before any request."""

    name: str
    kind: str
    extension: str
    size: int | None
    path: Path | None = None
    file: IO[bytes] | None = None
    start: int = 0

    @property
    def rewindable(self) -> bool:
        return self.path is not None or self.size is not None

    @contextlib.contextmanager
    def opened(self) -> Generator[IO[bytes], None, None]:
        """The file at its starting position: a fresh handle on a path, or the caller's object sought back."""
        if self.path is not None:
            with self.path.open("rb") as handle:
                yield handle
            return
        assert self.file is not None
        if self.size is not None:
            self.file.seek(self.start)
        yield self.file


def prepare(source: object) -> str | _Source:
    """A pass-through string (http(s) URL, ``api-assets/...``) or a checked :class:`_Source`."""
    if isinstance(source, str) and source.lower().startswith(("http://", "https://", "api-assets/")):
        return source
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)  # pyright: ignore[reportUnknownArgumentType]
        kind, extension = asset_type(path.name)
        if not path.is_file():
            raise FileNotFoundError(f"no such file to upload: {path}")
        return _Source(path.name, kind, extension, path.stat().st_size, path=path)
    read = getattr(source, "read", None)
    if not callable(read):
        raise ConfigurationError(f"cannot upload a {type(source).__name__}: pass a path or a binary file")
    file: IO[bytes] = source  # type: ignore[assignment]  # duck-typed: has read()
    name = getattr(file, "name", None)
    if not isinstance(name, str):
        raise ConfigurationError(
            "a file object without a name has no extension to type it by: pass a path, or set .name"
        )
    kind, extension = asset_type(name)
    if not isinstance(file.read(0), bytes):
        raise ConfigurationError(f"{name!r} is open in text mode; open it with 'rb'")
    size, start = None, 0
    if file.seekable():
        start = file.tell()
        size = file.seek(0, os.SEEK_END) - start
        file.seek(start)
    return _Source(os.path.basename(name), kind, extension, size, file=file, start=start)


async def _chunks(
    reader: IO[bytes],
    size: int | None,
    on_chunk: Callable[[int], None],
    on_short: Callable[[str], None],
) -> AsyncIterator[bytes]:
    """The body: ``size`` bytes (all, when unknown) read in worker-thread chunks of ``UPLOAD_CHUNK``.

    A file that ends early is reported to ``on_short``, which stops the exchange: raising here would leave
    aiohttp waiting for an answer the server never sends (it still expects ``Content-Length`` bytes).
    """
    done = 0
    while size is None or done < size:
        want = UPLOAD_CHUNK if size is None else min(UPLOAD_CHUNK, size - done)
        chunk = await asyncio.to_thread(reader.read, want)
        if not chunk:
            if size is not None:
                on_short(f"the file ended after {done} of {size} bytes: it changed during the upload")
            return
        done += len(chunk)
        on_chunk(done)
        yield chunk


class _Uploader:
    def __init__(self, transport: Transport, on_progress: ProgressCallback | None) -> None:
        self._transport = transport
        self._on_progress = on_progress
        self._stall = stall_limit(transport)

    async def put(self, index: int, source: _Source, url: str) -> None:
        """PUT with retries on transient failures, rewinding the source each time."""
        attempt = 0
        while True:
            try:
                return await self._put_once(index, source, url)
            except (APIConnectionError, APIStatusError) as exc:
                error = exc
            if not source.rewindable or not await self._transport.retry_pause(
                RequestKind.UPLOAD, error, attempt=attempt
            ):
                raise_detached(error)
            attempt += 1

    async def _put_once(self, index: int, source: _Source, url: str) -> None:
        headers = {"Content-Type": _CONTENT_TYPE[source.extension]}
        if source.size is not None:
            headers["Content-Length"] = str(source.size)
        stall = Stall(self._stall)
        short: list[str] = []
        with source.opened() as reader, stall.scope:

            def on_short(problem: str) -> None:
                short.append(problem)
                stall.scope.cancel()

            def on_chunk(done: int) -> None:  # runs in aiohttp's task that writes the body
                stall.progress()
                if self._on_progress is not None:
                    progress = TransferProgress(
                        name=source.name, index=index, bytes_done=done, bytes_total=source.size
                    )
                    self._on_progress(progress)

            body = _chunks(reader, source.size, on_chunk, on_short)
            async with self._transport.stream("PUT", url, headers=headers, body=body) as response:
                if response.status >= 400:
                    raise response.error(await response.read_prefix(2048))
        if short:
            raise OSError(f"cannot upload {source.name}: {short[0]}")
        if stall.fired:
            raise APITimeoutError(f"upload of {source.name} made no progress for {self._stall:g} s")


async def upload_files(
    transport: Transport, files: Sequence[UploadSource], *, on_progress: ProgressCallback | None = None
) -> list[str]:
    """Upload local files (one upload-URL request, concurrent PUTs); ``file_path`` strings in input order."""
    if isinstance(files, (str, bytes, os.PathLike)):
        raise ConfigurationError("files must be a list; use upload_file() for a single file")
    prepared = [prepare(source) for source in files]
    local = [(index, item) for index, item in enumerate(prepared) if isinstance(item, _Source)]
    objects = [id(item.file) for _, item in local if item.file is not None]
    if len(objects) != len(set(objects)):
        raise ConfigurationError("the same file object is listed twice; uploads of it would interleave")
    if not local:
        return [item for item in prepared if isinstance(item, str)]
    items = [UploadUrlRequestItem(type=item.kind, extension=item.extension) for _, item in local]
    urls = await create_upload_urls(transport, items)
    uploader, slots = _Uploader(transport, on_progress), transfer_slots(transport)

    async def one(index: int, source: _Source, url: UploadUrl) -> None:
        async with slots:
            await uploader.put(index, source, url.upload_url)

    await gather_all([one(index, item, url) for (index, item), url in zip(local, urls.items, strict=True)])
    paths = iter(url.file_path for url in urls.items)
    return [item if isinstance(item, str) else next(paths) for item in prepared]
