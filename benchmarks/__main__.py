"""``python -m benchmarks [NAME ...] [--quick]``: run benchmarks and print markdown for RESULTS.md."""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys

from benchmarks import bench_get


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
        else:
            parser.error(f"unknown benchmark {name!r}")
        print()


if __name__ == "__main__":
    main()
