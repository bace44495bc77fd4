"""The CLI, run as a subprocess against the emulator (thread mode) over loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from magic_hour_async.testing import Emulator
from tests._cli import run


def test_get_json_prints_the_project(magic_hour_emulator: Emulator) -> None:
    pid = magic_hour_emulator.create_project("image", status="complete", outputs=2)
    result = run("get", "image", pid, "--json", emu=magic_hour_emulator)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["id"] == pid
    assert data["status"] == "complete"
    assert len(data["downloads"]) == 2
    assert data["downloaded_paths"] == []


def test_get_human_output(magic_hour_emulator: Emulator) -> None:
    pid = magic_hour_emulator.create_project("video", status="rendering")
    result = run("get", "video", pid, emu=magic_hour_emulator)
    assert result.returncode == 0, result.stderr
    assert f"VideoProject {pid}: rendering" in result.stdout


def test_not_found_is_one_line_on_stderr_with_exit_4(magic_hour_emulator: Emulator) -> None:
    result = run("get", "audio", "nope", emu=magic_hour_emulator)
    assert result.returncode == 4
    assert result.stdout == ""
    route = f"{magic_hour_emulator.url}/v1/audio-projects/nope"
    assert result.stderr.strip().splitlines() == [
        f"error: audio project nope: NotFoundError: HTTP 404: Not Found [GET {route}]"
    ]


def test_wrong_token_exits_3_without_printing_the_token(magic_hour_emulator: Emulator) -> None:
    result = run("--token", "mhk_live_wrong_secret", "get", "video", "x", emu=magic_hour_emulator)
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert "mhk_live_wrong_secret" not in result.stderr + result.stdout


def test_missing_token_exits_2_naming_the_variable(tmp_path: Path) -> None:
    result = run("get", "video", "x", cwd=tmp_path)
    assert result.returncode == 2
    assert "MAGIC_HOUR_API_KEY" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_usage_error_exits_2() -> None:
    assert run("get", "hologram", "x").returncode == 2


def test_wait_downloads_and_reports_failures(magic_hour_emulator: Emulator, tmp_path: Path) -> None:
    ok = magic_hour_emulator.create_project("image", duration=0.05, outputs=2)
    bad = magic_hour_emulator.create_project(
        "image", duration=0.05, outcome="error", error_code="no_source_face"
    )
    result = run(
        "wait", "image", ok, bad, "--download", str(tmp_path / "out"), "--json", emu=magic_hour_emulator
    )
    assert result.returncode == 1  # one render failed
    projects = json.loads(result.stdout)
    assert [p["id"] for p in projects] == [ok, bad]
    assert projects[1]["error"]["code"] == "no_source_face"
    saved = [Path(p) for p in projects[0]["downloaded_paths"]]
    assert len(saved) == 2
    assert all(path.parent == tmp_path / "out" and path.stat().st_size > 0 for path in saved)
    assert f"image {ok}" in result.stderr  # progress lines go to stderr when not a terminal


def test_wait_timeout_exits_5(magic_hour_emulator: Emulator) -> None:
    pid = magic_hour_emulator.create_project("video", status="queued")
    result = run("wait", "video", pid, "--timeout", "0.3", emu=magic_hour_emulator)
    assert result.returncode == 5
    assert "WaitTimeoutError" in result.stderr
    assert "last status: queued" in result.stderr


def test_download_and_delete(magic_hour_emulator: Emulator, tmp_path: Path) -> None:
    pid = magic_hour_emulator.create_project("audio", status="complete")
    result = run("download", "audio", pid, "--dir", str(tmp_path), emu=magic_hour_emulator)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    state, _, saved = line.partition(": ")
    assert state == "saved"
    assert Path(saved).read_bytes()[:4] == b"RIFF"
    again = run("download", "audio", pid, "--dir", str(tmp_path), emu=magic_hour_emulator)
    assert (again.returncode, again.stdout) == (0, f"already present: {saved}\n"), again.stderr
    deleted = run("delete", "audio", pid, emu=magic_hour_emulator)
    assert deleted.returncode == 0
    assert magic_hour_emulator.project(pid)["enabled"] is False


def test_download_of_unfinished_project_is_an_error(magic_hour_emulator: Emulator, tmp_path: Path) -> None:
    pid = magic_hour_emulator.create_project("video", status="rendering")
    result = run("download", "video", pid, "--dir", str(tmp_path), emu=magic_hour_emulator)
    assert result.returncode == 1
    assert "not complete" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_upload_prints_api_asset_paths(magic_hour_emulator: Emulator, tmp_path: Path) -> None:
    image = tmp_path / "face.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 1000)
    result = run("upload", "-q", str(image), "https://example.com/a.mp4", emu=magic_hour_emulator)
    assert result.returncode == 0, result.stderr
    remote, url = result.stdout.split()
    assert remote.startswith("api-assets/") and remote.endswith(".png")
    assert url == "https://example.com/a.mp4"
    assert magic_hour_emulator.uploads[remote].size == 1008


@pytest.mark.slow
def test_demo_runs_offline_and_saves_outputs(tmp_path: Path) -> None:
    result = run("demo", "--speed", "0.02", cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "renders:   30 (28 complete, 2 failed)" in result.stdout
    saved = list((tmp_path / "magic-hour-demo").iterdir())
    assert len(saved) == 37
    assert "polls:" in result.stdout


def test_create_prints_the_new_id_and_charges_once(magic_hour_emulator: Emulator) -> None:
    body = json.dumps({"image_count": 1, "style": {"prompt": "a fox"}})
    result = run("create", "ai-image-generator", "--body", body, "--json", emu=magic_hour_emulator)
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert magic_hour_emulator.project(created["id"])["type"] == "AI_IMAGE"
    assert magic_hour_emulator.counters.count(route="POST /v1/ai-image-generator") == 1


def test_create_wait_download_from_a_body_file(magic_hour_emulator: Emulator, tmp_path: Path) -> None:
    (tmp_path / "body.json").write_text(json.dumps({"style": {"prompt": "Hi.", "voice_name": "Elon Musk"}}))
    result = run(
        "create", "ai_voice_generator", "--body", "@body.json", "--wait", "--download", "out", "--json",
        emu=magic_hour_emulator, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    project = json.loads(result.stdout)
    assert project["status"] == "complete"
    (saved,) = project["downloaded_paths"]
    assert Path(saved).parent == Path("out") or Path(saved).parent == tmp_path / "out"
    assert (tmp_path / "out" / Path(saved).name).read_bytes()[:4] == b"RIFF"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "hologram-maker", "--body", "{}"], "unknown tool 'hologram-maker'"),
        (["create", "ai-image-generator", "--body", "{not json"], "--body must be JSON"),
        (["create", "ai-image-generator", "--body", '{"image_count": 1}'], "'style'"),
        (["create", "ai-image-generator", "--body", '{"image_count": 1, "style": {}, "hue": 1}'], "hue"),
    ],
)
def test_create_usage_errors_exit_2_before_any_request(
    magic_hour_emulator: Emulator, args: list[str], message: str
) -> None:
    result = run(*args, emu=magic_hour_emulator)
    assert result.returncode == 2
    assert message in result.stderr
    assert magic_hour_emulator.counters.count(route="POST /v1/*") == 0


def test_a_closed_stdout_ends_quietly(magic_hour_emulator: Emulator) -> None:
    pid = magic_hour_emulator.create_project("image", status="complete")
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head` that has already exited: every write fails with EPIPE
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAGIC_HOUR_")}
        env.update(MAGIC_HOUR_API_KEY=magic_hour_emulator.token, MAGIC_HOUR_BASE_URL=magic_hour_emulator.url)
        result = subprocess.run(
            [sys.executable, "-m", "magic_hour_async", "get", "image", pid],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (141, "")


def test_the_demo_does_not_import_the_command_line_module() -> None:
    # _main runs the demo and the demo creates renders: both use _tools, neither imports the other at load.
    code = "import sys, magic_hour_async._cli._demo; print('magic_hour_async._cli._main' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "False"
