"""``GET /v1/account`` and ``GET /v1/saved-items`` for the emulator.

The account is the emulator's own: ``credits`` is the live balance (what creates spend and failed renders
refund), on a ``pro`` subscription. Saved items are a fixed catalogue derived from the seed (:data:`CATALOGUE`
items, cycling through the five types, newest first), so tests can page through it without setting anything
up. Pages follow the API: ``limit`` 1 to 100 (default 20), an opaque ``cursor`` from the previous page's
``next_cursor``, and ``next_cursor`` ``null`` on the last page. Bad parameters are 400 with the API's
structured body, ``{"code": "invalid_request", "message": ...}``.

The cursor encodes the position and the filter it was issued for; a cursor reused with another ``type``, or
one that was never issued, is refused instead of silently restarting, as opaque cursors are on the API.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from aiohttp import web

from ._signing import iso
from ._state import STATE_KEY, State

__all__ = ["CATALOGUE", "SAVED_ITEM_TYPES", "add_routes"]

SAVED_ITEM_TYPES = ("character", "reference", "voice", "moodboard", "brand_kit")
#: How many saved items the emulated account holds.
CATALOGUE = 45
_DEFAULT_LIMIT, _MAX_LIMIT = 20, 100
_MEDIA = {
    "character": "IMAGE",
    "reference": "IMAGE",
    "voice": "AUDIO",
    "moodboard": "IMAGE",
    "brand_kit": "IMAGE",
}
_EXTENSION = {"IMAGE": "png", "AUDIO": "mp3", "VIDEO": "mp4"}


def invalid_request(text: str) -> web.Response:
    """The API's 400 body for a bad query parameter."""
    return web.json_response({"code": "invalid_request", "message": text}, status=400)


async def get_account(request: web.Request) -> web.StreamResponse:
    """``GET /v1/account``: the emulator's account, with its live credit balance."""
    state = request.app[STATE_KEY]
    period_end = (int(state.wall()) // 86_400 + 30) * 86_400  # a whole day: stable within a test
    return web.json_response(
        {
            "id": "emulator-" + hashlib.sha256(f"account:{state.seed}".encode()).hexdigest()[:16],
            "email": "emulator@example.com",
            "tier": "pro",
            "credits": state.balance,
            "subscription": {
                "name": "Pro",
                "status": "active",
                "price": {"amount": 4900, "currency": "usd"},
                "discount": None,
                "billing_interval": "month",
                "current_period_end": iso(period_end),
                "cancel_at_period_end": False,
            },
        }
    )


def _item(state: State, base: str, number: int) -> dict[str, Any]:
    """The ``number``-th saved item (0 is the newest)."""
    kind = SAVED_ITEM_TYPES[number % len(SAVED_ITEM_TYPES)]
    item_id = "s" + hashlib.sha256(f"saved:{state.seed}:{number}".encode()).hexdigest()[:24]
    media = _MEDIA[kind]
    file_path = f"saved-items/emulator/{item_id}/asset.{_EXTENSION[media]}"
    expires = state.wall() + state.url_ttl
    path = f"/saved/{file_path}"
    return {
        "id": item_id,
        "type": kind,
        "name": f"{kind.replace('_', ' ').title()} {CATALOGUE - number}",
        "assets": [
            {
                "file_path": file_path,
                "media_kind": media,
                "is_primary": True,
                "url": f"{base}{path}?{state.signer.query(path, expires)}",
                "url_expires_at": iso(expires),
            }
        ],
    }


def _cursor(position: int, kind: str) -> str:
    return base64.urlsafe_b64encode(f"{position}:{kind}".encode()).decode().rstrip("=")


def _position(cursor: str, kind: str) -> int | None:
    """The position a cursor stands for, or ``None`` for one this emulator never issued for ``kind``."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    position, _, issued_for = text.partition(":")
    if not position.isdigit() or issued_for != kind or _cursor(int(position), kind) != cursor:
        return None
    return int(position)


async def list_saved_items(request: web.Request) -> web.StreamResponse:
    """``GET /v1/saved-items?type=&limit=&cursor=``: one page, newest first."""
    query = request.query
    kind = query.get("type", "")
    if kind and kind not in SAVED_ITEM_TYPES:
        return invalid_request(f"'type' must be one of: {', '.join(SAVED_ITEM_TYPES)}")
    raw_limit = query.get("limit", str(_DEFAULT_LIMIT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= _MAX_LIMIT:
        return invalid_request(f"'limit' must be an integer from 1 to {_MAX_LIMIT}")
    limit = int(raw_limit)
    start = 0
    if "cursor" in query:
        found = _position(query["cursor"], kind)
        if found is None:
            return invalid_request("'cursor' is not a cursor this endpoint issued for these filters")
        start = found
    numbers = [n for n in range(CATALOGUE) if not kind or SAVED_ITEM_TYPES[n % len(SAVED_ITEM_TYPES)] == kind]
    page = numbers[start : start + limit]
    state, base = request.app[STATE_KEY], f"{request.scheme}://{request.host}"
    more = start + limit < len(numbers)
    return web.json_response(
        {
            "items": [_item(state, base, n) for n in page],
            "next_cursor": _cursor(start + limit, kind) if more else None,
        }
    )


def add_routes(app: web.Application) -> None:
    """Register the account and saved-items operations on ``app``."""
    app.router.add_get("/v1/account", get_account, allow_head=False)
    app.router.add_get("/v1/saved-items", list_saved_items, allow_head=False)
