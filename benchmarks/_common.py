"""Shared benchmark plumbing: a loopback server in its own process, medians, markdown tables.

The server runs in a separate process so that its CPU time is not charged to the client under test, and every
contender talks to the same server in the same run. Results are ratios to raw aiohttp: absolute times on a
shared 2-core machine are noise.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

TOKEN = "mhk_bench_token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server_process(module: str, *args: str) -> Iterator[str]:
    """Run ``python -m <module> --port N ...`` and yield its base URL once it accepts connections."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{module} did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def dump(name: str, payload: dict[str, Any]) -> None:
    """Machine-readable results next to the table, for RESULTS.md and later comparisons."""
    print(f"<!-- {name}: {json.dumps(payload, sort_keys=True)} -->")


def proc_status_bytes(field: str) -> int | None:
    """``VmRSS``/``VmHWM`` (or another field) of ``/proc/self/status`` in bytes; None off Linux."""
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return proc_status_bytes("VmHWM") is not None
