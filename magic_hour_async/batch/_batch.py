"""The public :class:`Batch`: add jobs, run them, read their state."""

from __future__ import annotations

import json
import os
import types
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import ConfigurationError
from ._jobs import STATES, BatchStatus, Job, JobState
from ._journal import Journal, canonical_body, open_journal
from ._pricing import worst_case_credits
from ._runner import Runner

if TYPE_CHECKING:
    from .._client import AsyncClient
    from ..webhooks._verify import WebhookEvent

__all__ = ["Batch"]

_PAGE = 500
_SETTLED: dict[str, JobState] = {"complete": "complete", "error": "error", "canceled": "canceled"}


def _check_count(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{name} must be an integer >= {minimum}, not {value!r}")


class Batch:
    """A durable batch of renders: a journal that never loses a paid render and never pays twice.

    Every job is a row in the journal, written before its create request is sent and bound to the project
    id after; a crash, a deploy or Ctrl-C loses nothing, and running the batch again resumes where it
    stopped: submitted renders are waited for (not created again), complete ones downloaded, finished ones
    left alone. A job whose create request may or may not have reached the API becomes ``unknown`` and is
    only sent again when you ask (``run(resubmit_unknown=True)``).

    Example:
        ```python
        async with AsyncClient() as client, Batch(client, "renders.db") as batch:
            await batch.add("fox", "ai-image-generator", {"image_count": 1, "style": {"prompt": "a fox"}},
                            estimate=5)
            async for job in batch.run(concurrency=8, max_credits=5_000, download_directory="out"):
                print(job.key, job.state, job.project_id, job.credits_charged, job.paths)
        ```

    Args:
        client: the client that sends, waits and downloads.
        journal: an SQLite file path (one process runs it at a time), a ``postgresql://`` URL (any number of
            worker processes; needs ``magic-hour-async[postgres]``), or a journal object.
        default_estimate: the worst-case credits of a job whose tool has no known price and that was added
            without ``estimate=``; without one, such jobs are not sent under ``max_credits``.
        lease: seconds a PostgreSQL worker's claim on its jobs lasts without a heartbeat; jobs of a worker
            silent for longer are adopted by the others (its half-sent creates become ``unknown``).
    """

    def __init__(
        self,
        client: AsyncClient,
        journal: str | os.PathLike[str] | Journal,
        *,
        default_estimate: int | None = None,
        lease: float = 60.0,
    ) -> None:
        if default_estimate is not None:
            _check_count("default_estimate", default_estimate, minimum=0)
        if not lease > 0:
            raise ConfigurationError(f"lease must be positive seconds, not {lease!r}")
        self.client = client
        self.journal = open_journal(journal)
        self.default_estimate = default_estimate
        self.lease = float(lease)
        self._running = False

    def __repr__(self) -> str:
        return f"<Batch {self.journal.display_name}>"

    async def open(self) -> None:
        """Open the journal (creating its tables); ``async with`` does this."""
        await self.journal.open()

    async def close(self) -> None:
        """Close the journal; harmless twice."""
        await self.journal.close()

    async def __aenter__(self) -> Batch:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        await self.close()

    async def add(self, key: str, tool: str, body: Mapping[str, Any], *, estimate: int | None = None) -> Job:
        """Add a job unless one with this key exists; return the job as recorded.

        Adding the same key with the same tool and body again is harmless (that is how a script is rerun);
        the same key with a different tool or body raises :class:`ConfigurationError`.

        Args:
            key: your unique name for the job (a file name, a row id, ...).
            tool: the create endpoint's path name, e.g. ``"ai-image-generator"``.
            body: the create request's JSON body; local paths in ``assets.*_file_path(s)`` are uploaded
                right before the job is sent, as ``generate()`` does.
            estimate: the job's worst-case credits, reserved against ``max_credits`` before it is sent
                (default: the tool's documented price, else ``default_estimate``).
        """
        if not isinstance(key, str) or not key:
            raise ConfigurationError(f"key must be a non-empty string, not {key!r}")
        if not isinstance(tool, str) or not tool:
            raise ConfigurationError(f"tool must be a tool's path name, not {tool!r}")
        tool = tool.rpartition("/")[2]  # "/v1/face-swap" and "face-swap" name the same tool
        if not isinstance(body, Mapping):
            raise ConfigurationError(f"body must be a JSON object, not {type(body).__name__}")
        if estimate is not None:
            _check_count("estimate", estimate, minimum=0)
        text = canonical_body(body)
        if estimate is None:
            estimate = worst_case_credits(tool, body)
        if estimate is None:
            estimate = self.default_estimate
        job, stored = await self.journal.add(key=key, tool=tool, body=text, estimate=estimate)
        if job.tool != tool or canonical_body(json.loads(stored)) != text:
            what = "tool" if job.tool != tool else "body"
            raise ConfigurationError(
                f"job {key!r} is already in the batch with a different {what}; use a new key for a new job"
            )
        return job

    async def accept_webhook_event(self, event: WebhookEvent) -> Job | None:
        """Settle the job of a verified ``*.completed`` / ``*.errored`` webhook event in the journal.

        Use it as the receiver's callback, on any machine that can reach the journal: the journal is
        up to date as soon as the event arrives, and a worker waiting on the render settles nothing twice.
        The event also goes to this batch's client (its waits on the render end at once, in this process);
        a worker in another process hears it from a PostgreSQL journal (``LISTEN``) and polls the project
        once. Other events, and projects that are not in this batch, are ignored (``None``). The job stays
        with the worker that owns it, which still downloads its outputs. See ``run(webhooks=True)``.

        Example:
            ```python
            app = webhooks.create_app(batch.accept_webhook_event, client=client, secret=secret)
            ```
        """
        project = event.payload
        if event.action not in ("completed", "errored") or isinstance(project, dict):
            return None
        if project.status not in _SETTLED:
            return None
        job = await self.journal.find_project(project.id)
        if job is None or job.finished:
            return job
        error = f"{project.error.code}: {project.error.message}" if project.error else None
        settled = await self.journal.finish(
            job.key,
            state=_SETTLED[str(project.status)],
            charged=project.credits_charged,
            error=error,
            keep=True,
        )
        self.client.accept_webhook_event(event)  # a wait in this process ends now, with this project
        return settled

    async def get(self, key: str) -> Job | None:
        """The job with this key, or ``None``."""
        return await self.journal.get(key)

    async def status(self) -> BatchStatus:
        """Jobs per state and the credits reserved and charged."""
        return await self.journal.status()

    async def jobs(self, *, state: str | None = None) -> AsyncIterator[Job]:
        """Every job (or those in ``state``), in the order they were added, read page by page."""
        if state is not None and state not in STATES:
            raise ConfigurationError(f"state must be one of {', '.join(STATES)}, not {state!r}")
        after = 0
        while True:
            page = await self.journal.page(state=state, after=after, limit=_PAGE)
            for _, job in page:
                yield job
            if len(page) < _PAGE:
                return
            after = page[-1][0]

    async def run(
        self,
        *,
        concurrency: int = 8,
        max_credits: int | None = None,
        download_directory: str | os.PathLike[str] | None = None,
        resubmit_unknown: bool = False,
        webhooks: bool = False,
    ) -> AsyncIterator[Job]:
        """Work through the batch; yield each job as it finishes (and each job found ``unknown``).

        Resumes whatever an earlier run left: ``submitted`` jobs are waited for, undownloaded ``complete``
        ones downloaded, ``pending`` ones sent. The iteration ends when no job is left to work on. Leaving
        the loop early stops the workers; a job interrupted mid-POST becomes ``unknown``.

        Args:
            concurrency: jobs in flight at once (each from claim through download).
            max_credits: a cap on the batch's credits, across every run and worker: a job is sent only after
                its worst case is reserved within it; a job that can never fit becomes ``over_budget``.
            download_directory: save the outputs of complete jobs here (created if needed).
            resubmit_unknown: send ``unknown`` jobs again (their first attempt may also have been charged).
            webhooks: a webhook receiver settles this batch's jobs (:meth:`accept_webhook_event`): poll the
                API ten times slower (a render just created not at once), only to catch what sends no
                webhook (a canceled render) or a lost delivery. With a PostgreSQL journal the receiver may
                run on any machine: each run hears the journal's settlements (``LISTEN``) and polls a
                settled project once, at once; while it cannot hear the journal it polls at the normal
                cadence. With SQLite the receiver must run in this process
                (``webhooks.create_app(batch=batch)``).
        """
        _check_count("concurrency", concurrency, minimum=1)
        if max_credits is not None:
            _check_count("max_credits", max_credits, minimum=0)
        if self._running:
            raise ConfigurationError("this Batch is already running; one run() at a time per Batch")
        runner = Runner(
            client=self.client,
            journal=self.journal,
            concurrency=concurrency,
            max_credits=max_credits,
            download_directory=Path(download_directory) if download_directory is not None else None,
            resubmit_unknown=resubmit_unknown,
            lease=self.lease,
            webhooks=webhooks,
        )
        self._running = True
        try:
            async for job in runner.run():
                yield job
        finally:
            self._running = False
