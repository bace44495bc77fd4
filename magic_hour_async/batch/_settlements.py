"""How a run learns that a render it waits on has finished: polls, journal notifications, webhooks.

By default a worker polls the API through its client's scheduler (one poll stream per project). Two things
can end a wait sooner:

- the journal: a PostgreSQL journal announces every settled job (a webhook receiver on any machine settling
  it with :meth:`Batch.accept_webhook_event`, or another worker), see :mod:`._listen`. Each run listens while
  it runs; an announcement for a project it waits on makes the scheduler poll that project at once
  (:meth:`Scheduler.poll_now`), which ends the wait with the fresh project;
- an in-process hand-over: :meth:`Batch.accept_webhook_event` also gives the event to the batch's client,
  whose waits end with the webhook's project at once (the SQLite case: one process, receiver included).

With ``run(webhooks=True)`` the caller says a receiver settles the batch's jobs, so the normal cadence is
wasted: the client's scheduler polls :data:`WEBHOOK_SAFETY_FACTOR` times slower (the webhook receiver's own
default, ``webhooks.create_app(safety_factor=10)``), and a render the worker has just created is not polled
at once (the answer could only be ``queued``). Polling never stops: a canceled render sends no webhook and a
delivery can be lost, and the slow safety polls still end such waits. With the default :class:`PollPolicy`
a render's first safety poll comes 10 s after its create (at once for a render adopted from another
worker), the next ones about every 1.3 times its age, at most every 300 s. With a PostgreSQL journal the
slow cadence holds only while the listener hears the journal: while its connection is down, the run polls
at the normal cadence. A job settled by the notification costs one GET (for fresh download URLs); one
settled by an in-process hand-over costs none.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Generator
from typing import TYPE_CHECKING

from ._journal import Journal

if TYPE_CHECKING:
    from .._client import AsyncClient

__all__ = ["WEBHOOK_SAFETY_FACTOR", "Settlements"]

#: How many times slower a run with ``webhooks=True`` polls while it can hear the journal (or, with
#: SQLite, for the whole run): the webhook receiver's default ``safety_factor``.
WEBHOOK_SAFETY_FACTOR = 10.0


class Settlements:
    """One run's view of its waits: which projects it waits on, and how fast its client polls them."""

    def __init__(self, client: AsyncClient, journal: Journal, *, webhooks: bool) -> None:
        self._client = client
        self._journal = journal
        self._webhooks = webhooks
        self._waiting: dict[str, str] = {}  # project id -> kind, for the waits in progress
        self._previous: float | None = None  # the factor before this run slowed polling down

    @property
    def webhooks(self) -> bool:
        """Whether the run was told a webhook receiver settles its jobs."""
        return self._webhooks

    @property
    def waiting(self) -> Collection[str]:
        """The project ids this run waits on now."""
        return self._waiting.keys()

    @contextlib.contextmanager
    def wait_on(self, kind: str, project_id: str) -> Generator[None]:
        """Mark a wait in progress, so that news of its project ends it."""
        self._waiting[project_id] = kind
        try:
            yield
        finally:
            self._waiting.pop(project_id, None)

    def settled(self, project_id: str) -> None:
        """The journal says ``project_id`` is settled: poll it now if this run waits on it."""
        kind = self._waiting.get(project_id)
        if kind is not None:
            self._client._scheduler.poll_now(kind, project_id)

    def hearing(self, listening: bool) -> None:
        """The journal listener started (True) or stopped (False) hearing the journal."""
        if self._webhooks:
            self._slow_down() if listening else self._restore()

    def start(self) -> None:
        """The run starts: with webhooks and no journal notifications to wait for, poll slowly throughout."""
        if self._webhooks and not self._journal.notifies:
            self._slow_down()

    def stop(self) -> None:
        """The run ends: the client polls at the cadence it had before."""
        self._restore()

    def _slow_down(self) -> None:
        scheduler = self._client._scheduler
        if self._previous is None and scheduler.safety_factor < WEBHOOK_SAFETY_FACTOR:
            self._previous = scheduler.safety_factor
            scheduler.safety_factor = WEBHOOK_SAFETY_FACTOR

    def _restore(self) -> None:
        scheduler, previous, self._previous = self._client._scheduler, self._previous, None
        # Someone else (a receiver's lifespan, the user) may have changed it since: then it is theirs.
        if previous is not None and scheduler.safety_factor == WEBHOOK_SAFETY_FACTOR:
            scheduler.safety_factor = previous
