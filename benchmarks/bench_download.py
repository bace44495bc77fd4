"""Downloading one large output: ``client.download_outputs`` vs raw aiohttp (vs the official SDK).

The server is the emulator in its own process (``benchmarks._download_server``), streaming the output in
chunks. Each contender runs in a fresh child process (``python -m benchmarks.bench_download --child ...``) so
its memory is its own: the child warms up (imports, session: a 1 MiB download), resets the kernel's peak-RSS
mark (``/proc/self/clear_refs``; ``ru_maxrss`` where that is unavailable), downloads the file ``REPEAT``
times and reports each run's seconds and CPU time, the peak RSS growth over the RSS before the first run,
and the longest event-loop stall seen by a 10 ms ticker. A round runs every
contender once in rotating order; tables show medians over all runs of all rounds, and the throughput ratio
is the ratio of median times. Page-cache writes on a shared VM vary a lot from run to run: use more rounds
(``--rounds``) and set ``BENCH_TMPDIR`` (e.g. to a tmpfs) to see the client's own cost.

Raw aiohttp is the usual hand-written loop: ``iter_chunked(1 MiB)`` written to a file from the event loop.
The "forced to its worker thread" row shows the SDK's fallback after a slow disk write (see ``PartFile``).
The official SDK (importable only in ``nox -s bench``) gets a smaller file: it holds the body in memory.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks._common import TOKEN, dump, median, proc_status_bytes, reset_peak_rss, server_process, table
from benchmarks._download_server import WARM, project_id

MiB = 1 << 20
#: Downloads per child process.
REPEAT = 3
OFFICIAL_SIZE = 200 * MiB
LABELS = {
    "raw": "raw aiohttp (iter_chunked, sync writes)",
    "ours": "magic-hour-async",
    "threaded": "magic-hour-async, writes forced to its worker thread",
    "official": "official magic_hour",
}


# -- child side: one contender, one download -------------------------------------------------------------


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of the process, user + system
    return usage.ru_utime + usage.ru_stime


async def _lag_monitor(worst: list[float]) -> None:
    while True:
        start = time.perf_counter()
        await asyncio.sleep(0.01)
        worst[0] = max(worst[0], time.perf_counter() - start - 0.01)


def _remove_checked(target: Path, size: int) -> None:
    saved = target.stat().st_size
    target.unlink()
    if saved != size:
        raise RuntimeError(f"saved {saved} bytes, expected {size}")


async def _measured(work: Callable[[], Awaitable[Any]], target: Path, size: int) -> dict[str, Any]:
    """Run ``work`` ``REPEAT`` times: each run's seconds and CPU; peak RSS and loop stall over all runs."""
    gc.collect()
    exact = reset_peak_rss()
    before = proc_status_bytes("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    worst = [0.0]
    monitor = asyncio.create_task(_lag_monitor(worst))
    await asyncio.sleep(0)
    seconds, cpu, lag = [], [], 0.0
    for _ in range(REPEAT):
        start, used = time.perf_counter(), _cpu()
        await work()
        seconds.append(time.perf_counter() - start)
        cpu.append(_cpu() - used)
        lag = max(lag, worst[0])
        monitor.cancel()  # the unlink below blocks the loop in every contender: not part of the download
        _remove_checked(target, size)
        worst[0] = 0.0
        monitor = asyncio.create_task(_lag_monitor(worst))
        await asyncio.sleep(0)
    monitor.cancel()
    peak = proc_status_bytes("VmHWM") if exact else None
    peak = peak or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds": seconds, "cpu": cpu, "rss_growth": peak - before, "max_lag": lag, "exact_peak": exact}


async def _child_raw(url: str, size: int, directory: Path) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as session:

        async def output_url(pid: str) -> str:
            async with session.get(f"{url}/v1/video-projects/{pid}", headers=headers) as response:
                return str((await response.json())["downloads"][0]["url"])

        async def fetch(source: str, target: Path) -> None:
            async with session.get(source) as response:
                response.raise_for_status()
                with target.open("wb") as sink:
                    async for chunk in response.content.iter_chunked(MiB):
                        sink.write(chunk)

        await fetch(await output_url(WARM), directory / "warm.mp4")
        source, target = await output_url(project_id(size)), directory / "raw.mp4"
        return await _measured(lambda: fetch(source, target), target, size)


async def _child_ours(url: str, size: int, directory: Path) -> dict[str, Any]:
    from magic_hour_async import AsyncClient

    async with AsyncClient(token=TOKEN, base_url=url) as client:
        warm = await client.v1.video_projects.get(id=WARM)
        await client.download_outputs(warm, directory, overwrite=True)
        project = await client.v1.video_projects.get(id=project_id(size))
        target = directory / f"{project.id}-output.mp4"
        return await _measured(lambda: client.download_outputs(project, directory), target, size)


async def _child_threaded(url: str, size: int, directory: Path) -> dict[str, Any]:
    """Ours with every write in the worker thread, as after a slow disk write: the fallback's cost."""
    import functools

    from magic_hour_async._transfers import _downloads
    from magic_hour_async._transfers import _parts as _transfers

    threaded = functools.partial(_transfers.PartFile, slow=0.0)
    setattr(_downloads, "PartFile", threaded)  # noqa: B010  # a test seam, not part of the API
    return await _child_ours(url, size, directory)


async def _child_official(url: str, size: int, directory: Path) -> dict[str, Any]:
    from magic_hour import AsyncClient  # type: ignore[import-not-found]

    client = AsyncClient(token=TOKEN, base_url=url)
    await client.v1.video_projects.check_result(
        id=WARM, wait_for_completion=True, download_outputs=True, download_directory=str(directory)
    )
    # It downloads only when waiting (the project is complete already, so it does not poll), and names files
    # after the URL's last segment: both outputs are "output.mp4" here.
    target = directory / "output.mp4"
    target.unlink()

    async def work() -> None:
        await client.v1.video_projects.check_result(
            id=project_id(size),
            wait_for_completion=True,
            download_outputs=True,
            download_directory=str(directory),
        )

    return await _measured(work, target, size)


CHILDREN = {"raw": _child_raw, "ours": _child_ours, "threaded": _child_threaded, "official": _child_official}


# -- parent side ------------------------------------------------------------------------------------------


def _run_child(kind: str, url: str, size: int, directory: str) -> dict[str, Any]:
    args = ["--child", kind, "--url", url, "--size", str(size), "--dir", directory]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_download", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{kind} child failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _rounds(
    url: str, kinds: list[str], size: int, rounds: int, directory: str
) -> dict[str, list[dict[str, Any]]]:
    results: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    for r in range(rounds):
        order = kinds[r % len(kinds) :] + kinds[: r % len(kinds)]
        for kind in order:
            results[kind].append(_run_child(kind, url, size, directory))
    return results


