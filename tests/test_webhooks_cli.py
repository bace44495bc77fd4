"""``magic-hour-async webhooks listen`` as a subprocess: it prints verified deliveries, one line each."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest

from magic_hour_async import webhooks
from magic_hour_async._cli._main import EXIT_USAGE, main

SECRET = "whsec_cli_test"
BANNER = "listening for Magic Hour webhooks on "


def signed(event_type: str, payload: dict[str, object], secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"type": event_type, "payload": payload}).encode()
    ts = str(int(time.time()))
    return body, {
        "Content-Type": "application/json",
        "magic-hour-event-signature": webhooks.sign(body, secret, ts),
        "magic-hour-event-timestamp": ts,
    }


@asynccontextmanager
async def listening(
    *args: str, env: dict[str, str] | None = None
) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """Start the listener on a free port; yield its URL and the process; terminate it afterwards."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MAGIC_HOUR_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "magic_hour_async",
        "webhooks",
        "listen",
        "--port",
        "0",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**environment, **(env or {})},
    )
    try:
        assert process.stderr is not None
        banner = (await asyncio.wait_for(process.stderr.readline(), 20)).decode()
        assert banner.startswith(BANNER), banner
        yield banner.removeprefix(BANNER).strip(), process
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), 20)


async def line_from(stream: asyncio.StreamReader | None) -> str:
    assert stream is not None
    return (await asyncio.wait_for(stream.readline(), 10)).decode().rstrip("\n")


@pytest.mark.asyncio
async def test_listen_prints_each_verified_event_and_reports_rejections() -> None:
    async with listening("--secret", SECRET) as (url, process), aiohttp.ClientSession() as session:
        payload = {"id": "clx1", "status": "error", "error": {"code": "no_source_face", "message": "No face"}}
        body, headers = signed("video.errored", payload)
        async with session.post(url, data=body, headers=headers) as response:
            assert (response.status, await response.json()) == (200, {"received": True})
        assert await line_from(process.stdout) == "video.errored clx1 error no_source_face: No face"

        body, headers = signed("image.completed", {"id": "clx2", "status": "complete"}, "whsec_wrong")
        async with session.post(url, data=body, headers=headers) as response:
            assert response.status == 401
        assert (await line_from(process.stderr)).startswith("webhook rejected: bad signature")

        process.terminate()  # SIGTERM stops it cleanly
        assert await asyncio.wait_for(process.wait(), 20) == 0


@pytest.mark.asyncio
async def test_listen_json_lines_with_the_secret_from_the_environment() -> None:
    env = {"MAGIC_HOUR_WEBHOOK_SECRET": SECRET}
    async with (
        listening("--json", "--path", "/hooks", env=env) as (url, process),
        aiohttp.ClientSession() as session,
    ):
        assert url.endswith("/hooks")
        body, headers = signed(
            "audio.completed", {"id": "clx3", "status": "complete", "type": "VOICE_GENERATOR"}
        )
        async with session.post(url, data=body, headers=headers) as response:
            assert response.status == 200
        printed = json.loads(await line_from(process.stdout))

    assert printed["type"] == "audio.completed"
    assert printed["payload"]["id"] == "clx3"
    assert printed["payload"]["status"] == "complete"
    assert printed["payload"]["type"] == "VOICE_GENERATOR"
    assert "downloaded_paths" not in printed["payload"]


def test_listen_without_a_secret_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MAGIC_HOUR_WEBHOOK_SECRET", raising=False)
    assert main(["webhooks", "listen", "--port", "0"]) == EXIT_USAGE
    assert "MAGIC_HOUR_WEBHOOK_SECRET" in capsys.readouterr().err
