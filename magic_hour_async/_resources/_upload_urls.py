"""``files.upload_urls.create``: ``POST /v1/files/upload-urls``, its answer returned as the API sent it.

``upload_files`` pairs every file with its URL and refuses an answer of the wrong length (that lives in
``_transfers/_uploads.py``). The public ``create`` is the raw operation: callers of the official SDK read
``items`` themselves, and mock servers answer with a fixed example whatever was asked, so no pairing
check here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._converter import decode
from .._exceptions import ConfigurationError
from .._request_options import RequestOptions, resolve
from .._transfers._uploads import UploadUrlsResponse, _request_item  # pyright: ignore[reportPrivateUsage]

if TYPE_CHECKING:
    from .._http._transport import Transport

PATH = "/v1/files/upload-urls"


async def request_upload_urls(
    transport: Transport, items: Sequence[object], options: RequestOptions | None
) -> UploadUrlsResponse:
    """One ``POST /v1/files/upload-urls`` for ``items`` (checked before sending); the decoded answer."""
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise ConfigurationError("items must be a list of {'type': ..., 'extension': ...} dicts")
    checked = [_request_item(item) for item in items]
    if not checked:
        raise ConfigurationError("items must list at least one file")
    body = {"items": [{"type": item.type, "extension": item.extension} for item in checked]}
    sent = resolve(PATH, options)
    # Not paid: asking for upload URLs creates no render, so the transport may retry it like a GET.
    data = await transport.request(
        "POST", sent.path, json_body=body, headers=sent.headers, timeout=sent.timeout
    )
    return decode(data, UploadUrlsResponse)