def _table(results: dict[str, list[dict[str, Any]]], size: int) -> tuple[str, dict[str, Any]]:
    rows, summary = [], {}
    base = median([seconds for run in results["raw"] for seconds in run["seconds"]])
    for kind, runs in results.items():
        seconds = median([value for run in runs for value in run["seconds"]])
        cpu = median([value for run in runs for value in run["cpu"]]) / (size / 1024 / MiB)
        growth = median([run["rss_growth"] / MiB for run in runs])
        lag = median([run["max_lag"] * 1000 for run in runs])
        speed, ratio = size / MiB / seconds, base / seconds
        rows.append(
            [LABELS[kind], f"{speed:,.0f}", f"{ratio:.2f}x", f"{growth:,.1f}", f"{lag:,.0f}", f"{cpu:.2f}"]
        )
        summary[kind] = {
            "mib_s": round(speed),
            "ratio": round(ratio, 3),
            "rss_mib": round(growth, 1),
            "lag_ms": round(lag),
            "cpu_s_per_gib": round(cpu, 2),
        }
    headers = ["contender", "MiB/s", "vs raw aiohttp", "peak RSS growth (MiB)", "longest loop stall (ms)"]
    headers.append("client CPU s/GiB")
    return table(headers, rows), summary


def measure(size: int, rounds: int) -> str:
    """Run the benchmark and return its markdown."""
    official = importlib.util.find_spec("magic_hour") is not None
    sizes = [size] + ([OFFICIAL_SIZE] if official else [])
    directory = tempfile.mkdtemp(prefix="bench-download-", dir=os.environ.get("BENCH_TMPDIR"))
    try:
        extra = [arg for s in sizes for arg in ("--size", str(s))]
        with server_process("benchmarks._download_server", *extra) as url:
            text, summary = _table(_rounds(url, ["raw", "ours", "threaded"], size, rounds, directory), size)
            runs = f"{rounds} rounds x {REPEAT} downloads per contender, medians"
            out = f"One {size / MiB:,.0f} MiB output from the emulator, {runs}.\n\n{text}"
            payload = {f"{size // MiB}MiB": summary}
            if official:
                results = _rounds(url, ["raw", "ours", "official"], OFFICIAL_SIZE, rounds, directory)
                text, summary = _table(results, OFFICIAL_SIZE)
                out += f"\n\nWith the official SDK, one {OFFICIAL_SIZE // MiB} MiB output:\n\n{text}"
                payload[f"{OFFICIAL_SIZE // MiB}MiB"] = summary
            else:
                out += "\n\n(official SDK not importable here: run `nox -s bench -- download` for its row)"
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    dump("download", payload)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_download")
    parser.add_argument("--child", choices=sorted(CHILDREN))
    parser.add_argument("--url")
    parser.add_argument("--size", type=int, default=1024 * MiB)
    parser.add_argument("--dir")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.child:
        result = asyncio.run(CHILDREN[args.child](args.url, args.size, Path(args.dir)))
        print(json.dumps(result))
    else:
        print(measure(args.size, args.rounds))


if __name__ == "__main__":
    main()
