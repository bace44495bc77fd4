"""``AsyncClient``: configuration, the shared transport, and the ``v1`` resource tree."""

from __future__ import annotations

import functools
import os
import pathlib
import types
import warnings
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

from ._exceptions import ClientClosedError, ConfigurationError
from ._generated import AsyncV1Generated
from ._hooks import Hooks, poll_route
from ._http._config import (
    MAX_RESPONSE_BYTES,
    Environment,
    Timeout,
    resolve_base_url,
    resolve_max_response_bytes,
    resolve_timeout,
    resolve_token,
)
from ._http._retry import RetryPolicy
from ._http._transport import Transport
from ._polling._policy import PollPolicy
from ._render_timeline import RenderTimeline

if TYPE_CHECKING:
    import aiohttp

    from ._models import Project
    from ._polling._scheduler import PollEvent, Scheduler, SchedulerStats
    from ._resources.account import AsyncAccountResource
    from ._resources.files import AsyncFiles
    from ._resources.projects import AsyncAudioProjects, AsyncImageProjects, AsyncVideoProjects
    from ._resources.saved_items import AsyncSavedItems
    from ._transfers._parts import ProgressCallback
    from .events import Hook
    from .webhooks._verify import WebhookEvent


class AsyncV1(AsyncV1Generated):
    """The ``/v1`` API: ``client.v1.video_projects``, ``client.v1.image_projects``, ...

    Every resource is built on first access (``cached_property``), importing its module then: a client that
    only reads projects never loads the tool modules, uploads or the saved-items code.
    """

    def __init__(self, client: AsyncClient) -> None:
        super().__init__(client)  # one lazy attribute per tool: client.v1.ai_image_generator, ...

    def __repr__(self) -> str:
        return "<AsyncV1>"

    @cached_property
    def video_projects(self) -> AsyncVideoProjects:
        """``/v1/video-projects``: get, delete, wait, check_result."""
        from ._resources.projects import AsyncVideoProjects

        return AsyncVideoProjects(self._client)

    @cached_property
    def image_projects(self) -> AsyncImageProjects:
        """``/v1/image-projects``: get, delete, wait, check_result."""
        from ._resources.projects import AsyncImageProjects

        return AsyncImageProjects(self._client)

    @cached_property
    def audio_projects(self) -> AsyncAudioProjects:
        """``/v1/audio-projects``: get, delete, wait, check_result."""
        from ._resources.projects import AsyncAudioProjects

        return AsyncAudioProjects(self._client)

    @cached_property
    def files(self) -> AsyncFiles:
        """``/v1/files``: upload_file, upload_files, upload_urls.create."""
        from ._resources.files import AsyncFiles

        return AsyncFiles(self._client)

    @cached_property
    def account(self) -> AsyncAccountResource:
        """``/v1/account``: get (the official SDK's ``list`` too)."""
        from ._resources.account import AsyncAccountResource

        return AsyncAccountResource(self._client)

    @cached_property
    def saved_items(self) -> AsyncSavedItems:
        """``/v1/saved-items``: list, iterate."""
        from ._resources.saved_items import AsyncSavedItems

        return AsyncSavedItems(self._client)


