"""What the CLI checks before any request (in process, through ``main``): a mistake exits 2 naming the flag
or file, and the emulator sees no request, so nothing is paid for. Also: global options after the command,
and messages in flag names rather than Python keywords."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from magic_hour_async._cli._main import main
from magic_hour_async.testing import Emulator


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["wait", "image", "x", "--timeout", "0"],
            "argument --timeout: must be a finite number greater than 0",
        ),
        (
            ["wait", "image", "x", "--timeout", "-1"],
            "argument --timeout: must be a finite number greater than 0",
        ),
        (
            ["wait", "image", "x", "--timeout", "nan"],
            "argument --timeout: must be a finite number greater than 0",
        ),
        (
            ["wait", "image", "x", "--timeout", "inf"],
            "argument --timeout: must be a finite number greater than 0",
        ),
        (["wait", "image", "x", "--timeout", "soon"], "argument --timeout: expected a number, got 'soon'"),
        (["demo", "--speed", "-1"], "argument --speed: must be a finite number greater than 0"),
        (["demo", "--speed", "0"], "argument --speed: must be a finite number greater than 0"),
        (["--base-url", "http://127.0.0.1:99999", "get", "image", "x"], "Port out of range"),
        (["get", "image", "x", "--base-url", "ftp://example.com"], "must be an http:// or https:// URL"),
        (["get", "image", "x", "--base-url", "http://"], "must be an http:// or https:// URL with a host"),
        (["get", "image", "x", "--base-url", "http://h/?token=1"], "must not have a query"),
        (
            ["webhooks", "listen", "--port", "70000"],
            "argument --port: must be between 0 and 65535, got 70000",
        ),
        (["get", "hologram", "x"], "argument kind: invalid choice"),
    ],
)
def test_bad_arguments_exit_2_naming_the_flag_before_any_request(
    magic_hour_env: Emulator, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run_main(capsys, *args)
    assert (code, out) == (2, "")
    assert message in err
    assert magic_hour_env.counters.count() == 0


def test_a_bad_base_url_in_the_environment_is_a_usage_error_naming_the_variable(
    magic_hour_env: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAGIC_HOUR_BASE_URL", "http://127.0.0.1:99999")
    code, _, err = run_main(capsys, "get", "image", "x")
    assert code == 2
    assert err.startswith("error: MAGIC_HOUR_BASE_URL 'http://127.0.0.1:99999' is not a valid URL")


@pytest.mark.parametrize("where", ["before", "after"])
def test_global_options_work_before_or_after_the_command(
    magic_hour_emulator: Emulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    monkeypatch.delenv("MAGIC_HOUR_API_KEY", raising=False)
    monkeypatch.delenv("MAGIC_HOUR_BASE_URL", raising=False)
    pid = magic_hour_emulator.create_project("image", status="complete")
    options = ["--token", magic_hour_emulator.token, "--base-url", magic_hour_emulator.url, "--json"]
    command = ["get", "image", pid]
    code, out, err = run_main(capsys, *(options + command if where == "before" else command + options))
    assert code == 0, err
    assert json.loads(out)["id"] == pid


def test_a_token_given_after_the_command_is_the_one_used(
    magic_hour_env: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main(capsys, "get", "image", "x", "--token", "mhk_live_wrong")
    assert code == 3
    assert "AuthenticationError" in err and "mhk_live_wrong" not in err


def test_messages_name_flags_not_python_keywords(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MAGIC_HOUR_API_KEY", raising=False)
    monkeypatch.delenv("MAGIC_HOUR_WEBHOOK_SECRET", raising=False)
    code, _, err = run_main(capsys, "get", "image", "x")
    assert code == 2
    assert "pass --token or set the MAGIC_HOUR_API_KEY" in err and "token=" not in err
    code, _, err = run_main(capsys, "webhooks", "listen", "--port", "0")
    assert code == 2
    assert err == "error: no webhook secret: pass --secret or set MAGIC_HOUR_WEBHOOK_SECRET\n"


def test_create_download_requires_wait(magic_hour_env: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    body = json.dumps({"image_count": 1, "style": {"prompt": "a fox"}})
    code, _, err = run_main(capsys, "create", "ai-image-generator", "--body", body, "--download", "out")
    assert code == 2
    assert "--download needs --wait" in err
    assert magic_hour_env.counters.count(route="POST /v1/*") == 0


@pytest.mark.parametrize(
    "target",
    [
        "a-file/sub",
        "a-file",
        # procfs refuses new entries even to root, whom permission bits would not stop.
        pytest.param(
            "/proc/magic-hour-cli-test", marks=pytest.mark.skipif(sys.platform != "linux", reason="procfs")
        ),
    ],
)
def test_an_unwritable_download_directory_fails_before_the_paid_request(
    magic_hour_env: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path, target: str
) -> None:
    (tmp_path / "a-file").write_text("in the way")
    directory = target if target.startswith("/") else str(tmp_path / target)
    body = json.dumps({"image_count": 1, "style": {"prompt": "a fox"}})
    args = ["create", "ai-image-generator", "--body", body, "--wait", "--download", directory]
    code, _, err = run_main(capsys, *args)
    assert code == 2
    assert err.startswith(f"error: --download {directory}: ")
    assert "not a directory" in err or "cannot write there" in err
    assert magic_hour_env.counters.count() == 0  # not even a GET: nothing was created, nothing paid


def test_download_dir_that_is_a_file_is_a_usage_error(
    magic_hour_env: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "f").write_text("")
    code, _, err = run_main(capsys, "download", "image", "x", "--dir", str(tmp_path / "f"))
    assert (code, err) == (2, f"error: --dir {tmp_path / 'f'}: not a directory\n")


def test_create_without_wait_uploads_local_files_before_the_post(
    magic_hour_env: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    image = tmp_path / "me.jpg"
    image.write_bytes(b"\xff\xd8\xff" + b"j" * 500)
    body = json.dumps({"assets": {"image_file_path": str(image)}})
    code, out, err = run_main(capsys, "create", "ai-headshot-generator", "--body", body, "--json")
    assert code == 0, err
    created = json.loads(out)
    # In this order: the upload URL, the file's bytes, then the one paid POST (a local path sent as is
    # would be accepted, paid for, and fail the render).
    sent = [(r.method, r.route) for r in magic_hour_env.counters.requests()]
    assert [method for method, _ in sent] == ["POST", "PUT", "POST"], sent
    assert sent[0][1] == "POST /v1/files/upload-urls"
    assert sent[2][1] == "POST /v1/ai-headshot-generator"
    assert [upload.size for upload in magic_hour_env.uploads.values()] == [503]
    assert magic_hour_env.project(created["id"])["id"] == created["id"]


@pytest.mark.parametrize(
    ("name", "reason"), [("missing.png", "no such file"), ("a-dir", "is a directory, not a file")]
)
def test_upload_of_a_missing_file_or_a_directory_is_a_usage_error(
    magic_hour_env: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, reason: str
) -> None:
    (tmp_path / "a-dir").mkdir()
    code, _, err = run_main(capsys, "upload", str(tmp_path / name))
    assert (code, err) == (2, f"error: upload {tmp_path / name}: {reason}\n")
    assert magic_hour_env.counters.count() == 0
