"""The emulator keeps per-request state under typed keys: no warning on any aiohttp, even under -W error.

aiohttp 3.14 warns once per process the first time a request is indexed with a string key. Under ``-W error``
(or pytest's ``filterwarnings = error``) that warning used to escape from the fault middleware, so the first
injected fault of a test run answered 500 (and was retried) instead of its configured status. Each case runs
in a fresh interpreter, where that first time has not happened yet.
"""

from __future__ import annotations

import subprocess
import sys

FRESH_PROCESS = """
import asyncio

import aiohttp

from magic_hour_async.testing import Emulator


async def main() -> None:
    async with Emulator(seed=1) as emu, aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {emu.token}"}
        pid = emu.create_project("video", status="complete", output_size=64)
        emu.faults.add(route="GET /v1/video-projects/{id}", status=404)
        async with session.get(f"{emu.url}/v1/video-projects/{pid}", headers=headers) as response:
            print(response.status)
        async with session.get(f"{emu.url}/v1/video-projects/{pid}", headers=headers) as response:
            url = (await response.json())["downloads"][0]["url"]
        emu.faults.add(route="GET /outputs/*", truncate_after=10)
        try:
            async with session.get(url) as response:
                await response.read()
        except aiohttp.ClientPayloadError:
            print("truncated")
        print([record.status for record in emu.counters.requests()])


asyncio.run(main())
"""


def test_faults_behave_as_configured_with_warnings_as_errors() -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", FRESH_PROCESS],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["404", "truncated", "[404, 200, None]"]
    assert "Warning" not in result.stderr
