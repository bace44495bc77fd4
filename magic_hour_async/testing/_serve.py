"""Run the emulator as a standalone server: ``serve()`` blocks until Ctrl-C.

Used by ``python -m magic_hour_async.testing`` and by the SDK's ``magic-hour-async emulator`` command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Callable, Sequence

from ._emulator import Emulator


def announce(emulator: Emulator) -> None:
    """Print where the emulator listens and the settings a client needs."""
    print(f"Magic Hour emulator listening on {emulator.url}", flush=True)
    print(f"  MAGIC_HOUR_BASE_URL={emulator.url}", flush=True)
    print(f"  MAGIC_HOUR_API_KEY={emulator.token}", flush=True)
    if emulator.webhooks.url is not None:
        print(f"  webhooks to {emulator.webhooks.url}", flush=True)
    print("Press Ctrl-C to stop.", flush=True)


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    speed: float = 1.0,
    seed: int = 0,
    token: str | None = None,
    error_rate: float = 0.0,
    on_ready: Callable[[Emulator], None] | None = announce,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
) -> None:
    """Serve an emulator until interrupted (Ctrl-C), then shut it down cleanly.

    Args:
        host, port: where to listen (``port=0`` picks a free port).
        speed, seed, token, error_rate: as for :class:`Emulator`.
        on_ready: called with the running emulator once it listens (default: print URL and token).
        webhook_url, webhook_secret: deliver signed webhooks there (secret default ``whsec_test_emulator``).
    """

    async def run() -> None:
        async with Emulator(
            host=host,
            port=port,
            speed=speed,
            seed=seed,
            token=token,
            error_rate=error_rate,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
        ) as emu:
            if on_ready is not None:
                on_ready(emu)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m magic_hour_async.testing``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m magic_hour_async.testing", description="Serve a local emulator of the Magic Hour API."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=8000, help="TCP port, 0 for any free port (default: %(default)s)"
    )
    parser.add_argument(
        "--speed", type=float, default=1.0, help="factor on render durations (default: %(default)s)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed for ids, outcomes and bytes (default: %(default)s)"
    )
    parser.add_argument("--token", default=None, help="API key to accept (default: mhk_test_emulator)")
    parser.add_argument("--error-rate", type=float, default=0.0, help="probability that a render fails")
    parser.add_argument("--webhook-url", default=None, help="POST signed webhooks to this URL")
    parser.add_argument(
        "--webhook-secret", default=None, help="secret that signs webhooks (default: whsec_test_emulator)"
    )
    args = parser.parse_args(argv)
    serve(
        host=args.host,
        port=args.port,
        speed=args.speed,
        seed=args.seed,
        token=args.token,
        error_rate=args.error_rate,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
    )
    return 0
