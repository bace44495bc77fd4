"""``client.v1.saved_items``: the characters, references, voices, moodboards and brand kits saved in the
account, newest first, one page at a time (``list``) or all of them (``iterate``).

``GET /v1/saved-items`` pages with an opaque cursor: each page carries ``next_cursor``, ``None`` on the last
one. ``iterate`` follows the cursors and stops when one repeats, so a server that keeps answering the same
cursor cannot hold a caller in an endless loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlencode

import attrs

from .._converter import decode
from .._exceptions import ConfigurationError
from .._models import WireModel
from .._request_options import RequestOptions, resolve

if TYPE_CHECKING:
    from .._client import AsyncClient

__all__ = ["AsyncSavedItems", "SavedItem", "SavedItemAsset", "SavedItemType", "SavedItemsPage"]

#: The ``type`` filter values the API documents (``type_`` in the methods, as in the official SDK).
SavedItemType = Literal["character", "reference", "voice", "moodboard", "brand_kit"]

#: The largest page the API serves.
MAX_LIMIT = 100


@attrs.frozen(kw_only=True)
class SavedItemAsset(WireModel):
    """One file of a saved item.

    Attributes:
        file_path: a durable path to pass to a create endpoint's asset field without uploading again.
        media_kind: ``"IMAGE"``, ``"VIDEO"`` or ``"AUDIO"`` (open).
        is_primary: whether this is the item's primary asset.
        url: a signed URL to preview or download the file; it expires at ``url_expires_at``.
        url_expires_at: when ``url`` stops working (``file_path`` never does).
    """

    file_path: str
    media_kind: str = ""
    is_primary: bool = False
    url: str | None = None
    url_expires_at: datetime | None = None


@attrs.frozen(kw_only=True)
class SavedItem(WireModel):
    """A saved item: its ``type`` (open string), the name given to it, and its assets."""

    id: str
    type: str
    name: str | None = None
    assets: tuple[SavedItemAsset, ...] = ()


@attrs.frozen(kw_only=True)
class SavedItemsPage(WireModel):
    """One page of ``GET /v1/saved-items``; ``next_cursor`` fetches the next one (``None`` on the last)."""

    items: tuple[SavedItem, ...]
    next_cursor: str | None = None


def _query(type_: str | None, limit: int | None, cursor: str | None) -> str:
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT
    ):
        raise ConfigurationError(f"limit must be an integer from 1 to {MAX_LIMIT}, not {limit!r}")
    if cursor is not None and (not isinstance(cursor, str) or not cursor):
        raise ConfigurationError(f"cursor must be a non-empty string, not {cursor!r}")
    pairs = [(key, value) for key, value in (("type", type_), ("limit", limit), ("cursor", cursor)) if value]
    return "?" + urlencode(pairs) if pairs else ""


class AsyncSavedItems:
    """``client.v1.saved_items``: ``GET /v1/saved-items``."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    def __repr__(self) -> str:
        return "<AsyncSavedItems /v1/saved-items>"

    async def list(
        self,
        *,
        type_: SavedItemType | str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        request_options: RequestOptions | None = None,
    ) -> SavedItemsPage:
        """One page of saved items, newest first.

        Example:
            ```python
            page = await client.v1.saved_items.list(type_="character", limit=50)
            more = await client.v1.saved_items.list(cursor=page.next_cursor) if page.next_cursor else None
            ```

        Args:
            type_: only items of this type (``character``, ``reference``, ``voice``, ``moodboard``,
                ``brand_kit``).
            limit: page size, 1 to 100 (server default 20).
            cursor: ``next_cursor`` of the previous page.
            request_options: per-call ``timeout``, ``additional_headers``, ``additional_params``.
        """
        sent = resolve("/v1/saved-items" + _query(type_, limit, cursor), request_options)
        data = await self._client._transport.request(
            "GET", sent.path, headers=sent.headers, timeout=sent.timeout
        )
        return decode(data, SavedItemsPage)

    async def iterate(
        self,
        *,
        type_: SavedItemType | str | None = None,
        limit: int | None = None,
        request_options: RequestOptions | None = None,
    ) -> AsyncIterator[SavedItem]:
        """Every saved item, newest first, fetching pages as the loop reaches them.

        Example:
            ```python
            async for item in client.v1.saved_items.iterate(type_="voice"):
                print(item.name, item.assets[0].file_path)
            ```

        Args:
            type_: only items of this type.
            limit: page size, 1 to 100 (server default 20).
            request_options: per-call options, applied to every page request.
        """
        seen: set[str] = set()
        cursor: str | None = None
        while True:
            page = await self.list(type_=type_, limit=limit, cursor=cursor, request_options=request_options)
            for item in page.items:
                yield item
            cursor = page.next_cursor
            if cursor is None or cursor in seen:
                return
            seen.add(cursor)


# Decoding resolves annotations by name; do it while this module is still their home.
for _cls in (SavedItemAsset, SavedItem, SavedItemsPage):
    attrs.resolve_types(_cls)