class AsyncClient:
    """The asyncio client for the Magic Hour API.

    Example:
        ```python
        async with AsyncClient() as client:  # token from MAGIC_HOUR_API_KEY
            project = await client.v1.video_projects.get(id="cuid")
        ```

    Args:
        token: the API key; ``None`` reads ``MAGIC_HOUR_API_KEY``.
        base_url: the API's URL; ``None`` reads ``MAGIC_HOUR_BASE_URL``, else ``environment``.
        environment: which deployment to use when no base URL is given.
        timeout: seconds for each attempt of a request, or a :class:`Timeout` (default: connect 10 s,
            read 60 s, total 60 s per attempt of an API call).
        max_retries: extra attempts for failed requests (see the README's retry rules).
        max_response_bytes: the largest API answer read (default 16 MiB); a larger one raises
            ``ResponseDecodeError`` without being read.
        poll: when and how much the client polls renders it waits for (:class:`PollPolicy`).
        session: an ``aiohttp.ClientSession`` you own; the client uses it and never closes it.
        on_poll_event: called (in the event loop, must not block) after every poll and resolution, with a
            :class:`PollEvent`; for progress displays.
        hooks: functions or coroutine functions receiving every lifecycle event (:mod:`.events`): requests,
            retries, renders created, polled and finished, transfers. See :meth:`add_hook`.
        httpx_client: accepted so code written for the official SDK runs, and ignored with a warning.
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        base_url: str | None = None,
        environment: Environment = Environment.PRODUCTION,
        timeout: float | Timeout | None = None,
        max_retries: int = 2,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        poll: PollPolicy | None = None,
        session: aiohttp.ClientSession | None = None,
        on_poll_event: Callable[[PollEvent[Project]], object] | None = None,
        hooks: list[Hook] | tuple[Hook, ...] = (),
        httpx_client: object = None,
    ) -> None:
        if httpx_client is not None:
            warnings.warn(
                "httpx_client is ignored: this SDK sends requests with aiohttp; use timeout= "
                "(and session= on AsyncClient) instead",
                UserWarning,
                stacklevel=2,
            )
        self._transport = Transport(
            base_url=resolve_base_url(base_url, environment),
            token=resolve_token(token),
            timeout=resolve_timeout(timeout),
            retry=RetryPolicy(max_retries=max_retries),
            max_response_bytes=resolve_max_response_bytes(max_response_bytes),
            session=session,
            hooks=Hooks(hooks),
        )
        self._hooks = self._transport.hooks
        self._timeline = RenderTimeline()
        self._on_poll_event = on_poll_event
        if poll is not None and not isinstance(poll, PollPolicy):
            raise ConfigurationError(f"poll must be a PollPolicy, not {poll!r}")
        self._poll = poll if poll is not None else PollPolicy()
        self.v1 = AsyncV1(self)

    @cached_property
    def _scheduler(self) -> Scheduler[Project]:
        """The polling scheduler, made (and its modules imported) by the first wait: a client that only
        sends requests never loads it."""
        from ._polling._scheduler import Scheduler
        from ._resources._polled import TERMINAL_STATUSES, fetch_project

        # Polls go out with no transport retries: the scheduler rides out failures itself and must see
        # every 429 to slow down.
        return Scheduler(
            functools.partial(fetch_project, self._transport, max_retries=0),
            # By status, not ``is_terminal``: face-detection jobs are polled by this scheduler too.
            lambda project: project.status in TERMINAL_STATUSES,
            policy=self._poll,
            on_event=self._poll_event,
            closed_error=lambda: ClientClosedError("this client is closed; create a new one"),
        )

    @property
    def base_url(self) -> str:
        """The API's base URL, without a trailing slash."""
        return self._transport.base_url

    @property
    def poll_policy(self) -> PollPolicy:
        """The policy the scheduler polls by."""
        return self._poll

    @property
    def poll_stats(self) -> SchedulerStats:
        """Counters of the polling scheduler: polls sent, 429s, retries, active waits, in flight."""
        return self._scheduler.stats

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._transport.closed

    def __repr__(self) -> str:
        return f"AsyncClient(base_url={self.base_url!r})"

    async def close(self) -> None:
        """Stop polling, fail pending waits, close the client's session (not a caller-owned one).

        Closing twice is harmless. Coroutine hooks still running are awaited.
        """
        await self._scheduler.aclose()  # made now if it never was: later waits must fail as closed
        await self._transport.aclose()
        await self._hooks.aclose()

    def add_hook(self, hook: Hook) -> None:
        """Send every lifecycle event (:mod:`magic_hour_async.events`) to ``hook`` from now on.

        ``hook`` is a function (called inline: it must not block) or a coroutine function (run as a task).
        A hook that raises is logged once and never breaks the call that emitted the event.
        """
        self._hooks.add(hook)

    def _poll_event(self, event: PollEvent[Project]) -> None:
        """The scheduler's one consumer: lifecycle events for hooks, then the caller's ``on_poll_event``."""
        if self._hooks:
            kind = event.kind.removeprefix("/v1/").removesuffix("-projects")
            if event.project is not None and event.what in ("polled", "terminal"):
                project = event.project
                credits = getattr(project, "credits_charged", None)
                polled, finished = self._timeline.observe(kind, event.id, str(project.status), credits)
                self._hooks.emit(polled)
                if finished is not None:
                    self._hooks.emit(finished)
            elif event.what == "retry" and event.error is not None:
                from .events import RetryScheduled  # loaded with the first hook, not at import

                route = poll_route(event.kind)
                self._hooks.emit(
                    RetryScheduled(method="GET", route=route, attempt=0, error=event.error, delay=None)
                )
        if self._on_poll_event is not None:
            self._on_poll_event(event)

    aclose = close

    async def download_outputs(
        self,
        project: Project,
        directory: str | os.PathLike[str] | None = None,
        *,
        overwrite: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> list[pathlib.Path]:
        """Download every output of ``project`` into ``directory`` and return the saved paths in output order.

        Files are named ``{project.id}-{name}`` (``{project.id}-{index}-{name}`` when the project has several
        outputs), where ``name`` is the URL's file name made safe: nothing is ever written outside
        ``directory``, which is created if needed (default: the current directory). Each file streams to a
        temporary ``.part`` name and is renamed once complete; interrupted transfers resume, transient
        failures retry, and expired URLs are refreshed by fetching the project again. Up to 4 files transfer
        at once per client.

        Example:
            ```python
            project = await client.v1.video_projects.wait(id=pid)
            paths = await client.download_outputs(project.raise_for_status(), "renders")
            ```

        Args:
            project: a project from ``get``/``wait``; one without outputs gives ``[]``.
            directory: where to save; created if missing.
            overwrite: replace a different file already under an output's name (an identical one, same
                size, is always kept without downloading).
            on_progress: called in the event loop with a :class:`TransferProgress` as bytes arrive.

        Raises:
            DownloadError: an output could not be saved; no partial file is left behind.
        """
        from ._transfers._downloads import download_outputs  # here: a client that never downloads skips it

        report = self._hooks.transfers("download", on_progress)
        paths = await download_outputs(self, project, directory, overwrite=overwrite, on_progress=report)
        self._hooks.saved(paths)
        return paths

    def accept_webhook_event(self, event: WebhookEvent) -> None:
        """Resolve waits on a webhook event's project now, instead of at its next poll.

        A ``*.completed`` or ``*.errored`` event ends every ``wait``, ``wait_many`` and ``as_completed`` on
        its project with the event's payload; ``*.started`` only updates the last state seen. Events for
        projects nobody waits for, and event types of no known kind, are ignored. Pass only verified events
        (:func:`magic_hour_async.webhooks.verify`). Safe from any thread: off the client's event loop, the
        hand-over is scheduled on it. A receiver made with ``webhooks.create_app(client=client)`` calls this
        for you and also slows polling down while it runs.

        Example:
            ```python
            event = webhooks.verify(raw_body, headers)
            client.accept_webhook_event(event)
            ```
        """
        from .webhooks._receiver import notify_waits  # here: `import magic_hour_async` skips aiohttp.web

        notify_waits(self._scheduler, event)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        await self.close()
