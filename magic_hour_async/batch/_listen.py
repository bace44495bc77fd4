"""Journal notifications: a worker hears at once that a job it waits on was settled by another process.

A webhook receiver on any machine settles a job in the PostgreSQL journal (``Batch.accept_webhook_event``);
the worker that submitted the render is usually another process, on another machine, polling the API. To end
its wait promptly, every transaction that moves a job with a project to a final state also runs
``pg_notify(channel, project_id)`` (:meth:`PostgresJournal.finish`). PostgreSQL delivers it when, and only
if, that transaction commits, to every session that ``LISTEN``\\ s on the channel. The channel is named after
the journal (a hash of its database and schema): two batches never hear each other.

:func:`listen_forever` keeps one dedicated connection per worker process (not one of the pool's: a pooled
connection is handed to other statements, and a ``LISTEN`` session must stay put) and reports:

- ``on_settled(project_id)`` for each notification, and on every (re)connection for each project the worker
  waits on that the journal already shows settled: notifications sent while nobody listened are lost, so
  the catch-up query closes that gap;
- ``on_connected(True/False)`` when listening starts and stops, so the worker polls at its normal cadence
  whenever it cannot hear (the connection is down, or PostgreSQL refused it) and slows down only while it can.

A lost connection is noticed from asyncpg's termination callback (the server closed it: a restart,
``pg_terminate_backend``) or from a ``SELECT 1`` every ``check_every`` seconds that fails or times out (a
silent network); the listener then reconnects with exponential backoff and jitter. Nothing it meets ends
the run: every error is logged and retried, and cancellation (the end of the run) closes the connection.

What a notification carries, and why only the project id: the waiter needs the whole project (its download
URLs) to finish. The receiver's webhook payload could be stored in the journal row, but its URLs are signed
and short-lived: a copy in a shared database would be a credential at rest, and stale for a worker that
adopts the row later. So the worker polls the project once, at once (``Scheduler.poll_now``): one GET,
through the client's rate limit, with fresh URLs, and the journal schema stays as it was (old journals need
no migration).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import logging
import random
from collections.abc import Awaitable, Callable, Collection
from typing import Any

__all__ = ["APPLICATION_NAME", "channel_name", "listen_forever"]

logger = logging.getLogger("magic_hour_async.batch")

#: The listener's ``application_name`` in ``pg_stat_activity``.
APPLICATION_NAME = "magic-hour-async batch listener"

_SETTLED_AMONG = (
    "SELECT project_id FROM magic_hour_jobs WHERE project_id = ANY($1::text[]) "
    "AND state IN ('complete', 'error', 'canceled')"
)


def channel_name(database: str, schema: str) -> str:
    """The notification channel of the journal in ``database`` and ``schema`` (a valid identifier)."""
    digest = hashlib.sha256(f"{database}\0{schema}".encode()).hexdigest()[:20]
    return f"magic_hour_jobs_{digest}"


async def listen_forever(
    *,
    url: str,
    channel: str,
    waiting: Callable[[], Collection[str]],
    on_settled: Callable[[str], None],
    on_connected: Callable[[bool], None],
    display_name: str,
    check_every: float = 30.0,
    backoff: tuple[float, float] = (0.5, 30.0),
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> None:
    """Listen on ``channel`` until cancelled, reconnecting with backoff; see the module docstring.

    Args:
        url: the journal's ``postgresql://`` URL.
        channel: from :func:`channel_name`.
        waiting: the project ids the worker waits on now (for the catch-up after each connection).
        on_settled: called with a project id the journal has settled; must not block.
        on_connected: called with True once listening, with False when it stops (also at cancellation).
        display_name: the journal's URL without its password, for log messages.
        check_every: seconds between health checks of an idle connection.
        backoff: the first and the longest pause between reconnection attempts, in seconds.
        sleep: sleeps between attempts (injectable for tests).
    """
    asyncpg: Any = importlib.import_module("asyncpg")
    pause = backoff[0] / 2
    while True:
        heard = False

        def connected(listening: bool) -> None:
            nonlocal heard
            heard = heard or listening
            if listening:
                logger.info("journal listener for %s: listening", display_name)
            on_connected(listening)

        try:
            await _listen_once(
                asyncpg,
                url=url,
                channel=channel,
                waiting=waiting,
                on_settled=on_settled,
                on_connected=connected,
                check_every=check_every,
            )
        except Exception as error:  # whatever happened, the run goes on polling and this tries again
            logger.warning(
                "journal listener for %s stopped (%s: %s); polling at the normal cadence until it is back",
                display_name, type(error).__name__, error,
            )  # fmt: skip
        # After a connection that worked, start again from the shortest pause; else back off further.
        pause = backoff[0] if heard else min(pause * 2, backoff[1])
        # Jitter: workers cut off together (a server restart) do not all come back in the same instant.
        await sleep(pause * (0.5 + random.random() / 2))


async def _listen_once(
    asyncpg: Any,
    *,
    url: str,
    channel: str,
    waiting: Callable[[], Collection[str]],
    on_settled: Callable[[str], None],
    on_connected: Callable[[bool], None],
    check_every: float,
) -> None:
    """One connection's life: connect, listen, catch up, watch its health; raise when it is lost."""
    connection: Any = await asyncpg.connect(url, server_settings={"application_name": APPLICATION_NAME})
    lost = asyncio.Event()
    connected = False

    def notified(_connection: object, _pid: int, _channel: str, payload: str) -> None:
        if payload:
            on_settled(payload)

    try:
        connection.add_termination_listener(lambda _connection: lost.set())  # pyright: ignore[reportUnknownLambdaType]
        await connection.add_listener(channel, notified)
        on_connected(True)
        connected = True
        logger.debug("journal listener on %s", channel)
        for row in await connection.fetch(_SETTLED_AMONG, list(waiting())):
            on_settled(str(row["project_id"]))
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(lost.wait(), check_every)
            if lost.is_set() or connection.is_closed():
                raise ConnectionResetError("the journal closed the listener's connection")
            await asyncio.wait_for(connection.execute("SELECT 1"), check_every)
    finally:
        if connected:
            on_connected(False)
        await _close(connection)


async def _close(connection: Any) -> None:
    """Close politely if the connection still answers; else drop it (a dead socket never answers)."""
    if connection.is_closed():
        return
    try:
        await asyncio.wait_for(connection.close(), 5.0)
    except Exception:  # it did not answer in time: drop the socket
        connection.terminate()
    except BaseException:  # cancelled while closing: drop the socket, and stay cancelled
        connection.terminate()
        raise
