"""The code samples of the README files shipped inside the official package, run with both SDKs.

The samples are extracted from the installed ``magic_hour`` package when the test runs (none is copied into
this repository) and run against one emulator: first with the official SDK, then with this one after the
README's migration step (``magic_hour`` -> ``magic_hour_async`` in the imports). A sample that passes with the
official SDK and fails here fails the test. Placeholders are made real for both SDKs alike: the ids
``cuid-example``/``uuid-example`` become projects and a face detection of the emulator, and the local files
``/path/to/...`` exist in a scratch directory.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from magic_hour_async.testing import Emulator
from tests.compat._official import Sample, official, samples

magic_hour = official()
RUNNER = Path(__file__).with_name("_sample_runner.py")
PACKAGE_DIR = Path(magic_hour.__file__).parent
KIND_BY_README = {"video_projects": "video", "image_projects": "image", "audio_projects": "audio"}


def _placeholder_files(all_samples: list[Sample], root: Path) -> dict[str, str]:
    """Create every ``/path/to/...`` file the samples name; the substitution that points at them."""
    for relative in {m for s in all_samples for m in re.findall(r"/path/to/([\w./-]+)", s.code)}:
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"\x00" * 64)
    return {"/path/to/": f"{root.as_posix()}/"}


def _start_detection(emu: Emulator) -> str:
    request = urllib.request.Request(
        emu.url + "/v1/face-detection",
        data=json.dumps({"assets": {"target_file_path": "api-assets/id/1234.png"}}).encode(),
        headers={"Authorization": f"Bearer {emu.token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        created: dict[str, Any] = json.loads(response.read())
    return str(created["id"])


def _run(
    sdk: str, emu: Emulator, chosen: list[Sample], files: dict[str, str], scratch: Path
) -> dict[str, str]:
    """Run every sample with one SDK in a fresh process; sample name -> ``"ok"`` or the error."""
    work = scratch / sdk
    work.mkdir()
    detection = _start_detection(emu)
    payload = []
    for sample in chosen:
        substitutions = dict(files)
        kind = next((k for folder, k in KIND_BY_README.items() if f"/{folder}/" in sample.readme), None)
        if kind is not None:  # each sample gets its own project: one may delete what the next reads
            substitutions["cuid-example"] = emu.create_project(kind, status="complete")
        substitutions["uuid-example"] = detection
        code = sample.code
        for old, new in substitutions.items():
            code = code.replace(old, new)
        payload.append({"name": sample.name, "code": code})
    samples_file, results_file = work / "samples.json", work / "results.json"
    samples_file.write_text(json.dumps(payload), encoding="utf-8")
    env = {
        **os.environ,
        "API_TOKEN": emu.token,
        "COMPAT_BASE_URL": emu.url,
        "MAGIC_HOUR_BASE_URL": emu.url,
        "MAGIC_HOUR_POLL_INTERVAL": "0.02",
        "PYTHONWARNINGS": "ignore",
    }
    done = subprocess.run(
        [sys.executable, str(RUNNER), str(samples_file), sdk, str(results_file)],
        cwd=work,
        env=env,
        timeout=1800,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"the {sdk} run crashed: {done.stderr[-2000:]}"
    results: dict[str, str] = json.loads(results_file.read_text(encoding="utf-8"))
    return results


def test_samples_that_pass_with_the_official_sdk_pass_here(tmp_path: Path) -> None:
    chosen = list(samples(PACKAGE_DIR))
    assert len(chosen) > 100, "the README samples were not found in the installed package"
    files = _placeholder_files(chosen, tmp_path / "files")
    with Emulator(seed=14, speed=0.001) as emu:
        theirs = _run("official", emu, chosen, files, tmp_path)
        ours = _run("ours", emu, chosen, files, tmp_path)
    regressions = {
        name: ours[name] for name, outcome in theirs.items() if outcome == "ok" and ours.get(name) != "ok"
    }
    summary = (
        f"{len(chosen)} samples: official passes {sum(v == 'ok' for v in theirs.values())}, "
        f"this SDK passes {sum(v == 'ok' for v in ours.values())}, regressions {len(regressions)}"
    )
    print(summary)
    assert regressions == {}, summary
