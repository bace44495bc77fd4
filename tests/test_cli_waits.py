"""``wait`` and ``download`` as a user runs them (a subprocess, the emulator over loopback): several ids with
one bad, an unreachable host, the worst outcome as exit status, deleted and unfinished projects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from magic_hour_async.testing import Emulator
from tests._cli import closed_port, run


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


def test_one_bad_id_gets_its_own_line_and_the_others_finish(magic_hour_emulator: Emulator) -> None:
    first = magic_hour_emulator.create_project("image", duration=0.05)
    second = magic_hour_emulator.create_project("image", duration=0.05)
    result = run("wait", "image", first, "no-such-id", second, "--json", emu=magic_hour_emulator)

    assert result.returncode == 4  # not found is the worst outcome here
    assert [p["id"] for p in json.loads(result.stdout)] == [first, second]
    route = f"{magic_hour_emulator.url}/v1/image-projects/no-such-id"
    assert error_lines(result.stderr) == [
        f"error: image project no-such-id: NotFoundError: HTTP 404: Not Found [GET {route}]"
    ]
    progress = result.stderr.splitlines()
    # Nothing is invented before the first answer: every id starts as "checking".
    assert progress[:3] == [
        f"image {first}: checking",
        "image no-such-id: checking",
        f"image {second}: checking",
    ]
    assert f"image {first}: complete" in progress and f"image {second}: complete" in progress
    assert "image no-such-id: FAILED (NotFoundError)" in progress


def test_a_failed_render_outranks_a_timeout_and_both_are_reported(magic_hour_emulator: Emulator) -> None:
    failing = magic_hour_emulator.create_project(
        "video", duration=0.05, outcome="error", error_code="no_source_face", error_message="No face found"
    )
    stuck = magic_hour_emulator.create_project("video", status="queued")
    result = run("wait", "video", failing, stuck, "--timeout", "1", emu=magic_hour_emulator)

    assert result.returncode == 1  # a definite failure outranks a wait that ran out of time (5)
    lines = error_lines(result.stderr)
    assert f"error: video project {failing}: render error: no_source_face: No face found" in lines
    [timeout] = [line for line in lines if stuck in line]
    assert timeout.startswith(f"error: video project {stuck}: WaitTimeoutError: ")
    assert timeout.endswith("(last status: queued)")
    assert f"VideoProject {failing}: error" in result.stdout  # the finished one is still printed


@pytest.mark.slow
def test_an_unreachable_host_is_shown_as_such_and_named_in_the_final_error() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = run(
        "--base-url", url, "wait", "image", "a", "b", "--timeout", "4", env={"MAGIC_HOUR_API_KEY": "k"}
    )

    assert result.returncode == 5
    lines = result.stderr.splitlines()
    assert lines[:2] == ["image a: checking", "image b: checking"]
    # Shown while the wait goes on, long before its deadline ends it: a connection failure is not "queued".
    unreachable = lines.index("image a: unreachable, retrying")
    assert unreachable < lines.index("image a: FAILED (WaitTimeoutError)")
    assert "image b: unreachable, retrying" in lines
    for id in ("a", "b"):
        [line] = [
            line for line in error_lines(result.stderr) if line.startswith(f"error: image project {id}:")
        ]
        assert "WaitTimeoutError" in line
        assert "last poll error: APIConnectionError" in line
        assert f"127.0.0.1:{url.rpartition(':')[2]}" in line
    assert "Traceback" not in result.stderr


def test_download_of_a_deleted_project_explains_and_fails(
    magic_hour_emulator: Emulator, tmp_path: Path
) -> None:
    pid = magic_hour_emulator.create_project("image", status="complete", outputs=2)
    assert run("delete", "image", pid, emu=magic_hour_emulator).returncode == 0
    result = run("download", "image", pid, "--dir", str(tmp_path), emu=magic_hour_emulator)

    assert result.returncode == 1
    assert result.stdout == ""
    assert error_lines(result.stderr) == [
        f"error: image project {pid}: nothing to download: the project was deleted, and its outputs with it"
    ]
    assert list(tmp_path.iterdir()) == []


def test_download_of_a_failed_render_says_why(magic_hour_emulator: Emulator, tmp_path: Path) -> None:
    pid = magic_hour_emulator.create_project("video", status="error", error_code="no_source_face")
    result = run("download", "video", pid, "--dir", str(tmp_path), emu=magic_hour_emulator)
    assert result.returncode == 1
    [line] = error_lines(result.stderr)
    assert line.startswith(
        f"error: video project {pid}: nothing to download: the render failed (no_source_face: "
    )


def test_wait_download_reports_saved_then_already_present(
    magic_hour_emulator: Emulator, tmp_path: Path
) -> None:
    pid = magic_hour_emulator.create_project("image", status="complete", outputs=1, output_size=1000)
    first = run("wait", "image", pid, "--download", str(tmp_path), emu=magic_hour_emulator)
    again = run("wait", "image", pid, "--download", str(tmp_path), emu=magic_hour_emulator)

    assert (first.returncode, again.returncode) == (0, 0)
    [name] = [path.name for path in tmp_path.iterdir()]
    # Once per file: the last chunk and the rename do not both print.
    assert [line for line in first.stderr.splitlines() if name in line] == [f"saved {name} (1,000 bytes)"]
    assert [line for line in again.stderr.splitlines() if name in line] == [
        f"already present {name} (1,000 bytes)"
    ]
