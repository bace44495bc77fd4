"""Whole-process cost of ``import magic_hour_async`` plus ``AsyncClient(token=...)`` vs ``import aiohttp``.

Each run is a fresh interpreter (``python -c``), so interpreter start-up, every import and the construction
are all inside. Two clocks per run: wall time from the parent (``time.perf_counter`` around
``subprocess.run``) and the child's CPU time (user + system, from ``resource.getrusage(RUSAGE_CHILDREN)``),
which a machine shared with other work disturbs far less. The variants run interleaved (aiohttp, this SDK,
the official SDK when installed, aiohttp, ...) so load slows them alike; the table gives medians and the
ratio to ``import aiohttp`` alone, the floor: the SDK cannot import faster than the HTTP library it uses.

Bytecode: ``pip install`` compiles every installed module (aiohttp's, and this package's from a wheel), so a
user's import reads ``.pyc`` files. A checkout imported in place has none until Python writes them, which it
never does under ``PYTHONDONTWRITEBYTECODE`` (set in some CI and sandbox shells): then every import of this
package would compile its sources again, about 20 ms that no installed copy pays. So the package is
compiled first, as pip would, and the children read its bytecode like aiohttp's.
"""

from __future__ import annotations

import compileall
import importlib.util
import pathlib
import resource
import statistics
import subprocess
import sys
import time

VARIANTS: dict[str, str] = {
    "import aiohttp": "import aiohttp",
    "import magic_hour_async + AsyncClient()": (
        "import magic_hour_async as m; m.AsyncClient(token='mhk_bench')"
    ),
    "official: import magic_hour + AsyncClient()": "import magic_hour as m; m.AsyncClient(token='mhk_bench')",
}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _once(code: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one fresh interpreter running ``code``."""
    cpu, started = _cpu(), time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started, _cpu() - cpu


def measure(runs: int = 9) -> str:
    """Markdown table: median seconds per variant over ``runs`` interleaved whole-process runs."""
    variants = dict(VARIANTS)
    if importlib.util.find_spec("magic_hour") is None:
        del variants["official: import magic_hour + AsyncClient()"]
    import magic_hour_async

    package = pathlib.Path(magic_hour_async.__file__).parent
    compileall.compile_dir(str(package), quiet=1)  # what pip does on install (see the module docstring)
    for code in variants.values():
        _once(code)  # warm the OS file cache; not counted
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, code in variants.items():
            elapsed, used = _once(code)
            wall[name].append(elapsed)
            cpu[name].append(used)
    wall_floor = statistics.median(wall["import aiohttp"])
    cpu_floor = statistics.median(cpu["import aiohttp"])
    rows = []
    for name in variants:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        wall_cells = f"{w * 1000:.0f} ms | {w / wall_floor:.2f}x"
        rows.append(f"| {name} | {wall_cells} | {c * 1000:.0f} ms | {c / cpu_floor:.2f}x |")
    head = [
        f"median of {runs} whole-process runs, interleaved",
        "",
        "| variant | wall | vs aiohttp | CPU (user+sys) | vs aiohttp |",
        "|---|---:|---:|---:|---:|",
    ]
    return "\n".join(head + rows)
