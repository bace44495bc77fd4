"""Lifecycle events for hooks: what the client sends, retries, creates, polls and transfers.

Pass callables as ``AsyncClient(hooks=[...])`` (or ``Client(hooks=[...])``, or ``client.add_hook(fn)``); each
receives every event as a frozen object. A hook may be a plain function (called inline, so it must not block)
or a coroutine function (run as a task the client awaits on close). A hook that raises is logged once, with
its traceback, and never breaks the call that emitted the event.

No event carries the API token or a signed query string: ``url`` fields are redacted (``?<redacted>``), and
errors are the SDK's own exceptions, which scrub the token.

Example:
    ```python
    from magic_hour_async import AsyncClient, events

    def log_renders(event: events.Event) -> None:
        if isinstance(event, events.RenderFinished):
            print(event.project_id, event.status, event.credits_charged, event.rendering_seconds)

    async with AsyncClient(hooks=[log_renders]) as client:
        ...
    ```

The events:

=======================  ===============================================================================
``RequestSent``          an HTTP request to the API went out (``attempt`` 0 is the first try)
``ResponseReceived``     its response arrived (``status``, ``elapsed`` seconds)
``RequestFailed``        no response: connection failure or timeout (``error``)
``RetryScheduled``       a failed request or poll will be tried again (``error``, ``delay`` when known)
``RenderCreated``        a create endpoint accepted a render (``tool``, ``project_id``, ``credits``)
``RenderPolled``         a poll saw a render's status
``RenderFinished``       a render reached ``complete``, ``error`` or ``canceled`` (credits, time queued and
                         rendering as far as the client observed them)
``TransferProgressed``   bytes moved for a download or upload
``TransferCompleted``    a file finished downloading or uploading
=======================  ===============================================================================
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal, Union

import attrs

__all__ = [
    "Event",
    "Hook",
    "RenderCreated",
    "RenderFinished",
    "RenderPolled",
    "RequestFailed",
    "RequestSent",
    "ResponseReceived",
    "RetryScheduled",
    "TransferCompleted",
    "TransferProgressed",
]


@attrs.frozen(kw_only=True)
class RequestSent:
    """An API request went out at ``sent_at_ns`` (``time.time_ns()``).

    Hooks receive it on the event loop's next turn: on a kept-alive connection the request is on the wire by
    then (a hook does not delay it), on a new one it may still be connecting. It always comes before the
    event that ends the request.

    ``route`` is the path template (``/v1/video-projects/{id}``), ``path`` the concrete path; ``request_id``
    pairs this event with the :class:`ResponseReceived` or :class:`RequestFailed` that ends it.
    """

    request_id: int
    method: str
    url: str
    route: str
    path: str
    attempt: int
    sent_at_ns: int


@attrs.frozen(kw_only=True)
class ResponseReceived:
    """The API answered ``request_id`` with ``status`` after ``elapsed`` seconds."""

    request_id: int
    method: str
    route: str
    status: int
    elapsed: float
    attempt: int


@attrs.frozen(kw_only=True)
class RequestFailed:
    """``request_id`` got no HTTP response: ``error`` is an ``APIConnectionError`` or ``APITimeoutError``, the
    ``asyncio.CancelledError`` of a call cancelled while its request was in flight, or whatever else ended
    it."""

    request_id: int
    method: str
    route: str
    error: BaseException
    elapsed: float
    attempt: int


@attrs.frozen(kw_only=True)
class RetryScheduled:
    """A request (or a poll, ``route`` then names the project) will be tried again after ``delay`` seconds.

    ``delay`` is None for polls: the scheduler decides when, with every other poll in mind.
    """

    method: str
    route: str
    attempt: int
    error: BaseException
    delay: float | None


@attrs.frozen(kw_only=True)
class RenderCreated:
    """A create endpoint started a render: ``tool`` is its path name (``ai-image-generator``)."""

    tool: str
    project_id: str
    credits: int


@attrs.frozen(kw_only=True)
class RenderPolled:
    """A poll saw ``status`` for a render of ``kind`` (``video``, ``image``, ``audio``, ...)."""

    kind: str
    project_id: str
    status: str


@attrs.frozen(kw_only=True)
class RenderFinished:
    """A render reached a terminal status.

    ``queued_seconds`` and ``rendering_seconds`` cover what this client observed, from the create (or the
    first poll) to the first poll that saw the next status; None when the client never saw that phase.
    """

    kind: str
    project_id: str
    status: str
    credits_charged: int | None
    queued_seconds: float | None
    rendering_seconds: float | None


@attrs.frozen(kw_only=True)
class TransferProgressed:
    """``done`` of ``total`` bytes (``total`` None when unknown) moved for ``path``."""

    direction: Literal["download", "upload"]
    path: str
    done: int
    total: int | None


@attrs.frozen(kw_only=True)
class TransferCompleted:
    """``path`` finished downloading or uploading (``size`` bytes)."""

    direction: Literal["download", "upload"]
    path: str
    size: int


Event = Union[  # noqa: UP007  (a runtime alias for isinstance and Python 3.10)
    RequestSent,
    ResponseReceived,
    RequestFailed,
    RetryScheduled,
    RenderCreated,
    RenderPolled,
    RenderFinished,
    TransferProgressed,
    TransferCompleted,
]
#: A hook: a function or coroutine function taking one event.
Hook = Callable[[Event], Awaitable[object] | object]
