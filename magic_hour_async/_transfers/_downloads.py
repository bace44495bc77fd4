"""Streaming, atomic, resumable downloads of a project's outputs (``AsyncClient.download_outputs``).

Each output streams through the client's transport (``Transport.stream()``) in chunks into a temporary
``.{name}.{random}.part`` file next to its final name (see :class:`PartFile` for how writes stay off the
event loop's critical path with bounded memory) and is renamed into place only once its size matches
``Content-Length``, so the final name is either absent or complete. The client's connect timeout applies;
its total timeout does not (a large file may take longer than any API call), and its read timeout bounds
how long the transfer may go without receiving a byte.

Faults, per output:

- a transfer cut short resumes with ``Range: bytes=N-``; a ``206`` must carry a ``Content-Range`` starting
  at N, and a ``200`` means the server ignored the range: the file restarts from zero;
- what the client's :class:`RetryPolicy` calls transient for ``RequestKind.DOWNLOAD`` (connection errors,
  timeouts, 408, 429, 500, 502, 503, 504) retries with its backoff and ``max_retries`` (an attempt that
  saved new bytes resets the count and resumes at once);
- a URL whose ``expires_at`` has passed, or a 403/410 answer, fetches the project again for fresh URLs
  (one fetch serves all outputs of the call; at most two per output);
- anything else, or retries running out, raises :class:`DownloadError` naming the output, the file and the
  cause, after removing the temporary file. Cancellation removes it too. Signed query strings (of the URL
  and of any redirect target) appear in no message, log line or cause.

A file already under the final name is kept when its size equals the output's ``Content-Length`` (one GET
whose body is not read) and raises :class:`DownloadError` otherwise, unless ``overwrite=True``. When the
server gives no usable ``Content-Length`` (a compressed answer), the output is downloaded and compared with
the file byte for byte: identical keeps the file, different raises.
"""

from __future__ import annotations

import asyncio
import filecmp
import logging
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from .._exceptions import APIConnectionError, APITimeoutError, DownloadError, MagicHourError, raise_detached
from .._http._redact import redact_url, scrub, url_secrets
from .._http._retry import RequestKind
from .._http._transport import StreamResponse, Transport
from .._models import AudioProject, Download, ImageProject, Project, VideoProject
from ._filenames import confine, output_filename
from ._parts import (
    PartFile,
    ProgressCallback,
    Stall,
    TransferProgress,
    gather_all,
    stall_limit,
    transfer_slots,
)

if TYPE_CHECKING:
    from .._client import AsyncClient

__all__ = ["download_outputs"]

logger = logging.getLogger("magic_hour_async")

CHUNK_SIZE = 1 << 20
_MAX_REFRESHES = 2
_MAX_RESTARTS = 2
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class _FreshUrls:
    """The project's current download URLs; one refetch serves every output that found its URL expired."""

    def __init__(self, client: AsyncClient, project: Project) -> None:
        self._client = client
        self._project = project
        self._lock = asyncio.Lock()

    def get(self, index: int) -> Download:
        return self._project.downloads[index]

    async def refresh(self, index: int, stale: str) -> Download:
        async with self._lock:
            if self._project.downloads[index].url == stale:
                self._project = await self._fetch()
                if index >= len(self._project.downloads):
                    raise DownloadError(f"project {self._project.id} no longer lists output {index}")
            return self._project.downloads[index]

    async def _fetch(self) -> Project:
        project, v1 = self._project, self._client.v1
        if isinstance(project, VideoProject):
            return await v1.video_projects.get(id=project.id)
        if isinstance(project, ImageProject):
            return await v1.image_projects.get(id=project.id)
        if isinstance(project, AudioProject):
            return await v1.audio_projects.get(id=project.id)
        raise DownloadError(f"cannot fetch fresh URLs for a plain {type(project).__name__}: kind unknown")


class _Retryable(Exception):
    """An attempt failed in a way another attempt may fix; ``cause`` is the SDK error to report."""

    def __init__(self, cause: MagicHourError) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _Expired(_Retryable):
    """The signed URL was refused (403/410): fresh URLs are needed."""


class _Restart(_Retryable):
    """The server refused to resume (416): the partial file no longer matches, start again from zero."""


