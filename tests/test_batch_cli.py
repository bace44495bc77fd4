"""``magic-hour-async batch run`` / ``batch status`` as subprocesses, against the emulator over loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from magic_hour_async.testing import Emulator

pytestmark = pytest.mark.slow

COLORIZE = "POST /v1/photo-colorizer"


def run(*args: str, emu: Emulator | None, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAGIC_HOUR_")}
    if emu is not None:
        env.update(MAGIC_HOUR_API_KEY=emu.token, MAGIC_HOUR_BASE_URL=emu.url)
    root = Path(__file__).resolve().parent.parent
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "magic_hour_async", "batch", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=120, check=False,
    )  # fmt: skip


def write_jobs(path: Path, count: int) -> Path:
    lines = [
        {
            "key": f"photo-{n}",
            "tool": "photo-colorizer",
            "body": {"assets": {"image_file_path": f"https://x.test/{n}.jpg"}},
        }
        for n in range(count)
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n", encoding="utf-8")
    return path


def test_run_downloads_everything_and_a_rerun_sends_nothing(
    magic_hour_emulator: Emulator, tmp_path: Path
) -> None:
    emu = magic_hour_emulator
    jobs = write_jobs(tmp_path / "jobs.jsonl", 5)
    first = run(
        "run",
        str(jobs),
        "--journal",
        "j.db",
        "--download",
        "out",
        "--concurrency",
        "3",
        emu=emu,
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    assert first.stderr.count("complete") == 5 and "5 jobs: complete 5" in first.stdout
    assert "50 charged, 0 reserved" in first.stdout
    saved = sorted((tmp_path / "out").iterdir())
    assert len(saved) == 5 and not [p for p in saved if p.name.endswith(".part")]
    again = run("run", str(jobs), "--journal", "j.db", "--download", "out", emu=emu, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert emu.counters.count(COLORIZE) == 5


def test_max_credits_holds_jobs_back_until_a_rerun_allows_them(
    magic_hour_emulator: Emulator, tmp_path: Path
) -> None:
    emu = magic_hour_emulator
    jobs = write_jobs(tmp_path / "jobs.jsonl", 4)
    capped = run("run", str(jobs), "--journal", "j.db", "--max-credits", "25", emu=emu, cwd=tmp_path)
    assert capped.returncode == 1
    assert "complete 2" in capped.stdout and "over_budget 2" in capped.stdout
    assert "does not fit max_credits=25" in capped.stderr
    raised = run("run", str(jobs), "--journal", "j.db", "--max-credits", "40", emu=emu, cwd=tmp_path)
    assert raised.returncode == 0, raised.stdout + raised.stderr
    assert "complete 4" in raised.stdout and emu.counters.count(COLORIZE) == 4


def test_unknown_jobs_are_listed_and_resent_only_with_the_flag(
    magic_hour_emulator: Emulator, tmp_path: Path
) -> None:
    emu = magic_hour_emulator
    emu.faults.add(route=COLORIZE, reset="after", times=1)
    jobs = write_jobs(tmp_path / "jobs.jsonl", 1)
    lost = run("run", str(jobs), "--journal", "j.db", emu=emu, cwd=tmp_path)
    assert lost.returncode == 1 and "1 job(s) are unknown" in lost.stdout and "photo-0:" in lost.stdout
    status = run("status", "--journal", "j.db", "--json", emu=None, cwd=tmp_path)  # no token needed
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert (
        data["counts"]["unknown"] == 1 and data["unknown"] == ["photo-0"] and data["credits_reserved"] == 10
    )
    still = run("run", str(jobs), "--journal", "j.db", emu=emu, cwd=tmp_path)
    assert still.returncode == 1 and emu.counters.count(COLORIZE) == 1
    resent = run("run", str(jobs), "--journal", "j.db", "--resubmit-unknown", emu=emu, cwd=tmp_path)
    assert resent.returncode == 0, resent.stdout + resent.stderr
    assert emu.counters.count(COLORIZE) == 2
    text = run("status", "--journal", "j.db", emu=None, cwd=tmp_path)
    assert "1 jobs: complete 1" in text.stdout and "10 uncertain" in text.stdout


def test_a_bad_jobs_line_is_a_usage_error_naming_the_line(
    magic_hour_emulator: Emulator, tmp_path: Path
) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"key": "a", "tool": "photo-colorizer", "body": {}}\n{"key": 1}\n', encoding="utf-8")
    result = run("run", str(jobs), "--journal", "j.db", emu=magic_hour_emulator, cwd=tmp_path)
    assert result.returncode == 2
    assert f"{jobs}:2" in result.stderr and "Traceback" not in result.stderr
