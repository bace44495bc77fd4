"""The emulator with complete video projects of given output sizes, for download benchmarks.

Run as ``python -m benchmarks._download_server --port N --size BYTES [--size BYTES ...]``: project
``dl-{BYTES}`` has one output of ``BYTES`` bytes (served in chunks, never held in memory), plus ``dl-warm``
of 1 MiB.
"""

from __future__ import annotations

import argparse
import asyncio

from benchmarks._common import TOKEN
from magic_hour_async.testing import Emulator

WARM = "dl-warm"


def project_id(size: int) -> str:
    return f"dl-{size}"


async def serve(port: int, sizes: list[int]) -> None:
    async with Emulator(port=port, token=TOKEN, seed=1) as emu:
        emu.create_project("video", id=WARM, status="complete", output_size=1 << 20)
        for size in sizes:
            emu.create_project("video", id=project_id(size), status="complete", output_size=size)
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--size", type=int, action="append", default=[])
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.size))


if __name__ == "__main__":
    main()
