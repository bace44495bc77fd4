"""``client.v1.files``: upload input files to Magic Hour storage; the work is done in ``_uploads``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .._request_options import RequestOptions
from .._transfers._parts import ProgressCallback
from .._transfers._uploads import (
    UploadSource,
    UploadUrlRequestItem,
    UploadUrlsResponse,
    upload_files,
)
from ._upload_urls import request_upload_urls

if TYPE_CHECKING:
    from .._client import AsyncClient


class AsyncUploadUrls:
    """``/v1/files/upload-urls``."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    def __repr__(self) -> str:
        return "<AsyncUploadUrls>"

    async def create(
        self,
        *,
        items: Sequence[UploadUrlRequestItem | Mapping[str, str]],
        request_options: RequestOptions | None = None,
    ) -> UploadUrlsResponse:
        """Request presigned upload URLs, one per item, and return what the API answered.

        Most code wants :meth:`AsyncFiles.upload_files` instead, which calls this and uploads the bytes (and
        checks that every file got its URL). This method returns the answer as sent: a mock server that
        answers with a fixed example may list more URLs than were asked for.

        Example:
            ```python
            res = await client.v1.files.upload_urls.create(items=[{"type": "video", "extension": "mp4"}])
            res.items[0].upload_url, res.items[0].file_path
            ```

        Args:
            items: ``{"type": "video" | "audio" | "image", "extension": "mp4"}`` per file (``type_`` is
                accepted as the key too, as the official SDK spells it).
            request_options: per-call ``timeout``, ``additional_headers``, ``additional_params``.
        """
        return await request_upload_urls(self._client._transport, items, request_options)


class AsyncFiles:
    """``/v1/files``: ``upload_file``, ``upload_files`` and ``upload_urls.create``."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self.upload_urls = AsyncUploadUrls(client)

    def __repr__(self) -> str:
        return "<AsyncFiles>"

    async def upload_file(self, file: UploadSource, *, on_progress: ProgressCallback | None = None) -> str:
        """Upload one file and return its ``file_path`` (``api-assets/...``) for create endpoints.

        ``file`` is a path (``str`` or ``pathlib.Path``) or a binary file object with a ``name``; the type
        follows the extension. An http(s) URL or an ``api-assets/...`` path is returned unchanged, without
        any request. The file is streamed, never read into memory whole.

        Example:
            ``path = await client.v1.files.upload_file("face.png")``

        Raises:
            ConfigurationError: the extension is not one the API accepts (the message lists them).
        """
        report = self._client._hooks.transfers("upload", on_progress)
        return (await upload_files(self._client._transport, [file], on_progress=report))[0]

    async def upload_files(
        self, files: Sequence[UploadSource], *, on_progress: ProgressCallback | None = None
    ) -> list[str]:
        """Upload several files with one upload-URL request and concurrent PUTs; ``file_path`` in input order.

        Every file is checked before the first request. URLs and ``api-assets/...`` paths pass through.

        Example:
            ``video, audio = await client.v1.files.upload_files(["clip.mp4", "voice.mp3"])``
        """
        report = self._client._hooks.transfers("upload", on_progress)
        return await upload_files(self._client._transport, files, on_progress=report)
