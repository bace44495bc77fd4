"""The progress display: frames as a terminal shows them (a fake TTY stream read by a tiny screen model, and
the real CLI on a pseudo-terminal), plain lines otherwise, and nothing invented before the first answer."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from magic_hour_async import APIConnectionError, ImageProject, NotFoundError, ProjectError, TransferProgress
from magic_hour_async._cli._progress import Progress
from magic_hour_async._polling._scheduler import PollEvent
from magic_hour_async.testing import Emulator


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def screen(output: str) -> list[str]:
    """What a terminal shows after ``output``: handles the two escapes the table uses (ESC[F, ESC[2K)."""
    lines: list[str] = [""]
    row = 0
    rest = output
    while rest:
        if rest.startswith("\x1b[F"):  # cursor to the start of the previous line
            row, rest = max(row - 1, 0), rest[3:]
        elif rest.startswith("\x1b[2K"):  # clear the whole line
            lines[row], rest = "", rest[4:]
        elif rest[0] == "\n":
            row, rest = row + 1, rest[1:]
            if row == len(lines):
                lines.append("")
        else:
            lines[row], rest = lines[row] + rest[0], rest[1:]
    return lines[:-1] if lines[-1] == "" else lines


def polled(id: str, status: str, code: str | None = None) -> PollEvent[ImageProject]:
    error = ProjectError(code=code, message="m") if code else None
    project = ImageProject(id=id, status=status, error=error)
    what = "terminal" if status in ("complete", "error", "canceled") else "polled"
    return PollEvent(what=what, kind="image", id=id, project=project)


def live_progress(max_rows: int = 15) -> tuple[Progress, FakeTTY]:
    stream = FakeTTY()
    return Progress(stream, clock=lambda: 0.0, min_interval=0.0, max_rows=max_rows, width=100), stream


def test_every_id_is_counted_and_checking_until_its_first_answer() -> None:
    progress, stream = live_progress()
    for id in ("a", "b", "c", "d"):
        progress.track("image", id)
    assert screen(stream.getvalue()) == [
        "renders: 4 (4 checking)",
        "  image a  checking",
        "  image b  checking",
        "  image c  checking",
        "  image d  checking",
    ]
    progress.on_poll_event(polled("c", "complete"))
    progress.on_poll_event(polled("b", "rendering"))
    progress.on_poll_event(PollEvent(what="retry", kind="image", id="d", error=APIConnectionError("refused")))
    progress.on_poll_event(
        PollEvent(what="error", kind="image", id="a", error=NotFoundError("gone", status_code=404))
    )
    assert screen(stream.getvalue()) == [
        "renders: 4 (1 FAILED (NotFoundError), 1 rendering, 1 unreachable, retrying, 1 complete)",
        "  image a  FAILED (NotFoundError)",
        "  image b  rendering",
        "  image d  unreachable, retrying",
        "  image c  complete",
    ]
    assert isinstance(progress.last_errors["d"], APIConnectionError)


def test_failures_stay_visible_when_the_table_is_cut() -> None:
    progress, stream = live_progress(max_rows=3)
    ids = [f"p{n}" for n in range(6)]
    for id in ids:
        progress.track("image", id)
    for id in ids[:4]:
        progress.on_poll_event(polled(id, "complete"))
    progress.on_poll_event(polled("p5", "error", code="no_source_face"))  # the last id given
    progress.close()
    assert screen(stream.getvalue()) == [
        "renders: 6 (1 FAILED (no_source_face), 1 checking, 4 complete)",
        "  image p5  FAILED (no_source_face)",
        "  image p4  checking",
        "  +4 more (4 complete)",
    ]


def test_a_reported_line_stays_above_the_redrawn_table() -> None:
    progress, stream = live_progress()
    progress.track("image", "a")
    progress.track("image", "b")
    progress.report("error: image project b: NotFoundError: HTTP 404")
    progress.on_poll_event(polled("a", "complete"))
    assert screen(stream.getvalue()) == [
        "error: image project b: NotFoundError: HTTP 404",
        "renders: 2 (1 checking, 1 complete)",
        "  image b  checking",
        "  image a  complete",
    ]


def test_plain_lines_once_per_change() -> None:
    stream = io.StringIO()
    progress = Progress(stream)
    assert not progress.live
    progress.track("image", "a")
    for _ in range(3):
        progress.on_poll_event(polled("a", "rendering"))
        progress.on_poll_event(PollEvent(what="retry", kind="image", id="a", error=APIConnectionError("x")))
    progress.on_poll_event(polled("a", "complete"))
    done = TransferProgress(name="a.png", index=0, bytes_done=10, bytes_total=10)
    progress.on_transfer(done)
    progress.on_transfer(done)
    assert stream.getvalue().splitlines() == [
        "image a: checking",
        "image a: rendering",
        "image a: unreachable, retrying",
        "image a: rendering",
        "image a: unreachable, retrying",
        "image a: rendering",
        "image a: unreachable, retrying",
        "image a: complete",
        "saved a.png (10 bytes)",
    ]


def test_rows_are_cut_to_the_terminal_width() -> None:
    stream = FakeTTY()
    progress = Progress(stream, clock=lambda: 0.0, min_interval=0.0, width=20)
    progress.track("image", "an-id-much-longer-than-the-terminal")
    assert all(len(line) <= 19 for line in screen(stream.getvalue()))


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_the_cli_draws_its_table_on_a_pseudo_terminal(magic_hour_emulator: Emulator, tmp_path: Path) -> None:
    ok = magic_hour_emulator.create_project("image", duration=0.05, outputs=1, output_size=1000)
    bad = magic_hour_emulator.create_project("image", duration=0.05, outcome="error", error_code="nsfw")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAGIC_HOUR_")}
    env.update(MAGIC_HOUR_API_KEY=magic_hour_emulator.token, MAGIC_HOUR_BASE_URL=magic_hour_emulator.url)
    env["COLUMNS"] = "100"
    leader, follower = os.openpty()
    try:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "magic_hour_async",
                "wait",
                "image",
                ok,
                "missing",
                bad,
                "--download",
                str(tmp_path),
            ],
            stdout=subprocess.PIPE,
            stderr=follower,
            env=env,
        )
        os.close(follower)
        follower = -1
        chunks: list[bytes] = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.stdout is not None
        stdout = process.stdout.read().decode()
        process.stdout.close()
        assert process.wait(timeout=60) == 4
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)
    reason = magic_hour_emulator.project(bad)["error"]["message"]
    drawn = b"".join(chunks).decode().replace("\r\n", "\n")  # the terminal's line discipline adds \r
    frames = drawn.split("\x1b[F")
    assert frames[0].startswith("\x1b[2Krenders: 3 (3 checking)")  # the first frame: nothing invented
    assert screen(drawn) == [
        f"error: image project missing: NotFoundError: HTTP 404: Not Found "
        f"[GET {magic_hour_emulator.url}/v1/image-projects/missing]",
        f"error: image project {bad}: render error: nsfw: {reason}",
        "renders: 3 (1 FAILED (NotFoundError), 1 FAILED (nsfw), 1 complete)",
        "  image missing  FAILED (NotFoundError)",
        f"  image {bad}  FAILED (nsfw)",
        f"  image {ok}  complete",
        "files: 1, 0.0 MB",
    ]
    assert f"ImageProject {ok}: complete" in stdout
