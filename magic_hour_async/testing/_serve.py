"""Run the emulator as a standalone server: ``serve()`` blocks until Ctrl-C.

``python -m magic_hour_async.testing`` and ``magic-hour-async emulator`` are one command, defined once in
``magic_hour_async/_cli/_emulator.py`` (kept there so the CLI parses its arguments without importing the
emulator). :func:`announce` prints only ``export NAME=value`` lines on stdout (``eval``-friendly, easy for a
script to read); the human-readable lines go to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import signal
import sys
from collections.abc import Callable, Sequence

from .._cli._emulator import main
from ._emulator import Emulator

__all__ = ["announce", "main", "serve"]


def announce(emulator: Emulator) -> None:
    """Print the settings a client needs as ``export`` lines (stdout), and where it listens (stderr)."""
    print(f"Magic Hour emulator listening on {emulator.url}", file=sys.stderr, flush=True)
    print(f"export MAGIC_HOUR_BASE_URL={shlex.quote(emulator.url)}", flush=True)
    print(f"export MAGIC_HOUR_API_KEY={shlex.quote(emulator.token)}", flush=True)
    config = emulator.webhooks.config
    if config is not None:
        print(f"export MAGIC_HOUR_WEBHOOK_SECRET={shlex.quote(config.secret)}", flush=True)
        print(f"  webhooks to {config.url}", file=sys.stderr, flush=True)
    print("Press Ctrl-C to stop.", file=sys.stderr, flush=True)


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
    webhook_events: Sequence[str] | None = None,
) -> None:
    """Serve an emulator until interrupted (Ctrl-C or SIGTERM), then shut it down cleanly.

    Args:
        host, port: where to listen (``port=0`` picks a free port).
        speed, seed, token, error_rate: as for :class:`Emulator`.
        on_ready: called with the running emulator once it listens (default: print URL and token).
        webhook_url, webhook_secret, webhook_events: deliver signed webhooks there (secret default
            ``whsec_test_emulator``; events default: all nine).

    Raises:
        OSError: the address cannot be bound (e.g. the port is in use).
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
            webhook_events=webhook_events,
        ) as emu:
            stop = asyncio.Event()
            # SIGTERM (a supervisor, `kill`) stops as cleanly as Ctrl-C: uploads deleted, exit status 0. Set
            # up before announcing, so a client that reacts to the announcement can already stop it. (No
            # handler on Windows or off the main thread.)
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            if on_ready is not None:
                on_ready(emu)
            await stop.wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
