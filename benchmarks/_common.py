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
def server_process(module: str, *args: str, cpus: set[int] | None = None) -> Iterator[str]:
    """Run ``python -m <module> --port N ...`` and yield its base URL once it accepts connections.

    ``cpus``: the CPUs the server may run on (Linux), see :func:`cores_apart`.
    """
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    if cpus is not None:
        os.sched_setaffinity(proc.pid, cpus)
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


@contextlib.contextmanager
def cores_apart() -> Iterator[set[int] | None]:
    """Keep this process off one CPU and yield that CPU for the loopback server (None: cannot, nothing done).

    A real API runs on another machine: it never takes the client's core. On loopback the scheduler often
    wakes the server on the client's core (and back), so both run with each other's caches and a contender's
    ratio swings with where the two happened to land. Pinning them apart removes that variable for every
    contender alike. The pin holds for this thread and the threads it starts (a blocking client's loop, an
    exporter's).
    """
    get = getattr(os, "sched_getaffinity", None)
    allowed = sorted(get(0)) if get is not None else []
    if len(allowed) < 2:
        yield None
        return
    server = {allowed[-1]}
    os.sched_setaffinity(0, set(allowed[:-1]))
    try:
        yield server
    finally:
        os.sched_setaffinity(0, set(allowed))


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
