"""``python -m benchmarks [NAME ...] [--quick]``: run benchmarks and print markdown for RESULTS.md."""

from __future__ import annotations

import argparse
import asyncio
import math
import platform
import sys

from benchmarks import bench_batch, bench_download, bench_get, bench_import, bench_ratelimit, bench_scheduler


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("names", nargs="*", default=["get"], help="which benchmarks (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, for a smoke run")
    args = parser.parse_args()
    print(f"Python {platform.python_version()} on {platform.machine()}, command: {' '.join(sys.argv)}\n")
    for name in args.names:
        if name == "get":
            n, rounds = (200, 3) if args.quick else (300, 31)  # short interleaved rounds
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
        elif name == "faults":
            n, speed, rounds = (200, 0.25, 1) if args.quick else (1000, 0.25, 3)
            print(asyncio.run(bench_ratelimit.measure_faults(n, speed, rounds)))
        elif name == "faults-unbudgeted":  # the scenario of issue 12 as measured there: no budget, real time
            n, rounds = (200, 1) if args.quick else (1000, 1)
            print(asyncio.run(bench_ratelimit.measure_faults(n, 1.0, rounds, max_rate=math.inf)))
        elif name == "bucket":
            cases = [(20.0, math.inf), (50.0, math.inf), (5.0, 10.0)]
            seconds = 20.0 if args.quick else 60.0
            print(asyncio.run(bench_ratelimit.measure_bucket(cases, seconds, 300)))
        elif name == "budget":
            cases = [(10.0, 30.0), (100.0, 60.0), (math.inf, 10.0)]
            print(asyncio.run(bench_ratelimit.measure_budget(1000, cases[:1] if args.quick else cases)))
        elif name == "import":
            print(bench_import.measure(3 if args.quick else 9))
        elif name == "download":
            size, rounds = (128 << 20, 1) if args.quick else (1 << 30, 3)
            print(bench_download.measure(size, rounds))
        elif name == "batch":
            n, concurrency, speed, rounds = (2000, 200, 0.2, 1) if args.quick else (10_000, 500, 0.2, 3)
            print(bench_batch.measure_batch(n, concurrency, speed, rounds))
        elif name == "fleet":
            n, concurrency, speed, rounds = (300, 40, 1.0, 1) if args.quick else (3000, 40, 1.0, 2)
            print(bench_batch.measure_fleet(n, concurrency, speed, rounds))
        elif name == "fleet-webhooks":
            n, concurrency, speed, rounds = (60, 10, 0.4, 1) if args.quick else (600, 40, 1.0, 2)
            print(bench_batch.measure_fleet_webhooks(n, concurrency, speed, rounds))
        else:
            parser.error(f"unknown benchmark {name!r}")
        print()


if __name__ == "__main__":
    main()
