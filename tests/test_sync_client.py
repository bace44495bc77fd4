"""The blocking ``Client``: the async client's results and errors, one loop thread per client, clean shutdown.

End-to-end over loopback: the emulator (thread mode) for the API, and a server that never answers for Ctrl-C.
"""

from __future__ import annotations

import _thread
import asyncio
import gc
import logging
import subprocess
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aiohttp import web

import magic_hour_async as mh
from magic_hour_async._portal import Portal
from magic_hour_async._portal import __file__ as PORTAL_FILE

if TYPE_CHECKING:
    from magic_hour_async.testing import Emulator


@pytest.fixture
def emu() -> Iterator[Emulator]:
    from magic_hour_async.testing import Emulator  # here: the Ctrl-C and portal tests do not need it

    with Emulator(seed=1, speed=0.001) as emulator:
        yield emulator


@pytest.fixture
def client(emu: Emulator) -> Iterator[mh.Client]:
    with mh.Client(token=emu.token, base_url=emu.url) as client:
        yield client


class HangingServer:
    """An aiohttp server on its own thread whose one route never answers; it notices the client leaving."""

    def __init__(self) -> None:
        self.received = threading.Event()
        self.disconnected = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="hanging-server", daemon=True)
        self.url = ""

    async def _hang(self, request: web.Request) -> web.Response:
        self.received.set()
        deadline = time.monotonic() + 60  # a guard: the client leaves long before on any machine
        while time.monotonic() < deadline:
            transport = request.transport
            if transport is None or transport.is_closing():
                self.disconnected.set()
                break
            await asyncio.sleep(0.01)
        return web.json_response({"message": "too late"}, status=500)

    async def _start(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/v1/video-projects/{id}", self._hang)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        return runner

    def __enter__(self) -> HangingServer:
        self._thread.start()
        self._runner = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(5)
        return self

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()


# -- same behaviour as the async client ----------------------------------------------------------------------
def test_get_returns_the_async_clients_model(emu: Emulator, client: mh.Client) -> None:
    project_id = emu.create_project("video", duration=4)

    async def fetch() -> mh.VideoProject:
        async with mh.AsyncClient(token=emu.token, base_url=emu.url) as async_client:
            return await async_client.v1.video_projects.get(id=project_id)

    project = client.v1.video_projects.get(id=project_id)
    assert type(project) is mh.VideoProject
    assert project == asyncio.run(fetch())
    assert project.id == project_id


def test_delete_returns_none_after_sending_delete(emu: Emulator, client: mh.Client) -> None:
    project_id = emu.create_project("image")
    assert client.v1.image_projects.delete(id=project_id) is None
    assert emu.counters.routes["DELETE /v1/image-projects/{id}"] == 1


def test_a_404_raises_the_async_clients_not_found_error_with_a_clean_traceback(client: mh.Client) -> None:
    with pytest.raises(mh.NotFoundError) as info:
        client.v1.audio_projects.get(id="no-such-project")
    assert type(info.value) is mh.NotFoundError
    assert info.value.status_code == 404
    frames = traceback.extract_tb(info.value.__traceback__)
    # One portal frame (the re-raise), then straight into the async resource method.
    assert [f.filename for f in frames].count(PORTAL_FILE) == 1
    after_portal = frames[[f.filename for f in frames].index(PORTAL_FILE) + 1]
    assert (after_portal.name, after_portal.filename.endswith("projects.py")) == ("get", True)


def test_a_configuration_error_is_raised_at_construction_and_leaves_no_thread() -> None:
    before = set(threading.enumerate())
    with pytest.raises(mh.ConfigurationError, match="MAGIC_HOUR_API_KEY"):
        mh.Client()
    assert set(threading.enumerate()) == before


def test_as_completed_is_a_blocking_iterator(emu: Emulator, client: mh.Client) -> None:
    # "rendering" until completed below: a render that finished by itself could come out first.
    first, second = emu.create_project("image", status="rendering"), emu.create_project("image")
    emu.complete(second)
    iterator = client.v1.image_projects.as_completed([first, second], timeout=10)
    assert next(iterator).id == second
    emu.complete(first)
    assert [p.id for p in iterator] == [first]


def test_repr_names_the_twins_and_never_the_token(emu: Emulator, client: mh.Client) -> None:
    assert repr(client) == f"Client(base_url={emu.url!r})"
    assert (repr(client.v1), repr(client.v1.video_projects)) == ("<V1>", "<VideoProjects>")
    assert emu.token not in repr(client) + str(client)


# -- threads and event loops ---------------------------------------------------------------------------------
def test_works_from_inside_asyncio_run(emu: Emulator, client: mh.Client) -> None:
    project_id = emu.create_project("video")

    async def main() -> mh.VideoProject:
        # A running loop in this thread (as in Jupyter): the call blocks it, and still works.
        return client.v1.video_projects.get(id=project_id)

    assert asyncio.run(main()).id == project_id


def test_one_client_serves_many_threads_at_once(emu: Emulator, client: mh.Client) -> None:
    ids = [emu.create_project("audio") for _ in range(8)]
    results: dict[str, str] = {}

    def fetch(project_id: str) -> None:
        results[project_id] = client.v1.audio_projects.get(id=project_id).id

    threads = [threading.Thread(target=fetch, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == {i: i for i in ids}


def test_five_clients_opened_and_closed_leave_no_threads(emu: Emulator) -> None:
    project_id = emu.create_project("video")
    before = set(threading.enumerate())
    for _ in range(5):
        with mh.Client(token=emu.token, base_url=emu.url) as client:
            client.v1.video_projects.get(id=project_id)
    assert set(threading.enumerate()) == before


# -- closing -------------------------------------------------------------------------------------------------
def test_close_twice_is_harmless_and_a_closed_client_raises(emu: Emulator) -> None:
    project_id = emu.create_project("video")
    client = mh.Client(token=emu.token, base_url=emu.url)
    thread = client._portal.thread
    assert client.closed is False
    client.close()
    client.close()
    assert client.closed is True
    assert not thread.is_alive()
    with pytest.raises(mh.ClientClosedError, match="closed"):
        client.v1.video_projects.get(id=project_id)
    with pytest.raises(mh.ClientClosedError):
        next(client.v1.video_projects.as_completed([project_id]))
    with pytest.raises(mh.ClientClosedError), client:
        pass


def test_a_dropped_client_is_finalized_without_warnings_or_log_noise(
    emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    project_id = emu.create_project("video")
    caplog.set_level(logging.DEBUG, logger="asyncio")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = mh.Client(token=emu.token, base_url=emu.url)
        client.v1.video_projects.get(id=project_id)  # the session and a pooled connection exist now
        thread = client._portal.thread
        del client
        gc.collect()
        assert not thread.is_alive()
    assert [str(w.message) for w in caught] == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


# -- Ctrl-C --------------------------------------------------------------------------------------------------
def test_ctrl_c_cancels_the_request_on_the_loop_and_reraises() -> None:
    with HangingServer() as server, mh.Client(token="t", base_url=server.url, max_retries=0) as client:

        def press_ctrl_c() -> None:
            if server.received.wait(30):  # the call is blocked waiting for the answer
                _thread.interrupt_main()

        presser = threading.Thread(target=press_ctrl_c)
        presser.start()
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            client.v1.video_projects.get(id="hangs")
        presser.join()
        assert time.monotonic() - started < 30  # not the server's 60-s hang
        # The task was cancelled: nothing is left running on the loop.
        assert client._portal.call_sync(asyncio.all_tasks) == set()
        thread = client._portal.thread
    assert not thread.is_alive()
    # Its connection is gone too: aiohttp drops it on cancellation, or at the latest when the client closes.
    assert server.disconnected.wait(5)


def test_a_client_left_open_at_exit_shuts_down_quietly() -> None:
    script = (
        "import magic_hour_async as mh\n"
        "from magic_hour_async.testing import Emulator\n"
        "with Emulator() as emu:\n"
        "    client = mh.Client(token=emu.token, base_url=emu.url)\n"
        "    client.v1.video_projects.get(id=emu.create_project('video'))\n"
        "print('bye')\n"
    )
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", "-c", script],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=60,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "bye\n", "")


def test_closing_from_another_thread_ends_a_running_call_with_client_closed_error() -> None:
    outcome: list[BaseException] = []
    with HangingServer() as server:
        client = mh.Client(token="t", base_url=server.url, max_retries=0)

        def call() -> None:
            try:
                client.v1.video_projects.get(id="hangs")
            except BaseException as exc:  # reported to the test thread
                outcome.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        assert server.received.wait(5)
        client.close()
        caller.join(5)
        assert server.disconnected.wait(5)
    assert [type(e) for e in outcome] == [mh.ClientClosedError]


# -- the portal ----------------------------------------------------------------------------------------------
def test_a_system_exit_inside_a_call_reaches_the_caller_and_stops_the_portal() -> None:
    portal = Portal()

    async def leave() -> None:
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        portal.call(leave)
    portal.thread.join(5)
    assert not portal.thread.is_alive()
    with pytest.raises(mh.ClientClosedError):
        portal.call(asyncio.sleep, 0)
    portal.stop()  # harmless after the loop ended on its own
