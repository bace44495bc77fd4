"""Every Python sample in README.md runs, as a user would run it, against the emulator.

```python blocks run as scripts with MAGIC_HOUR_API_KEY / MAGIC_HOUR_BASE_URL pointing at the emulator;
```python pytest blocks run under pytest (they use the emulator fixtures the package registers).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from magic_hour_async.testing import Emulator

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python( pytest)?\n(.*?)^```", re.S | re.M)
SAMPLES = [(bool(m.group(1)), m.group(2)) for m in BLOCK.finditer(README.read_text(encoding="utf-8"))]


def _env(emu: Emulator | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAGIC_HOUR_")}
    if emu is not None:
        env.update(MAGIC_HOUR_API_KEY=emu.token, MAGIC_HOUR_BASE_URL=emu.url)
    return env


def test_the_readme_has_samples_of_both_kinds() -> None:
    assert sum(1 for is_test, _ in SAMPLES if not is_test) >= 7
    assert any(is_test for is_test, _ in SAMPLES)


@pytest.mark.parametrize(
    "code", [code for is_test, code in SAMPLES if not is_test], ids=lambda code: code.splitlines()[-1][:40]
)
@pytest.mark.magic_hour_emulator(speed=0.002)
def test_readme_script_runs(code: str, magic_hour_emulator: Emulator, tmp_path: Path) -> None:
    script = tmp_path / "sample.py"
    script.write_text(code, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=_env(magic_hour_emulator),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), "every sample prints what it did"
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("code", [code for is_test, code in SAMPLES if is_test])
def test_readme_pytest_sample_passes(code: str, tmp_path: Path) -> None:
    (tmp_path / "test_sample.py").write_text(code, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_sample.py"],
        cwd=tmp_path,
        env=_env(None),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
