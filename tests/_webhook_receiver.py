"""A webhook receiver process for the tests: ``python -m tests._webhook_receiver JOURNAL URL TOKEN KEY``.

It holds its own :class:`Batch` on the journal (not the workers'), serves ``webhooks.create_app`` with
``batch.accept_webhook_event`` as the callback on a free loopback port, prints the webhook URL on its first
line of output, and stops cleanly when its standard input is closed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from aiohttp import web

from magic_hour_async import AsyncClient, webhooks
from magic_hour_async.batch import Batch


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("journal")
    parser.add_argument("url")
    parser.add_argument("token")
    parser.add_argument("secret")  # KEY: the webhook signing secret
    args = parser.parse_args()
    async with (
        AsyncClient(token=args.token, base_url=args.url) as client,
        Batch(client, args.journal) as batch,
    ):
        app = webhooks.create_app(batch.accept_webhook_event, secret=args.secret)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        print(f"http://127.0.0.1:{port}/webhooks/magic-hour", flush=True)
        try:
            await asyncio.to_thread(sys.stdin.read)  # until the test closes our input
        finally:
            await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
