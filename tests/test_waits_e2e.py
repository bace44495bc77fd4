"""Waiting for renders end to end: the public ``AsyncClient`` against the emulator over 127.0.0.1.

Most tests run the emulator on the test's own loop with a ``ManualClock``, so a render finishes exactly when
the test says. Nothing sleeps to make an assertion pass: the tests wait (boundedly) for a condition, such as
"the emulator has received three more GETs of the control project", which is how "no more GETs arrived" is
made meaningful without assuming how long the loop takes to do anything.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import AsyncIterator, Callable
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import pytest_asyncio

import magic_hour_async as mh
from magic_hour_async.testing import Emulator, ManualClock

# The emulator fixtures come from the package's pytest11 entry point; load the plugin by hand where the
# installed metadata lacks it (an environment installed before the entry point existed).
if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD") or not any(
    ep.value == "magic_hour_async.testing._plugin" for ep in entry_points(group="pytest11")
):
    pytest_plugins = ["magic_hour_async.testing._plugin"]

pytestmark = pytest.mark.asyncio

GET = "GET /v1/video-projects/{id}"
FAST = mh.PollPolicy(initial=0.01, maximum=0.05, max_rate=1000)  # the defaults, 100 times faster


async def until(condition: Callable[[], bool], *, timeout: float = 10.0) -> None:
    """Let the loop run until ``condition()`` holds; fail after ``timeout`` seconds (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.002)


async def gets_pass(emu: Emulator, id: str, more: int) -> None:
    """Wait until the emulator has received ``more`` further GETs of project ``id``."""
    target = emu.counters.count(GET, id=id) + more
    await until(lambda: emu.counters.count(GET, id=id) >= target)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest_asyncio.fixture
async def emu(clock: ManualClock) -> AsyncIterator[Emulator]:
    async with Emulator(seed=5, clock=clock, output_size=2048) as emulator:
        yield emulator


@pytest_asyncio.fixture
async def client(emu: Emulator) -> AsyncIterator[mh.AsyncClient]:
    async with mh.AsyncClient(token=emu.token, base_url=emu.url, poll=FAST) as client:
        yield client


@pytest_asyncio.fixture
async def control(emu: Emulator, client: mh.AsyncClient) -> AsyncIterator[str]:
    """A project that never finishes, waited for in the background: its GETs show the scheduler running."""
    project_id = emu.create_project("video", status="rendering")
    task = asyncio.create_task(client.v1.video_projects.wait(id=project_id))
    await gets_pass(emu, project_id, 1)
    yield project_id
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# -- sharing and bounds ----------------------------------------------------------------------------------


async def test_polls_in_flight_never_exceed_max_concurrency(emu: Emulator, clock: ManualClock) -> None:
    ids = [emu.create_project("video", duration=1.0) for _ in range(30)]
    held = emu.faults.add(route=GET, hold=True, times=None)
    policy = mh.PollPolicy(initial=0.01, maximum=0.05, max_concurrency=4, max_rate=1000)
    async with mh.AsyncClient(token=emu.token, base_url=emu.url, poll=policy) as client:
        waiting = asyncio.create_task(client.v1.video_projects.wait_many(ids))
        await until(lambda: held.held == 4)
        assert client.poll_stats.in_flight == 4
        clock.advance(1.0)  # every render is done; the held GETs answer "complete"
        held.release()
        projects = await waiting

        assert [p.status for p in projects] == ["complete"] * 30
        assert emu.counters.max_in_flight == 4
        assert client.poll_stats.max_in_flight == 4
        assert emu.counters.count(GET) == 30  # each project was polled once, by one stream


async def test_concurrent_waits_on_one_id_share_one_poll_stream(
    emu: Emulator, client: mh.AsyncClient, control: str
) -> None:
    project_id = emu.create_project("video", status="rendering")
    held = emu.faults.add(route=GET, project_id=project_id, hold=True, times=None)
    waits = [
        asyncio.create_task(client.v1.video_projects.wait(id=project_id)),
        asyncio.create_task(client.v1.video_projects.wait(id=project_id)),
        asyncio.create_task(client.v1.video_projects.wait_many([project_id, project_id])),
    ]
    await until(lambda: held.held == 1)
    await gets_pass(emu, control, 3)  # time for a second stream's first GET to show up, if there were one
    assert held.held == 1
    emu.complete(project_id)
    held.release()
    first, second, [third, fourth] = await asyncio.gather(*waits)

    assert first.status == "complete"
    assert first == second == third == fourth
    assert emu.counters.count(GET, id=project_id) == 1
    assert client.poll_stats.watched_projects == 1  # only the control project


