"""The :class:`Emulator`: a local, deterministic stand-in for the Magic Hour API.

It owns the state (:mod:`._state`), fault rules (:mod:`._faults`) and counters (:mod:`._counters`), serves
them with the aiohttp app of :mod:`._app` on 127.0.0.1, and offers a synchronous control API for tests (insert
projects, force outcomes, read expected output bytes). Two ways to run it:

- ``async with Emulator() as emu`` serves on the running event loop;
- ``with Emulator() as emu`` serves on a private event loop in a background thread, for synchronous tests and
  the blocking client. Leaving the block stops the server and joins the thread.

Control methods are plain (non-async) and thread-safe, so they work the same in both modes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from types import MappingProxyType, TracebackType
from typing import Any, Literal

from aiohttp import web

from ._app import build_app
from ._background import BackgroundLoop
from ._bodies import output_path, project_body, signed_url
from ._clock import Clock
from ._counters import Counters
from ._faults import Faults
from ._lifecycle import VideoInfo, job_error
from ._state import State, UploadedFile
from ._tools import TOOLS, TOOLS_BY_TYPE, Kind, Tool
from ._webhooks import Webhooks

DEFAULT_TOKEN = "mhk_test_emulator"
_DEFAULT_TYPES: Mapping[Kind, str] = {"video": "FACE_SWAP", "image": "AI_IMAGE", "audio": "VOICE_GENERATOR"}


class Emulator:
    """A local Magic Hour API with a scriptable lifecycle and fault injection.

    Args:
        seed: makes ids, outcomes, output bytes and URL signatures reproducible.
        speed: factor applied to the tools' render durations (``0.001`` for tests, ``1.0`` realistic).
        token: the API key the emulator accepts (default ``"mhk_test_emulator"``).
        host, port: where to listen; ``port=0`` picks a free port (see :attr:`url`).
        clock: monotonic time source; pass a :class:`ManualClock` to move time in tests.
        credits: the starting credit balance; creates answer 402 once it is spent.
        error_rate: probability that a render ends in ``error`` (drawn from the seed).
        output_size: bytes per output file for renders created through the API.
        url_ttl: lifetime in seconds of signed download and upload URLs.
        honor_range: answer ``Range`` requests with 206 (False: always send the full body with 200).
        log_size: how many recent requests :attr:`counters` keeps.
        webhook_url, webhook_secret, webhook_events: deliver signed webhooks to this URL (see
            :attr:`webhooks`, which can also be configured later).

    Example:
        >>> async with Emulator(speed=0.001) as emu:  # doctest: +SKIP
        ...     client = AsyncClient(token=emu.token, base_url=emu.url)
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        speed: float = 1.0,
        token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        credits: int = 1_000_000_000,
        error_rate: float = 0.0,
        output_size: int = 64 * 1024,
        url_ttl: float = 24 * 3600.0,
        honor_range: bool = True,
        log_size: int = 10_000,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        webhook_events: Iterable[str] | None = None,
    ) -> None:
        self.token = token or DEFAULT_TOKEN
        self.clock: Clock = clock or time.monotonic
        self.host = host
        self._requested_port = port
        self._state = State(
            seed=seed,
            speed=speed,
            clock=self.clock,
            credits=credits,
            error_rate=error_rate,
            output_size=output_size,
            url_ttl=url_ttl,
            honor_range=honor_range,
            token=self.token,
        )
        self.faults = Faults(self.clock)
        self.counters = Counters(log_size)
        self.app = build_app(self._state, self.faults, self.counters)
        #: Signed webhook deliveries (``emu.webhooks.configure(url, secret)``, ``emu.webhooks.stats``).
        self.webhooks = Webhooks(self._state, lambda: self.url, log_size=log_size)
        if webhook_url is not None:
            self.webhooks.configure(webhook_url, webhook_secret, events=webhook_events)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._background = BackgroundLoop(self.start, self.stop, name="magic-hour-emulator")

    def __repr__(self) -> str:
        where = f"http://{self.host}:{self._port}" if self._port is not None else "not running"
        return f"<Emulator {where}>"

    # -- serving --------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL of the running emulator, e.g. ``http://127.0.0.1:54321`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    @property
    def port(self) -> int:
        """The TCP port the emulator listens on."""
        if self._port is None:
            raise RuntimeError(
                "the emulator is not running; use 'async with Emulator()' or 'with Emulator()'"
            )
        return self._port

    async def start(self) -> None:
        """Start serving on the running event loop."""
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self._requested_port, backlog=4096)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        await self.webhooks.start()

    async def stop(self) -> None:
        """Stop serving, close client connections and delete uploaded files. Harmless when not running."""
        runner, self._runner = self._runner, None
        self.faults.release_all()  # held requests would otherwise delay the shutdown
        if runner is not None:
            await self.webhooks.stop()
            await runner.cleanup()
        self._port = None
        self._state.close()

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def __enter__(self) -> Emulator:
        """Serve from a background thread with its own event loop until the ``with`` block ends."""
        if self._background.running or self._runner is not None:
            raise RuntimeError("the emulator is already running")
        self._background.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._background.stop()

    def unix_time(self) -> float:
        """Unix time as the emulator sees it (it moves with the injected clock)."""
        return self._state.wall()

    # -- settings -------------------------------------------------------------------------------------------
    @property
    def credits(self) -> int:
        """The credit balance (settable); 402 answers once a render costs more than what is left."""
        return self._state.balance

    @credits.setter
    def credits(self, value: int) -> None:
        self._state.balance = value

    @property
    def speed(self) -> float:
        """Factor on render durations for renders created from now on (settable)."""
        return self._state.speed

    @speed.setter
    def speed(self, value: float) -> None:
        self._state.speed = value

    @property
    def error_rate(self) -> float:
        """Probability that a new render fails (settable)."""
        return self._state.error_rate

    @error_rate.setter
    def error_rate(self, value: float) -> None:
        self._state.error_rate = value

    @property
    def output_size(self) -> int:
        """Bytes per output file for renders created through the API from now on (settable)."""
        return self._state.output_size

    @output_size.setter
    def output_size(self, value: int) -> None:
        self._state.output_size = value

    @property
    def url_ttl(self) -> float:
        """Lifetime of newly signed URLs in seconds (settable)."""
        return self._state.url_ttl

    @url_ttl.setter
    def url_ttl(self, value: float) -> None:
        self._state.url_ttl = value

    @property
    def honor_range(self) -> bool:
        """Whether downloads answer ``Range`` with 206 (settable; False sends 200 and the full body)."""
        return self._state.honor_range

    @honor_range.setter
    def honor_range(self, value: bool) -> None:
        self._state.honor_range = value

    # -- control API for tests ------------------------------------------------------------------------------
    def create_project(
        self,
        kind: Kind = "video",
        *,
        type: str | None = None,
        id: str | None = None,
        name: str | None = None,
        status: str | None = None,
        duration: float | None = None,
        outcome: Literal["complete", "error", "canceled"] = "complete",
        error_code: str | None = None,
        error_message: str | None = None,
        outputs: int = 1,
        output_size: int | None = None,
        extension: str | None = None,
        credits_charged: int | None = None,
        video: VideoInfo | None = None,
    ) -> str:
        """Insert a project directly (no request, no credits spent) and return its id.

        Without ``status`` the project follows the clock: ``queued`` for the first 20% of ``duration`` (clock
        seconds, not scaled by ``speed``; default: the tool's duration times ``speed``), then ``rendering``,
        then ``outcome``. With ``status`` it stays in that status, which may be any string (e.g. ``"draft"``,
        or an unknown value to test tolerant clients) until :meth:`complete`, :meth:`fail` or :meth:`cancel`.
        ``outputs`` downloads of ``output_size`` bytes each are served once complete.
        """
        project_type = type or _DEFAULT_TYPES[kind]
        tool: Tool | None = TOOLS_BY_TYPE.get((kind, project_type))
        if tool is None:
            tool = next(t for t in TOOLS if t.kind == kind)
        failed = outcome == "error" or status == "error"
        project = self._state.insert(
            kind,
            project_type,
            id=id,
            name=name,
            duration=self.speed * tool.duration if duration is None else duration,
            outcome=outcome,
            error=job_error(kind, error_code, error_message) if failed else None,
            credits=tool.credits * (5 if kind == "video" else 1)
            if credits_charged is None
            else credits_charged,
            outputs=outputs,
            output_size=self.output_size if output_size is None else output_size,
            extension=extension or tool.output_extension,
            video=video or (VideoInfo() if kind == "video" else None),
            pinned=status,
        )
        return project.id

    def complete(self, project_id: str) -> None:
        """Make a project ``complete`` now."""
        self._state.force(project_id, "complete")

    def fail(self, project_id: str, code: str = "unknown_error", message: str | None = None) -> None:
        """Make a project end in ``error`` now with this error code (refunding its credits)."""
        self._state.force(project_id, "error", job_error(self._state.get(project_id).kind, code, message))

    def cancel(self, project_id: str) -> None:
        """Make a project ``canceled`` now (refunding its credits)."""
        self._state.force(project_id, "canceled")

    def set_status(self, project_id: str, status: str) -> None:
        """Pin any status string on a project, e.g. ``"draft"`` or an unknown one."""
        self._state.force(project_id, status)

    @property
    def project_ids(self) -> tuple[str, ...]:
        """Ids of every project, created through the API or inserted, oldest first."""
        with self._state.lock:
            return tuple(self._state.projects)

    def project(self, project_id: str) -> dict[str, Any]:
        """The body ``GET /v1/{kind}-projects/{id}`` would return now (without counting a request)."""
        with self._state.lock:
            return project_body(self._state, self.url, self._state.get(project_id))

    def download_url(self, project_id: str, index: int = 0) -> str:
        """A freshly signed URL for one output of a project."""
        with self._state.lock:
            project = self._state.get(project_id)
            path = output_path(project.id, index, project.extension)
            return signed_url(self._state, self.url, path)["url"]

    def output_bytes(
        self, project_id: str, index: int = 0, *, start: int = 0, end: int | None = None
    ) -> bytes:
        """The exact bytes ``[start, end)`` the emulator serves for an output (for byte-exact assertions)."""
        project = self._state.get(project_id)
        return self._state.media.read(
            f"{project_id}/{index}", project.extension, project.output_size, start, end
        )

    @property
    def uploads(self) -> Mapping[str, UploadedFile]:
        """Files received on upload URLs, by ``file_path`` (``api-assets/<id>/<n>.<ext>``)."""
        with self._state.lock:
            return MappingProxyType(dict(self._state.uploads))

    def reset_counters(self) -> None:
        """Forget request counts and the request log."""
        self.counters.reset()
