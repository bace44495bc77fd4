"""How ``get`` prints a project: local time, durations in words and credits for people; ``--json`` as the API
said it, whatever the reader's time zone."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from magic_hour_async import Download, ProjectError, VideoProject
from magic_hour_async._cli._show import humanise, project_lines
from magic_hour_async.testing import Emulator
from tests._cli import run


@pytest.fixture
def paris(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "0 s"),
        (2.5, "2.5 s"),
        (45, "45 s"),
        (60, "1 min"),
        (59 * 60 + 59, "59 min"),
        (3600, "1 h"),
        (3 * 3600 + 5 * 60, "3 h 5 min"),
        (86_400, "1 day"),
        (2 * 86_400 + 4 * 3600 + 59, "2 days 4 h"),
        (-90, "1 min"),
    ],
)
def test_humanise(seconds: float, words: str) -> None:
    assert humanise(seconds) == words


def test_a_project_reads_in_local_time_with_words_and_credits(paris: None) -> None:
    created = datetime(2026, 12, 1, 14, 0, 0, tzinfo=timezone.utc)
    now = datetime(2026, 12, 1, 14, 3, 30, tzinfo=timezone.utc)
    project = VideoProject(
        id="v1",
        status="error",
        name="clip",
        type="FACE_SWAP",
        created_at=created,
        credits_charged=1_200,
        start_seconds=0,
        end_seconds=90,
        width=1280,
        height=720,
        fps=30,
        error=ProjectError(code="no_source_face", message="No face found"),
        downloads=(
            Download(
                url="https://cdn.example/v1/out.mp4?X-Signature=secret",
                expires_at=datetime(2026, 12, 2, 14, 0, 0, tzinfo=timezone.utc),
            ),
        ),
    )
    assert project_lines(project, now) == [
        "VideoProject v1: error",
        "  name:    clip",
        "  type:    FACE_SWAP",
        "  created: 2026-12-01 15:00:00 CET, 3 min ago",
        "  credits: 1,200 credits",
        "  length:  1 min, 1280x720, 30 fps",
        "  error:   no_source_face: No face found",
        "  output:  https://cdn.example/v1/out.mp4 (expires 2026-12-02 15:00:00 CET, in 23 h 56 min)",
    ]


def test_get_human_and_json(magic_hour_emulator: Emulator) -> None:
    pid = magic_hour_emulator.create_project("image", status="complete", credits_charged=5)
    api = magic_hour_emulator.project(pid)
    human = run("get", "image", pid, emu=magic_hour_emulator, env={"TZ": "Asia/Tokyo"})
    as_json = run("get", "image", pid, "--json", emu=magic_hour_emulator, env={"TZ": "Asia/Tokyo"})
    assert (human.returncode, as_json.returncode) == (0, 0), human.stderr + as_json.stderr

    assert human.stdout.splitlines()[0] == f"ImageProject {pid}: complete"
    assert "  credits: 5 credits" in human.stdout.splitlines()
    [created] = [line for line in human.stdout.splitlines() if line.startswith("  created:")]
    assert " JST, " in created and created.endswith((" ago", "just now"))
    assert "?" not in human.stdout  # signed query strings are not shown

    printed = json.loads(as_json.stdout)
    assert printed["credits_charged"] == 5

    # Unchanged by the reader's zone: the same instant the API gave, as an ISO 8601 string in UTC.
    def instant(text: str) -> datetime:  # Python 3.10 reads no "Z"
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    assert instant(printed["created_at"]) == instant(api["created_at"])
    assert printed["created_at"].endswith(("Z", "+00:00"))