# -- withdrawing interest --------------------------------------------------------------------------------


async def assert_no_more_gets(emu: Emulator, client: mh.AsyncClient, control: str, *ids: str) -> None:
    """After the waits on ``ids`` ended: no GET of them arrives while the control project is polled on."""
    assert client.poll_stats.watched_projects == 1
    await gets_pass(emu, control, 2)  # a GET of theirs that was already in flight has arrived by now
    seen = [emu.counters.count(GET, id=id) for id in ids]
    await gets_pass(emu, control, 5)
    assert [emu.counters.count(GET, id=id) for id in ids] == seen


async def test_a_cancelled_wait_stops_polling_its_project(
    emu: Emulator, client: mh.AsyncClient, control: str
) -> None:
    project_id = emu.create_project("video", duration=60)
    task = asyncio.create_task(client.v1.video_projects.wait(id=project_id))
    await gets_pass(emu, project_id, 3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    await assert_no_more_gets(emu, client, control, project_id)


async def test_a_timeout_raises_with_the_last_state_seen_and_stops_polling(
    emu: Emulator, client: mh.AsyncClient, clock: ManualClock, control: str
) -> None:
    queued = emu.create_project("video", duration=60)
    with pytest.raises(mh.WaitTimeoutError) as caught:
        await client.v1.video_projects.wait(id=queued, timeout=0.05)
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.project is not None
    assert (caught.value.project.id, caught.value.project.status) == (queued, "queued")
    await assert_no_more_gets(emu, client, control, queued)

    clock.advance(30)  # past the queued fifth of its render
    with pytest.raises(mh.WaitTimeoutError, match=f"video project '{queued}' did not finish") as caught:
        await client.v1.video_projects.wait(id=queued, timeout=0.05)
    assert caught.value.project is not None
    assert caught.value.project.status == "rendering"


async def test_breaking_out_of_as_completed_withdraws_at_once(
    emu: Emulator, client: mh.AsyncClient, control: str
) -> None:
    done = emu.create_project("video", duration=0)
    running = [emu.create_project("video", duration=60) for _ in range(3)]

    async for project in client.v1.video_projects.as_completed([*running, done]):
        assert project.id == done
        break
    # Synchronously after the break, before the loop runs anything else:
    assert client.poll_stats.watched_projects == 1
    assert client.poll_stats.active_waits == 1  # the control project's wait

    await assert_no_more_gets(emu, client, control, *running)


# -- errors ----------------------------------------------------------------------------------------------


async def test_transient_errors_are_ridden_out(emu: Emulator) -> None:
    project_id = emu.create_project("video", duration=0)
    emu.faults.add(route=GET, status=503, times=2)
    emu.faults.add(route=GET, status=502, html=True)
    # aiohttp itself resends a GET once when a reused keep-alive connection turns out to be dead, so it
    # takes two resets in a row for one poll to fail with a connection error.
    emu.faults.add(route=GET, reset="before", times=2)
    emu.faults.add(route=GET, status=500, body="Internal Server Error")
    events: list[mh.PollEvent[mh.Project]] = []
    async with mh.AsyncClient(
        token=emu.token, base_url=emu.url, poll=FAST, on_poll_event=events.append
    ) as client:
        project = await client.v1.video_projects.wait(id=project_id)
        stats = client.poll_stats

    assert (project.id, project.status) == (project_id, "complete")
    assert emu.counters.count(GET, id=project_id) == 7  # every fault was hit, then the real answer
    errors = [event.error for event in events if event.what == "retry"]
    assert [type(error) for error in errors] == [
        mh.ServerError,
        mh.ServerError,
        mh.ServerError,
        mh.APIConnectionError,
        mh.ServerError,
    ]
    assert [getattr(error, "status_code", None) for error in errors] == [503, 503, 502, None, 500]
    assert "502 Bad Gateway" in str(errors[2])  # the HTML page, reduced to a readable message
    assert (stats.polls_sent, stats.polls_failed, stats.polls_retried) == (6, 5, 5)


@pytest.mark.slow
async def test_throttling_slows_the_whole_scheduler_down() -> None:
    # The emulator on the real clock allows 100 GETs a second in bursts of 10. 30 renders of 1 s polled from
    # 0.01 s on want thousands a second (loopback answers in well under a millisecond): the scheduler must
    # slow down to what the server allows instead of hammering it with rejected polls.
    policy = mh.PollPolicy(initial=0.01, maximum=0.05, max_concurrency=4, max_rate=1000)
    async with Emulator(seed=6) as emu:
        ids = [emu.create_project("image", duration=1.0) for _ in range(30)]
        emu.faults.rate_limit(rate=100, burst=10)
        async with mh.AsyncClient(token=emu.token, base_url=emu.url, poll=policy) as client:
            projects = await client.v1.image_projects.wait_many(ids)
            stats = client.poll_stats
        answers = [r.status for r in emu.counters.requests("GET /v1/image-projects/{id}")]

    assert [p.status for p in projects] == ["complete"] * 30
    assert stats.rate_limited == answers.count(429) > 0
    assert stats.allowed_rate is not None and stats.allowed_rate < 100
    # Wall-clock windows are not robust on a loaded machine, so the shares are taken over the request log:
    # the whole run, the first throttled burst included, and its second half (well after adapting).
    # A cut needs evidence (at least 3 throttles among 20 answers), so the first burst costs a few 429s of a
    # short run; what matters is that they stop: the second half stays under 5%.
    later = answers[len(answers) // 2 :]
    assert answers.count(429) / len(answers) < 0.2
    assert later.count(429) / len(later) < 0.05


@pytest.mark.parametrize(
    ("status", "error"),
    [(402, mh.PaymentRequiredError), (403, mh.PermissionDeniedError), (422, mh.UnprocessableEntityError)],
)
async def test_a_permanent_error_fails_every_waiter_with_the_typed_exception(
    emu: Emulator, client: mh.AsyncClient, status: int, error: type[mh.APIStatusError]
) -> None:
    project_id = emu.create_project("video", duration=60)
    emu.faults.add(route=GET, project_id=project_id, status=status)

    results = await asyncio.gather(
        client.v1.video_projects.wait(id=project_id),
        client.v1.video_projects.wait_many([project_id]),
        return_exceptions=True,
    )

    assert [type(r) for r in results] == [error, error]
    assert results[0] is results[1]
    assert results[0].status_code == status  # type: ignore[union-attr]
    assert emu.counters.count(GET, id=project_id) == 1
    assert client.poll_stats.watched_projects == 0


async def test_an_unknown_id_fails_the_wait_with_not_found(emu: Emulator, client: mh.AsyncClient) -> None:
    with pytest.raises(mh.NotFoundError) as caught:
        await client.v1.video_projects.wait(id="cnosuchproject0000000000000")
    assert caught.value.status_code == 404


async def test_a_wrong_token_fails_the_wait_with_authentication_error(emu: Emulator) -> None:
    project_id = emu.create_project("video", duration=0)
    async with mh.AsyncClient(token="mhk_live_wrong", base_url=emu.url, poll=FAST) as client:
        with pytest.raises(mh.AuthenticationError) as caught:
            await client.v1.video_projects.wait(id=project_id)
    assert caught.value.status_code == 401
    assert emu.counters.count(GET, id=project_id) == 1


# -- statuses and order ----------------------------------------------------------------------------------


async def test_an_unknown_status_keeps_polling_until_terminal(emu: Emulator, client: mh.AsyncClient) -> None:
    project_id = emu.create_project("video", status="paused_by_operator")
    task = asyncio.create_task(client.v1.video_projects.wait(id=project_id))
    await gets_pass(emu, project_id, 3)
    assert not task.done()
    emu.complete(project_id)

    project = await task

    assert (project.id, project.status) == (project_id, "complete")


async def test_as_completed_yields_in_completion_order(
    emu: Emulator, client: mh.AsyncClient, clock: ManualClock
) -> None:
    durations = {"d": 4.0, "b": 2.0, "a": 1.0, "c": 3.0}  # input order is not completion order
    ids = {name: emu.create_project("video", duration=d) for name, d in durations.items()}
    iterator = aiter(client.v1.video_projects.as_completed(list(ids.values())))
    seen: list[str] = []
    for _ in range(4):
        clock.advance(1.0)  # exactly one more render finishes
        seen.append((await anext(iterator)).id)
    with pytest.raises(StopAsyncIteration):
        await anext(iterator)

    assert seen == [ids["a"], ids["b"], ids["c"], ids["d"]]


async def test_wait_many_keeps_input_order_with_duplicates(emu: Emulator, client: mh.AsyncClient) -> None:
    done = emu.create_project("video", duration=0)
    failed = emu.create_project("video", duration=0, outcome="error")
    canceled = emu.create_project("video", duration=0, outcome="canceled")
    ids = [failed, done, canceled, done, failed]

    projects = await client.v1.video_projects.wait_many(ids)

    assert [p.id for p in projects] == ids
    assert [p.status for p in projects] == ["error", "complete", "canceled", "complete", "error"]
    assert projects[0] is projects[4]
    assert [emu.counters.count(GET, id=i) for i in (done, failed, canceled)] == [1, 1, 1]


# -- check_result ----------------------------------------------------------------------------------------


async def test_check_result_without_waiting_is_one_get(emu: Emulator, client: mh.AsyncClient) -> None:
    project_id = emu.create_project("video", duration=10)

    project = await client.v1.video_projects.check_result(id=project_id)

    assert (project.status, project.downloaded_paths) == ("queued", [])
    assert emu.counters.count(GET, id=project_id) == 1


async def test_check_result_waits_for_completion(
    emu: Emulator, client: mh.AsyncClient, clock: ManualClock
) -> None:
    project_id = emu.create_project("video", duration=10)
    task = asyncio.create_task(client.v1.video_projects.check_result(id=project_id, wait_for_completion=True))
    await gets_pass(emu, project_id, 2)
    clock.advance(10)

    project = await task

    assert (project.status, project.downloaded_paths) == ("complete", [])


async def test_check_result_downloads_outputs_in_order(
    emu: Emulator, client: mh.AsyncClient, tmp_path: Path
) -> None:
    project_id = emu.create_project("image", duration=0, outputs=3)

    project = await client.v1.image_projects.check_result(
        id=project_id, wait_for_completion=True, download_outputs=True, download_directory=tmp_path
    )

    assert project.status == "complete"
    assert len(project.downloaded_paths) == 3
    saved = [Path(path) for path in project.downloaded_paths]
    assert [path.parent for path in saved] == [tmp_path] * 3
    contents = await asyncio.to_thread(lambda: [path.read_bytes() for path in saved])
    assert contents == [emu.output_bytes(project_id, index) for index in range(3)]


async def test_check_result_downloads_nothing_for_a_failed_render(
    emu: Emulator, client: mh.AsyncClient, tmp_path: Path
) -> None:
    project_id = emu.create_project("image", duration=0, outcome="error")

    project = await client.v1.image_projects.check_result(
        id=project_id, wait_for_completion=True, download_outputs=True, download_directory=tmp_path
    )

    assert (project.status, project.downloaded_paths) == ("error", [])
    assert emu.counters.count("/outputs/*") == 0
    assert await asyncio.to_thread(lambda: list(tmp_path.iterdir())) == []


# -- the event loop stays responsive ---------------------------------------------------------------------


async def test_hundreds_of_waits_never_stall_the_event_loop() -> None:
    clock = ManualClock()
    polled: set[str] = set()
    worst = 0.0
    ticking = True

    def seen(event: mh.PollEvent[mh.VideoProject]) -> None:
        if event.what == "polled":
            polled.add(event.id)

    async def ticker() -> None:
        # CPU time of this thread (the loop's) between two ticks: the longest stretch the loop spent running
        # callbacks instead of coming back to the ticker. Unlike wall time it does not grow when other
        # processes take the machine's cores, so the bound is about this code, not about the machine's load.
        nonlocal worst
        while ticking:
            before = time.thread_time()
            await asyncio.sleep(0.005)
            worst = max(worst, time.thread_time() - before)

    # A full collection traverses the whole pytest process (about 80,000 objects, nearly all pytest's and
    # earlier tests'), which takes 60-100 ms on a busy 2-core machine; the garbage earlier tests left behind
    # would trigger one at a random moment. Collect it first, so the bound measures this test's waits.
    gc.collect()
    # Thread mode: the server runs on its own loop and thread, not on this one.
    with Emulator(seed=8, clock=clock) as emu:
        ids = [emu.create_project("video", duration=1.0) for _ in range(500)]
        async with mh.AsyncClient(token=emu.token, base_url=emu.url, poll=FAST, on_poll_event=seen) as client:
            task = asyncio.create_task(ticker())
            waits = asyncio.gather(*(client.v1.video_projects.wait(id=i) for i in ids))
            await until(lambda: len(polled) == 500, timeout=60)  # every wait is live and has polled once
            clock.advance(10)  # now all 500 finish, and only a poll after this can see it
            projects = await waits
            ticking = False
            await task

    assert [p.status for p in projects] == ["complete"] * 500
    assert client.poll_stats.polls_sent >= 1000  # each wait polled before and after the renders finished
    assert worst < 0.05
