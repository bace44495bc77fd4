"""A batch worker process for the crash tests: ``python -m tests._batch_worker JOURNAL URL TOKEN DIR N``.

Adds jobs ``job-0`` .. ``job-{N-1}`` (idempotent: every restart adds them again), then runs the batch to the
end. The tests kill it with SIGKILL at random moments and start it again.
"""

from __future__ import annotations

import argparse
import asyncio

from magic_hour_async import AsyncClient, PollPolicy
from magic_hour_async.batch import Batch


def body(index: int) -> dict[str, object]:
    """Job ``index``'s create body; its ``name`` is the key, so the emulator's projects name their job."""
    return {"name": f"job-{index}", "image_count": 1 + index % 2, "style": {"prompt": f"tile {index}"}}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("journal")
    parser.add_argument("url")
    parser.add_argument("token")
    parser.add_argument("directory")
    parser.add_argument("jobs", type=int)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--lease", type=float, default=60.0)
    args = parser.parse_args()
    poll = PollPolicy(initial=0.02, maximum=0.1)
    async with (
        AsyncClient(token=args.token, base_url=args.url, poll=poll) as client,
        Batch(client, args.journal, default_estimate=10, lease=args.lease) as batch,
    ):
        for index in range(args.jobs):
            await batch.add(f"job-{index}", "ai-image-generator", body(index))
        async for _ in batch.run(concurrency=args.concurrency, download_directory=args.directory):
            pass


if __name__ == "__main__":
    asyncio.run(main())