class _Transfer:
    """Downloads one output: the retry, refresh and resume loop around single GET attempts."""

    def __init__(
        self,
        urls: _FreshUrls,
        transport: Transport,
        index: int,
        final: Path,
        *,
        overwrite: bool,
        on_progress: ProgressCallback | None,
    ) -> None:
        self._urls, self._transport, self._index, self._final = urls, transport, index, final
        self._on_progress = on_progress
        self._download = urls.get(index)
        # A file already under the final name is compared with the first answer, unless it may be replaced.
        self._existing = None if overwrite else _size_of(final)
        self._overwrite = overwrite
        self._part: PartFile | None = None
        self._offset = 0
        self._total: int | None = None
        self._refreshes = 0
        self._reported: tuple[int, int | None] | None = None  # the last numbers given to on_progress

    async def run(self) -> Path:
        try:
            try:
                await self._loop()
            except OSError as exc:  # the disk, not the network: full, read-only, a directory in the way
                raise self._error(exc) from exc
        except BaseException:
            if self._part is not None:
                await self._part.discard()
            raise
        return self._final

    async def _loop(self) -> None:
        expires = self._download.expires_at
        if expires is not None and expires <= datetime.now(timezone.utc):
            await self._refresh(None)
        failures = restarts = 0
        furthest = 0  # the highest offset reached: refetching bytes after a restart is not progress
        while True:
            try:
                if await self._attempt():
                    return
            except _Expired as exc:
                await self._refresh(exc.cause)
            except _Restart as exc:
                restarts += 1  # the next attempt sends no Range, so this cannot repeat without a cause
                if restarts > _MAX_RESTARTS:
                    raise_detached(self._error(exc.cause), cause=exc.cause)
            except _Retryable as exc:
                if self._offset > furthest:
                    furthest = self._offset
                    failures = 0  # new bytes were saved: resume at once
                    continue
                logger.debug("download %s: %s", self._final.name, exc.cause)
                if not await self._transport.retry_pause(RequestKind.DOWNLOAD, exc.cause, attempt=failures):
                    raise_detached(self._error(exc.cause), cause=exc.cause)
                failures += 1

    async def _attempt(self) -> bool:
        """One GET. True when the output is saved (or an identical file was already there)."""
        # No auth header: signed URLs carry their own authorisation. Sizes and ranges refer to the bytes on
        # disk, so no compression either.
        headers = {"Accept-Encoding": "identity"}
        if self._offset:
            headers["Range"] = f"bytes={self._offset}-"
        stall = Stall(stall_limit(self._transport))
        failure: APIConnectionError | None = None
        with stall.scope:
            try:
                async with self._transport.stream("GET", self._download.url, headers=headers) as response:
                    start, total = await self._check(response)
                    if self._existing is not None and total is not None and self._part is None:
                        return self._keep_existing(total)  # compared by size, the body left unread
                    if start == 0 and self._offset:
                        logger.debug("download %s: server ignored Range, restarting", self._final.name)
                        await self._restart()
                    self._total = total
                    await self._stream(response, stall)
            except APIConnectionError as exc:  # the transport's: already scrubbed, with no cause
                failure = exc
        if failure is not None:
            raise _Retryable(failure)
        if stall.fired:
            raise _Retryable(APITimeoutError(f"no data for {stall.seconds:g} s"))
        if self._total is not None and self._offset < self._total:
            raise _Retryable(APIConnectionError(f"transfer ended at byte {self._offset} of {self._total}"))
        await self._publish()
        return True

    async def _check(self, response: StreamResponse) -> tuple[int, int | None]:
        """Where the body starts and the whole output's size, or raise what the status means."""
        status = response.status
        if status == 200:
            return 0, response.content_length  # None when compressed: the size on disk is unknown
        if status == 206:
            found = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
            total = int(found[3]) if found and found[3] != "*" else None
            if found and int(found[1]) == self._offset and (self._total is None or total == self._total):
                return self._offset, total
            await self._restart()
            raise _Retryable(APIConnectionError(f"206 with Content-Range {found and found[0]!r}"))
        if status < 400:
            raise self._error(f"unexpected HTTP {status}")
        error = response.error(await response.read_prefix(2048))
        if status in (403, 410):
            raise _Expired(error)
        if status == 416 and self._offset:
            await self._restart()  # our partial file does not match the output any more
            raise _Restart(error)
        raise _Retryable(error)  # the retry policy decides whether it is worth another attempt

    async def _stream(self, response: StreamResponse, stall: Stall) -> None:
        part = self._part = self._part or PartFile(self._final)
        try:
            async for chunk in response.iter_chunks(CHUNK_SIZE):
                stall.progress()
                handed = await part.write(chunk)
                self._offset += len(chunk)  # taken by the part file (on disk after the next flush)
                if handed:
                    self._report(self._offset)
        except Exception:
            await part.flush()  # keep what arrived: the resume starts after it
            raise
        await part.flush()
        self._report(self._offset)

    async def _restart(self) -> None:
        self._offset = 0  # first: if the truncation below is interrupted, it still happens, in order
        self._report(0)
        if self._part is not None:
            await self._part.truncate()

    def _keep_existing(self, total: int | None) -> bool:
        """True when the file under the final name has the output's size; raises DownloadError otherwise."""
        if total is not None and total == self._existing:
            logger.debug("download %s: complete file already present", self._final.name)
            self._report(total, total, already_present=True)
            return True
        size = f"has {total}" if total is not None else "size is unknown"
        raise DownloadError(
            f"{self._final} already exists and differs from output {self._index} "
            f"({self._existing} bytes, the output {size}); pass overwrite=True to replace it"
        )

    async def _publish(self) -> None:
        part = self._part
        if part is None:  # an empty body never opened a file
            part = self._part = PartFile(self._final)
        await part.close()
        if self._existing is not None:  # a file was there and the size was unknown: compare the bytes
            same = await asyncio.to_thread(filecmp.cmp, part.path, self._final, shallow=False)
            self._part = None
            await part.discard()
            if not same:
                raise DownloadError(
                    f"{self._final} already exists and differs from output {self._index} (compared byte "
                    "for byte: the server gave no size); pass overwrite=True to replace it"
                )
            logger.debug("download %s: identical file already present", self._final.name)
            self._report(self._offset, self._offset)
            return
        if self._overwrite or not self._link(part.path):
            os.replace(part.path, self._final)
        self._report(self._offset, self._offset)

    def _link(self, part: Path) -> bool:
        """Publish without clobbering: a hard link fails if the name was taken meanwhile, a rename would not.

        Returns False when the filesystem has no hard links (the caller renames instead).
        """
        try:
            os.link(part, self._final)
        except FileExistsError:
            self._existing = _size_of(self._final)
            self._keep_existing(self._offset)  # raises unless an identical file arrived meanwhile
        except OSError:
            return False
        os.unlink(part)
        return True

    async def _refresh(self, cause: MagicHourError | None) -> None:
        if self._refreshes >= _MAX_REFRESHES:
            raise self._error(cause or "the URL expired") from cause
        self._refreshes += 1
        logger.debug("download %s: fetching fresh URLs (%s)", self._final.name, cause or "expired")
        try:
            self._download = await self._urls.refresh(self._index, self._download.url)
        except MagicHourError as exc:
            raise self._error(f"{cause or 'the URL expired'}; fetching fresh URLs failed: {exc}") from exc

    def _report(self, done: int, total: int | None = None, *, already_present: bool = False) -> None:
        if self._on_progress is not None:
            total = self._total if total is None else total
            if (done, total) == self._reported:
                return  # once per change: the last chunk and the rename report the same numbers
            self._reported = (done, total)
            progress = TransferProgress(
                name=self._final.name,
                index=self._index,
                bytes_done=done,
                bytes_total=total,
                already_present=already_present,
            )
            self._on_progress(progress)

    def _error(self, cause: object) -> DownloadError:
        url = self._download.url
        text = scrub(str(cause).replace(url, redact_url(url)), url_secrets(url))
        return DownloadError(
            f"could not download output {self._index} ({redact_url(url)}) to {self._final}: {text}"
        )


def _size_of(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


async def download_outputs(
    client: AsyncClient,
    project: Project,
    directory: str | os.PathLike[str] | None = None,
    *,
    overwrite: bool = False,
    on_progress: ProgressCallback | None = None,
) -> list[Path]:
    """Save every output of ``project`` under ``directory``; see ``AsyncClient.download_outputs``."""
    if not isinstance(project, Project):
        raise TypeError(f"project must be a Project, not {type(project).__name__}")
    downloads = project.downloads
    if not downloads:
        return []
    root = Path(directory) if directory is not None else Path.cwd()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the download directory {root}: {exc}") from exc
    urls = _FreshUrls(client, project)
    transport = client._transport
    slots = transfer_slots(transport)

    async def one(index: int) -> Path:
        name = output_filename(project.id, downloads[index].url, index=index, count=len(downloads))
        final = confine(root, name)
        async with slots:
            transfer = _Transfer(urls, transport, index, final, overwrite=overwrite, on_progress=on_progress)
            return await transfer.run()

    return await gather_all([one(index) for index in range(len(downloads))])
