"""Running the CLI as a user would: a subprocess with a clean environment (no MAGIC_HOUR_* from the host)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from magic_hour_async.testing import Emulator


def run(
    *args: str,
    emu: Emulator | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAGIC_HOUR_")}
    if emu is not None:
        environment.update(MAGIC_HOUR_API_KEY=emu.token, MAGIC_HOUR_BASE_URL=emu.url)
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "magic_hour_async", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def closed_port() -> int:
    """A loopback port with nothing listening: bound, then released (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
