"""``python -m benchmarks [NAME ...] [--quick]``: run benchmarks and print markdown for RESULTS.md."""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys

from benchmarks import bench_batch, bench_download, bench_get, bench_scheduler


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("names", nargs="*", default=["get"], help="which benchmarks (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, for a smoke run")
    args = parser.parse_args()
    print(f"Python {platform.python_version()} on {platform.machine()}, command: {' '.join(sys.argv)}\n")
    for name in args.names:
        if name == "get":
            n, rounds = (200, 3) if args.quick else (2000, 5)
            print(asyncio.run(bench_get.measure(n, rounds)))
        elif name == "waits":
            n, rounds = (50, 1) if args.quick else (200, 5)
            print(asyncio.run(bench_scheduler.measure_waits(n, rounds)))
        elif name == "mixed":
            n, speed, rounds = (20, 0.02, 1) if args.quick else (50, 0.05, 3)
            print(asyncio.run(bench_scheduler.measure_mixed(n, speed, rounds)))
        elif name == "many":
            n, rounds = (2000, 1) if args.quick else (10_000, 3)
            print(asyncio.run(bench_scheduler.measure_many(n, rounds)))
        elif name == "download":
            size, rounds = (128 << 20, 1) if args.quick else (1 << 30, 3)
            print(bench_download.measure(size, rounds))
        elif name == "batch":
            n, concurrency, speed, rounds = (2000, 200, 0.2, 1) if args.quick else (10_000, 500, 0.2, 3)
            print(bench_batch.measure_batch(n, concurrency, speed, rounds))
        elif name == "fleet":
            n, concurrency, speed, rounds = (300, 40, 1.0, 1) if args.quick else (3000, 40, 1.0, 2)
            print(bench_batch.measure_fleet(n, concurrency, speed, rounds))
        else:
            parser.error(f"unknown benchmark {name!r}")
        print()


if __name__ == "__main__":
    main()
