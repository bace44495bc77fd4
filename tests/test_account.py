"""``client.v1.account`` and ``client.v1.saved_items`` against a scripted loopback server."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

import aiohttp
import pytest

import magic_hour_async as mh
from magic_hour_async.testing import Emulator
from magic_hour_async.testing._account import CATALOGUE
from tests._scripted import Scripted, ScriptedServer

TOKEN = "mhk_test_account"

ACCOUNT: dict[str, Any] = {
    "id": "acct_1",
    "email": "user@example.com",
    "tier": "pro",
    "credits": 12500,
    "subscription": {
        "name": "Pro",
        "status": "active",
        "price": {"amount": 4900, "currency": "usd"},
        "discount": {"percent_off": 20, "amount_off": None},
        "billing_interval": "month",
        "current_period_end": "2026-10-01T00:00:00.000Z",
        "cancel_at_period_end": False,
    },
}


def _item(number: int) -> dict[str, Any]:
    return {
        "id": f"item_{number}",
        "type": "character",
        "name": f"Alex {number}",
        "assets": [
            {
                "file_path": f"saved-items/u/item_{number}/image.png",
                "media_kind": "IMAGE",
                "is_primary": True,
                "url": f"https://cdn.example/item_{number}.png?sig=secret",
                "url_expires_at": "2026-09-17T00:00:00.000Z",
            }
        ],
    }


@pytest.mark.asyncio
async def test_account_get_decodes_credits_tier_and_subscription(scripted: ScriptedServer) -> None:
    scripted.add("/v1/account", Scripted(body=ACCOUNT))
    async with mh.AsyncClient(token=TOKEN, base_url=scripted.url) as client:
        account = await client.v1.account.get()
    assert (account.id, account.credits, account.tier, account.email) == (
        "acct_1",
        12500,
        "pro",
        "user@example.com",
    )
    assert account.subscription is not None
    assert account.subscription.price is not None and account.subscription.price.amount == 4900
    assert account.subscription.discount is not None and account.subscription.discount.percent_off == 20
    assert account.subscription.current_period_end == datetime(2026, 10, 1, tzinfo=timezone.utc)
    assert scripted.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.asyncio
async def test_account_without_subscription_and_an_unknown_tier_decodes(scripted: ScriptedServer) -> None:
    body = {**ACCOUNT, "tier": "enterprise", "email": None, "subscription": None, "new_field": 1}
    scripted.add("/v1/account", Scripted(body=body))
    async with mh.AsyncClient(token=TOKEN, base_url=scripted.url) as client:
        account = await client.v1.account.get()
    assert (account.tier, account.email, account.subscription) == ("enterprise", None, None)


@pytest.mark.asyncio
async def test_saved_items_list_sends_the_filters_and_returns_one_page(scripted: ScriptedServer) -> None:
    page = {"items": [_item(1), _item(2)], "next_cursor": "c2"}
    scripted.add("/v1/saved-items?type=character&limit=2", Scripted(body=page))
    async with mh.AsyncClient(token=TOKEN, base_url=scripted.url) as client:
        result = await client.v1.saved_items.list(type_="character", limit=2)
    assert [item.id for item in result.items] == ["item_1", "item_2"]
    assert result.next_cursor == "c2"
    assert result.items[0].assets[0].file_path == "saved-items/u/item_1/image.png"
    assert result.items[0].assets[0].url_expires_at == datetime(2026, 9, 17, tzinfo=timezone.utc)


@pytest.mark.asyncio
async def test_saved_items_iterate_follows_cursors_to_the_last_page(scripted: ScriptedServer) -> None:
    scripted.add(
        "/v1/saved-items?limit=2", Scripted(body={"items": [_item(1), _item(2)], "next_cursor": "c2"})
    )
    scripted.add(
        "/v1/saved-items?limit=2&cursor=c2", Scripted(body={"items": [_item(3)], "next_cursor": None})
    )
    async with mh.AsyncClient(token=TOKEN, base_url=scripted.url) as client:
        ids = [item.id async for item in client.v1.saved_items.iterate(limit=2)]
    assert ids == ["item_1", "item_2", "item_3"]
    assert [r.raw_path for r in scripted.requests] == [
        "/v1/saved-items?limit=2",
        "/v1/saved-items?limit=2&cursor=c2",
    ]


@pytest.mark.asyncio
async def test_saved_items_iterate_stops_when_the_server_repeats_a_cursor(scripted: ScriptedServer) -> None:
    looping = {"items": [_item(1)], "next_cursor": "same"}
    scripted.add("/v1/saved-items", Scripted(body=looping))
    scripted.add("/v1/saved-items?cursor=same", Scripted(body=looping), Scripted(body=looping))
    async with mh.AsyncClient(token=TOKEN, base_url=scripted.url) as client:
        ids = [item.id async for item in client.v1.saved_items.iterate()]
    assert ids == ["item_1", "item_1"]
    assert len(scripted.requests) == 2


@pytest.mark.asyncio
@pytest.mark.parametrize("limit", [0, 101, True, 2.5])
async def test_saved_items_rejects_a_limit_the_api_would_refuse(scripted: ScriptedServer, limit: Any) -> None:
    async with mh.AsyncClient(token=TOKEN, base_url=scripted.url) as client:
        with pytest.raises(mh.ConfigurationError, match="limit"):
            await client.v1.saved_items.list(limit=limit)
    assert scripted.requests == []


@pytest.mark.asyncio
async def test_sync_twins_iterate_every_page_and_get_the_account(scripted: ScriptedServer) -> None:
    scripted.add("/v1/saved-items?type=voice", Scripted(body={"items": [_item(1)], "next_cursor": "n"}))
    scripted.add(
        "/v1/saved-items?type=voice&cursor=n", Scripted(body={"items": [_item(2)], "next_cursor": None})
    )
    scripted.add("/v1/account", Scripted(body=ACCOUNT))

    def blocking() -> tuple[list[str], int]:
        with mh.Client(token=TOKEN, base_url=scripted.url) as client:
            ids = [item.id for item in client.v1.saved_items.iterate(type_="voice")]
            return ids, client.v1.account.get().credits

    # The blocking client runs its own loop in a thread; this loop keeps serving the scripted server.
    assert await asyncio.to_thread(blocking) == (["item_1", "item_2"], 12500)


# -- the emulator's account and saved items -------------------------------------------------------------


@pytest.mark.asyncio
async def test_emulator_account_reports_the_live_credit_balance() -> None:
    async with (
        Emulator(seed=3, credits=1000) as emu,
        mh.AsyncClient(token=emu.token, base_url=emu.url) as client,
    ):
        before = await client.v1.account.get()
        created = await client.v1.ai_image_generator.create(image_count=2, style={"prompt": "a fox"})
        after = await client.v1.account.get()
    assert before.credits == 1000
    assert after.credits == 1000 - created.credits_charged and created.credits_charged > 0
    assert after.tier == "pro" and after.subscription is not None and after.subscription.status == "active"


@pytest.mark.asyncio
async def test_emulator_saved_items_page_through_the_whole_catalogue() -> None:
    async with Emulator(seed=3) as emu, mh.AsyncClient(token=emu.token, base_url=emu.url) as client:
        first = await client.v1.saved_items.list()
        everything = [item async for item in client.v1.saved_items.iterate(limit=7)]
        voices = [item async for item in client.v1.saved_items.iterate(type_="voice", limit=100)]
    assert len(first.items) == 20 and first.next_cursor is not None
    assert len(everything) == CATALOGUE and len({item.id for item in everything}) == CATALOGUE
    assert [item.id for item in everything[:20]] == [item.id for item in first.items]
    assert len(voices) == CATALOGUE // 5 and {item.type for item in voices} == {"voice"}
    assert all(item.assets[0].media_kind == "AUDIO" for item in voices)


@pytest.mark.asyncio
async def test_emulator_refuses_a_foreign_cursor_with_a_structured_400() -> None:
    async with Emulator(seed=3) as emu, mh.AsyncClient(token=emu.token, base_url=emu.url) as client:
        page = await client.v1.saved_items.list(type_="voice", limit=2)
        assert page.next_cursor is not None
        with pytest.raises(mh.BadRequestError) as caught:
            await client.v1.saved_items.list(type_="character", cursor=page.next_cursor)
        with pytest.raises(mh.BadRequestError) as unknown_type:
            await client.v1.saved_items.list(type_="hat")
    assert caught.value.code == "invalid_request" and "cursor" in caught.value.message
    assert unknown_type.value.code == "invalid_request"


@pytest.mark.asyncio
async def test_emulator_account_and_saved_items_bodies_match_the_spec() -> None:
    conformance = pytest.importorskip("tests.test_emulator_conformance")
    async with (
        Emulator(seed=3) as emu,
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {emu.token}"}) as http,
    ):
        for path in ("/v1/account", "/v1/saved-items"):
            async with http.get(emu.url + path) as response:
                body = await response.json()
            schema = conformance.response_schema("GET", path, "200")
            assert response.status == 200
            assert conformance.problems(schema, body) == [], path
            assert conformance.undeclared(schema, body) == set(), path
        async with http.get(emu.url + "/v1/saved-items?limit=0") as response:
            body = await response.json()
        assert response.status == 400
        assert conformance.problems(conformance.response_schema("GET", "/v1/saved-items", "400"), body) == []
