"""Crash tests: workers killed with SIGKILL at random moments never lose a paid render and never pay twice.

The emulator serves from this process (a background thread); workers are separate processes
(``tests/_batch_worker.py``) that add 200 jobs and run them. Each kill lands when the emulator has just
received a random number of further requests, so many kills hit a request in flight (a create POST among
them: that job must become ``unknown``). After the last restart the batch runs to its end, and then:

- every job is ``complete`` or ``error`` (render failures are drawn by the emulator), or ``unknown``;
- the emulator created exactly one render per non-``unknown`` job (projects are named after their job) and at
  most one per ``unknown`` job;
- every complete job's outputs are on disk, byte for byte what the emulator serves, and no ``.part`` is left.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from magic_hour_async.testing import Emulator
from tests._postgres_server import PostgresServer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
JOBS = 200
KILLS = 20
FINAL = {"complete", "error", "unknown"}


def _start(journal: str, emu: Emulator, directory: Path, *, lease: float = 60.0) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "tests._batch_worker", journal, emu.url, emu.token, str(directory), str(JOBS),
        "--lease", str(lease),
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _kill_after_requests(worker: subprocess.Popen[bytes], emu: Emulator, requests: int) -> bool:
    """SIGKILL the worker once the emulator has seen ``requests`` more requests; False if it ended first."""
    target = emu.counters.count() + requests
    deadline = time.monotonic() + 60
    while emu.counters.count() < target and worker.poll() is None:
        if time.monotonic() > deadline:
            raise AssertionError("the worker made no progress for 60 s")
        time.sleep(0.001)
    if worker.poll() is not None:
        return False
    worker.send_signal(signal.SIGKILL)
    worker.communicate(timeout=30)  # reaps it and closes its stderr pipe
    return True


def _finish(worker: subprocess.Popen[bytes]) -> None:
    _, stderr = worker.communicate(timeout=120)
    assert worker.returncode == 0, stderr.decode(errors="replace")[-3000:]


def _check_outcome(rows: list[dict[str, object]], emu: Emulator, directory: Path) -> collections.Counter[str]:
    assert len(rows) == JOBS
    states = collections.Counter(str(row["state"]) for row in rows)
    assert set(states) <= FINAL, states
    created: collections.Counter[str] = collections.Counter()
    for project_id in emu.project_ids:
        created[str(emu.project(project_id)["name"])] += 1
    for row in rows:
        key = str(row["key"])
        if row["state"] == "unknown":
            assert created[key] <= 1, (key, created[key])
            continue
        assert created[key] == 1, (key, row["state"], created[key])
        project = emu.project(str(row["project_id"]))
        assert project["name"] == key
        if row["state"] == "complete":
            paths = [Path(p) for p in row["paths"]]  # type: ignore[attr-defined]
            assert row["downloaded"] and len(paths) == len(project["downloads"])
            for index, path in enumerate(paths):
                assert path.read_bytes() == emu.output_bytes(str(row["project_id"]), index)
    assert not list(directory.rglob("*.part"))
    return states


def _run_with_kills(start: object, workers: int, emu: Emulator, seed: int) -> int:
    """Keep ``workers`` processes running, kill one at a time ``KILLS`` times; the number of kills made."""
    rng = random.Random(seed)
    launch = start  # a callable returning a new worker
    running = [launch() for _ in range(workers)]  # type: ignore[operator]
    kills = 0
    try:
        while kills < KILLS:
            victim = rng.randrange(len(running))
            # At most 25 requests apart: 20 kills land within the first ~500 of the batch's 600+ requests.
            if _kill_after_requests(running[victim], emu, rng.randint(1, 25)):
                kills += 1
                running[victim] = launch()  # type: ignore[operator]
            else:
                break  # the batch is already done: no more moments to kill at
        for worker in running:
            _finish(worker)
    finally:
        for worker in running:
            if worker.poll() is None:
                worker.kill()
            worker.communicate()
    return kills


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(seed=5, speed=0.04, output_size=1024, error_rate=0.1) as emu:
        yield emu


def test_sqlite_worker_killed_twenty_times_loses_nothing_and_pays_once(
    emulator: Emulator, tmp_path: Path
) -> None:
    journal, directory = tmp_path / "batch.db", tmp_path / "out"
    kills = _run_with_kills(lambda: _start(str(journal), emulator, directory), 1, emulator, seed=1)
    assert kills == KILLS
    with contextlib.closing(sqlite3.connect(journal)) as connection:
        connection.row_factory = sqlite3.Row
        rows = [dict(row) for row in connection.execute("SELECT * FROM jobs")]
    for row in rows:
        row["paths"] = json.loads(row["paths"])
    states = _check_outcome(rows, emulator, directory)
    assert states["complete"] > 0 and states["error"] > 0
    unknown = sorted(str(row["key"]) for row in rows if row["state"] == "unknown")
    print(f"unknown after {kills} kills: {unknown}")


def test_postgres_three_workers_killed_twenty_times_lose_nothing_and_pay_once(
    emulator: Emulator, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url, directory = postgres_server.create_database("crash"), tmp_path / "out"
    kills = _run_with_kills(lambda: _start(url, emulator, directory, lease=1.0), 3, emulator, seed=2)
    assert kills == KILLS
    rows = asyncio.run(_postgres_rows(url))
    states = _check_outcome(rows, emulator, directory)
    assert states["complete"] > 0 and states["error"] > 0
    unknown = sorted(str(row["key"]) for row in rows if row["state"] == "unknown")
    print(f"unknown after {kills} kills of 3 workers: {unknown}")


async def _postgres_rows(url: str) -> list[dict[str, object]]:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        records = await connection.fetch("SELECT * FROM magic_hour_jobs")
    finally:
        await connection.close()
    return [{**dict(record), "paths": json.loads(record["paths"])} for record in records]
