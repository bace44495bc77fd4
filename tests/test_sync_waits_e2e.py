"""Waiting for renders with the blocking ``Client``, against the emulator in thread mode.

The emulator's ``ManualClock`` decides when renders finish, so each test is exact: a blocking call that
needs a render to finish is only made after the clock has been moved past its end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import magic_hour_async as mh
from magic_hour_async.testing import Emulator, ManualClock

GET = "GET /v1/video-projects/{id}"
FAST = mh.PollPolicy(initial=0.01, maximum=0.05, max_rate=1000)  # the defaults, 100 times faster


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emu(clock: ManualClock) -> Iterator[Emulator]:
    with Emulator(seed=9, clock=clock, output_size=2048) as emulator:
        yield emulator


@pytest.fixture
def client(emu: Emulator) -> Iterator[mh.Client]:
    with mh.Client(token=emu.token, base_url=emu.url, poll=FAST) as client:
        yield client


def test_wait_returns_the_finished_project(emu: Emulator, client: mh.Client, clock: ManualClock) -> None:
    project_id = emu.create_project("video", duration=5)
    clock.advance(5)

    project = client.v1.video_projects.wait(id=project_id)

    assert isinstance(project, mh.VideoProject)
    assert (project.id, project.status) == (project_id, "complete")
    assert client.poll_stats.watched_projects == 0


def test_wait_times_out_with_the_last_state_seen(emu: Emulator, client: mh.Client) -> None:
    project_id = emu.create_project("video", duration=60)

    with pytest.raises(mh.WaitTimeoutError) as caught:
        client.v1.video_projects.wait(id=project_id, timeout=0.05)

    assert caught.value.project is not None
    assert (caught.value.project.id, caught.value.project.status) == (project_id, "queued")
    assert client.poll_stats.watched_projects == 0


def test_wait_many_keeps_input_order_with_duplicates(emu: Emulator, client: mh.Client) -> None:
    done = emu.create_project("video", duration=0)
    failed = emu.create_project("video", duration=0, outcome="error")
    ids = [failed, done, done, failed]

    projects = client.v1.video_projects.wait_many(ids)

    assert [p.id for p in projects] == ids
    assert [p.status for p in projects] == ["error", "complete", "complete", "error"]
    assert [emu.counters.count(GET, id=i) for i in (done, failed)] == [1, 1]


def test_as_completed_yields_in_completion_order(
    emu: Emulator, client: mh.Client, clock: ManualClock
) -> None:
    ids = [emu.create_project("video", duration=d) for d in (3.0, 1.0, 2.0)]
    iterator = iter(client.v1.video_projects.as_completed(ids))
    seen = []
    for _ in ids:
        clock.advance(1.0)  # exactly one more render finishes
        seen.append(next(iterator).id)

    assert seen == [ids[1], ids[2], ids[0]]
    assert list(iterator) == []


def test_breaking_out_of_as_completed_stops_polling_the_rest(emu: Emulator, client: mh.Client) -> None:
    done = emu.create_project("video", duration=0)
    running = [emu.create_project("video", duration=60) for _ in range(2)]

    for project in client.v1.video_projects.as_completed([*running, done]):
        assert project.id == done
        break
    assert (client.poll_stats.watched_projects, client.poll_stats.active_waits) == (0, 0)

    # Keep the scheduler busy with another project: the abandoned ones get no further GET. A poll of theirs
    # sent just before the break may still be on its way, so count them once another project's GET arrived.
    other = emu.create_project("video", duration=60)
    deadline = time.monotonic() + 60  # a guard against a hang; each short wait below polls at least once

    def poll_other_until(gets: int) -> None:
        while emu.counters.count(GET, id=other) < gets and time.monotonic() < deadline:
            with pytest.raises(mh.WaitTimeoutError):
                client.v1.video_projects.wait(id=other, timeout=0.1)

    poll_other_until(1)
    seen = [emu.counters.count(GET, id=i) for i in running]
    poll_other_until(4)
    assert emu.counters.count(GET, id=other) >= 4
    assert [emu.counters.count(GET, id=i) for i in running] == seen


def test_check_result_downloads_outputs_in_order(emu: Emulator, client: mh.Client, tmp_path: Path) -> None:
    project_id = emu.create_project("image", duration=0, outputs=2)

    project = client.v1.image_projects.check_result(
        id=project_id, wait_for_completion=True, download_outputs=True, download_directory=tmp_path
    )

    assert project.status == "complete"
    saved = [Path(path) for path in project.downloaded_paths]
    assert [path.parent for path in saved] == [tmp_path, tmp_path]
    assert [path.read_bytes() for path in saved] == [emu.output_bytes(project_id, i) for i in range(2)]


def test_check_result_without_waiting_returns_the_current_state(emu: Emulator, client: mh.Client) -> None:
    project_id = emu.create_project("video", duration=10)

    project = client.v1.video_projects.check_result(id=project_id, download_outputs=True)

    assert (project.status, project.downloaded_paths) == ("queued", [])
    assert emu.counters.count(GET, id=project_id) == 1


def test_a_permanent_error_is_raised_with_its_type(emu: Emulator, client: mh.Client) -> None:
    project_id = emu.create_project("video", duration=60)
    emu.faults.add(route=GET, project_id=project_id, status=403)

    with pytest.raises(mh.PermissionDeniedError):
        client.v1.video_projects.wait(id=project_id)
    with pytest.raises(mh.NotFoundError):
        client.v1.video_projects.wait(id="cnosuchproject0000000000000")
