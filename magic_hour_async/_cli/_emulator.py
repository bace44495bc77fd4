"""``magic-hour-async emulator`` and ``python -m magic_hour_async.testing``: one option set, one runner.

Both commands build their parser with :func:`add_arguments` and run it with :func:`run`, so they cannot
drift apart. Only argparse is imported here: the emulator (aiohttp's server, the rules table) is imported
when the command runs, not when the CLI parses arguments for another command. A port that is taken, an
address that cannot be bound, or an unknown webhook event type is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._args import port, positive_number

EXIT_USAGE = 2


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a probability between 0 and 1")
    return value


def _events(text: str) -> list[str]:
    return [event.strip() for event in text.split(",") if event.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The emulator's options (shared by both commands)."""
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    add("--port", type=port, default=8000, help="TCP port, 0 for any free one (default: %(default)s)")
    add("--token", default=None, help="API key to accept (default: mhk_test_emulator)")
    add("--seed", type=int, default=0, help="seed for ids, outcomes and bytes (default: %(default)s)")
    add(
        "--speed", type=positive_number, default=1.0, help="factor on render durations (default: %(default)s)"
    )
    add("--error-rate", type=_probability, default=0.0, help="probability that a render fails (default: 0)")
    add("--webhook-url", default=None, help="POST signed webhooks to this URL")
    add("--webhook-secret", default=None, help="secret that signs webhooks (default: whsec_test_emulator)")
    add(
        "--webhook-events", type=_events, default=None, help="comma-separated event types (default: all nine)"
    )


def run(args: argparse.Namespace) -> int:
    """Serve with parsed :func:`add_arguments` options until Ctrl-C; the exit status."""
    from ..testing._serve import serve

    try:
        serve(
            host=args.host,
            port=args.port,
            speed=args.speed,
            seed=args.seed,
            token=args.token,
            error_rate=args.error_rate,
            webhook_url=args.webhook_url,
            webhook_secret=args.webhook_secret,
            webhook_events=args.webhook_events,
        )
    except OSError as error:  # EADDRINUSE, EACCES, an unknown host: one line, not a traceback
        reason = error.strerror or str(error)
        print(f"error: cannot listen on {args.host}:{args.port}: {reason}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as error:  # an unknown webhook event type
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m magic_hour_async.testing``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m magic_hour_async.testing", description="Serve a local emulator of the Magic Hour API."
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
