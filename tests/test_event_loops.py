"""One client, successive event loops: ``asyncio.run()`` twice (notebooks, scripts) and clients never closed.

The emulator runs on its own background thread, so each test can start and end as many loops as it likes.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import magic_hour_async as mh
from magic_hour_async.testing import Emulator


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


def test_an_async_client_works_in_one_asyncio_run_after_another(
    emu: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pid = emu.create_project("image", status="complete", outputs=5, output_size=1000)
    client = mh.AsyncClient(token=emu.token, base_url=emu.url)

    async def use(directory: Path) -> tuple[str, int]:
        project = await client.v1.image_projects.get(id=pid)
        # Five outputs, four transfer slots: the slots' semaphore is contended, so it binds to this loop.
        paths = await client.download_outputs(project, directory)
        return project.id, len(paths)

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        assert asyncio.run(use(tmp_path / "first")) == (pid, 5)
        assert asyncio.run(use(tmp_path / "second")) == (pid, 5)
        asyncio.run(client.close())
        gc.collect()
    assert client.closed
    assert "Unclosed" not in caplog.text


def test_each_loop_gets_its_own_session_and_the_old_one_is_closed(emu: Emulator) -> None:
    pid = emu.create_project("video", status="complete")
    client = mh.AsyncClient(token=emu.token, base_url=emu.url)

    async def session_after_get() -> object:
        await client.v1.video_projects.get(id=pid)
        return client._transport._session()

    first = asyncio.run(session_after_get())
    second = asyncio.run(session_after_get())
    assert first is not second
    assert first.closed  # type: ignore[attr-defined]  # closed when its loop shut down
    asyncio.run(client.close())
    assert second.closed  # type: ignore[attr-defined]


def test_a_blocking_client_works_from_one_asyncio_run_after_another(emu: Emulator) -> None:
    pid = emu.create_project("audio", status="complete")
    with mh.Client(token=emu.token, base_url=emu.url) as client:

        async def use() -> str:
            return client.v1.audio_projects.get(id=pid).id  # blocks this loop briefly: fine in a test

        assert asyncio.run(use()) == pid
        assert asyncio.run(use()) == pid


def test_an_unclosed_client_is_silent_at_interpreter_exit(emu: Emulator) -> None:
    pid = emu.create_project("video", status="complete")
    script = textwrap.dedent(
        f"""
        import asyncio
        from magic_hour_async import AsyncClient

        client = AsyncClient(token={emu.token!r}, base_url={emu.url!r})

        async def get():
            return (await client.v1.video_projects.get(id={pid!r})).id

        assert asyncio.run(get()) == asyncio.run(get()) == {pid!r}
        # never closed
        """
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
