"""OpenTelemetry traces and metrics for a client: ``instrument(client)`` (extra ``magic-hour-async[otel]``).

It is one more hook (:mod:`magic_hour_async.events`): nothing else in the SDK imports OpenTelemetry, and a
client that is not instrumented pays nothing. What it records:

- a ``CLIENT`` span per HTTP request to the API, named ``"{method} {route}"``
  (``GET /v1/video-projects/{id}``) with the HTTP client semantic-convention attributes
  (``http.request.method``, ``url.full`` with any query redacted, ``url.template``, ``server.address``,
  ``server.port``, ``http.response.status_code``, ``http.request.resend_count`` on retries, ``error.type`` on
  failures), parented to the caller's current span;
- a span per render wait, ``magic_hour.render {tool or kind}``, from the create (or the first poll) to the
  terminal status, with ``magic_hour.project.id``, ``magic_hour.tool``, ``magic_hour.render.status`` and
  ``magic_hour.credits_charged``; every poll request's span links to it;
- metrics: ``magic_hour.client.requests`` (by method, route and status, or ``error.type`` when no answer
  came; counted in the hook and reported when the reader collects, so a request pays a dict increment, not
  an SDK measurement; durations are on the spans), ``magic_hour.client.retries``,
  ``magic_hour.client.rate_limited`` (429s),
  ``magic_hour.renders`` (by kind and final status), ``magic_hour.credits_charged`` and
  ``magic_hour.render.wait.duration`` (s), ``magic_hour.transfer.bytes``;
- a span per downloaded or uploaded file (``magic_hour.download``, ``magic_hour.upload``) with its name
  and size.

Trace context goes to the API (a W3C ``traceparent`` header on each request) only with ``propagate=True``.

Example:
    ```python
    from magic_hour_async import AsyncClient, otel

    async with AsyncClient() as client:
        otel.instrument(client)  # the global tracer and meter providers, or pass your own
        ...
    ```
"""

from __future__ import annotations

import collections
import functools
import time
from collections.abc import Callable, Iterable, MutableMapping
from pathlib import PurePath
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import metrics, trace
from opentelemetry import propagate as otel_propagate
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

from ._hooks import project_id_of
from ._version import __version__
from .events import (
    Event,
    RenderCreated,
    RenderFinished,
    RenderPolled,
    RequestFailed,
    RequestSent,
    ResponseReceived,
    RetryScheduled,
    TransferCompleted,
    TransferProgressed,
)

__all__ = ["instrument"]

_SCOPE = "magic_hour_async"


def instrument(
    client: Any,
    *,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
    propagate: bool = False,
) -> None:
    """Record spans and metrics for ``client`` (an ``AsyncClient`` or ``Client``).

    Args:
        client: the client to observe; instrumenting it twice records everything twice.
        tracer_provider: where spans go; the global provider when None.
        meter_provider: where metrics go; the global provider when None.
        propagate: send the current trace context to the API in a ``traceparent`` header.
    """
    hooks = getattr(client, "_async_client", client)._hooks  # a blocking Client wraps an AsyncClient
    recorder = _Recorder(tracer_provider=tracer_provider, meter_provider=meter_provider)
    hooks.add(recorder)
    if propagate:
        hooks.add_injector(recorder.inject)


@functools.lru_cache(maxsize=64)
def _server(origin: str) -> tuple[str, int]:
    """``server.address`` and ``server.port`` of ``scheme://host[:port]``."""
    parts = urlsplit(origin)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


class _Recorder:
    """The hook: turns events into spans and metric points."""

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None,
        meter_provider: metrics.MeterProvider | None,
    ) -> None:
        self._tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_SCOPE, __version__, meter_provider=meter_provider)
        # (method, route, status code or error.type): a flat key costs one tuple per request
        self._counts: collections.Counter[tuple[str, str, int | str]] = collections.Counter()
        meter.create_observable_counter(
            "magic_hour.client.requests",
            callbacks=[self._observe_requests],
            unit="{request}",
            description="API requests by method, route and status (or error.type without an answer).",
        )
        self._retries = meter.create_counter(
            "magic_hour.client.retries", unit="{retry}", description="Requests and polls tried again."
        )
        self._rate_limited = meter.create_counter(
            "magic_hour.client.rate_limited", unit="{response}", description="HTTP 429 answers."
        )
        self._renders = meter.create_counter(
            "magic_hour.renders", unit="{render}", description="Renders finished, by final status."
        )
        self._credits = meter.create_counter(
            "magic_hour.credits_charged", unit="{credit}", description="Credits charged by finished renders."
        )
        self._wait = meter.create_histogram(
            "magic_hour.render.wait.duration", unit="s", description="From create (or first poll) to finish."
        )
        self._requests_open: dict[int, Span] = {}
        self._renders_open: dict[str, tuple[Span, float]] = {}
        self._transfers_open: dict[tuple[str, str], Span] = {}
        self._bytes = meter.create_counter(
            "magic_hour.transfer.bytes", unit="By", description="Bytes of files downloaded or uploaded."
        )
        self._handlers: dict[type[Any], Callable[[Any], None]] = {
            RequestSent: self._request_sent,
            ResponseReceived: self._response,
            RequestFailed: self._failed,
            RetryScheduled: self._retry,
            RenderCreated: self._render_created,
            RenderPolled: self._render_polled,
            RenderFinished: self._render_finished,
            TransferProgressed: self._transfer_progressed,
            TransferCompleted: self._transfer_completed,
        }

    def __call__(self, event: Event) -> None:
        handle = self._handlers.get(type(event))  # one lookup, not a chain of isinstance checks
        if handle is not None:
            handle(event)

    def _retry(self, event: RetryScheduled) -> None:
        self._retries.add(1, {"url.template": event.route, "error.type": type(event.error).__name__})

    def _render_created(self, event: RenderCreated) -> None:
        self._render_span(event.project_id, event.tool, tool=event.tool, credits=event.credits)

    def _render_polled(self, event: RenderPolled) -> None:
        span, _ = self._render_span(event.project_id, event.kind)
        span.set_attribute("magic_hour.render.status", event.status)

    def _transfer_progressed(self, event: TransferProgressed) -> None:
        key = (event.direction, event.path)
        if key not in self._transfers_open:
            name = f"magic_hour.{event.direction}"
            self._transfers_open[key] = self._tracer.start_span(
                name, attributes={"magic_hour.file.name": key[1]}
            )

    def inject(self, request_id: int, headers: MutableMapping[str, str]) -> None:
        span = self._requests_open.get(request_id)  # started at once: propagation is on
        if span is not None:
            otel_propagate.inject(headers, context=trace.set_span_in_context(span))

    def _request_sent(self, event: RequestSent) -> None:
        # Hooks get RequestSent on the loop's next turn, once a kept-alive connection has the request (so the
        # SDK's span start, tens of microseconds, is not on the request's path), in the caller's context and
        # stamped with the moment it went out; with propagation, at once, before the headers are written.
        address, port = _server(event.url[: event.url.find("/", 8)])  # scheme://host[:port], parsed once
        attributes: dict[str, str | int] = {
            "http.request.method": event.method,
            "url.full": event.url,
            "url.template": event.route,
            "server.address": address,
            "server.port": port,
        }
        if event.attempt:
            attributes["http.request.resend_count"] = event.attempt
        links: list[Link] | None = None
        if self._renders_open:  # a poll of a render being waited for links to the render's span
            project = project_id_of(event.path)
            if project is not None and project in self._renders_open:
                links = [Link(self._renders_open[project][0].get_span_context())]
        self._requests_open[event.request_id] = self._tracer.start_span(
            f"{event.method} {event.route}",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            links=links,
            start_time=event.sent_at_ns,
        )

    def _observe_requests(self, options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(
                count,
                {
                    "http.request.method": method,
                    "url.template": route,
                    ("http.response.status_code" if isinstance(outcome, int) else "error.type"): outcome,
                },
            )
            for (method, route, outcome), count in list(self._counts.items())
        ]

    def _response(self, event: ResponseReceived) -> None:
        self._counts[event.method, event.route, event.status] += 1
        span = self._requests_open.pop(event.request_id, None)
        if span is not None:
            if event.status >= 400:
                span.set_attributes(
                    {"http.response.status_code": event.status, "error.type": str(event.status)}
                )
                span.set_status(Status(StatusCode.ERROR))
            else:
                span.set_attribute("http.response.status_code", event.status)
            span.end()
        if event.status == 429:
            self._rate_limited.add(1, {"url.template": event.route})

    def _failed(self, event: RequestFailed) -> None:
        error_type = type(event.error).__name__
        span = self._requests_open.pop(event.request_id, None)
        if span is not None:
            span.set_attribute("error.type", error_type)
            span.set_status(Status(StatusCode.ERROR, str(event.error)))
            span.end()
        self._counts[event.method, event.route, error_type] += 1

    def _render_span(
        self, project_id: str, name: str, *, tool: str | None = None, credits: int | None = None
    ) -> tuple[Span, float]:
        found = self._renders_open.get(project_id)
        if found is not None:
            return found
        attributes: dict[str, str | int] = {"magic_hour.project.id": project_id}
        if tool is not None:
            attributes["magic_hour.tool"] = tool
        if credits is not None:
            attributes["magic_hour.credits_estimated"] = credits
        span = self._tracer.start_span(f"magic_hour.render {name}", attributes=attributes)
        found = self._renders_open[project_id] = (span, time.monotonic())
        return found

    def _render_finished(self, event: RenderFinished) -> None:
        span, started = self._render_span(event.project_id, event.kind)
        del self._renders_open[event.project_id]
        span.set_attribute("magic_hour.render.status", event.status)
        span.set_attribute("magic_hour.render.kind", event.kind)
        if event.credits_charged is not None:
            span.set_attribute("magic_hour.credits_charged", event.credits_charged)
            self._credits.add(event.credits_charged, {"magic_hour.render.kind": event.kind})
        if event.queued_seconds is not None:
            span.set_attribute("magic_hour.render.queued_seconds", event.queued_seconds)
        if event.rendering_seconds is not None:
            span.set_attribute("magic_hour.render.rendering_seconds", event.rendering_seconds)
        if event.status != "complete":
            span.set_status(Status(StatusCode.ERROR, f"render {event.status}"))
        span.end()
        attributes = {"magic_hour.render.kind": event.kind, "magic_hour.render.status": event.status}
        self._renders.add(1, attributes)
        self._wait.record(time.monotonic() - started, attributes)

    def _transfer_completed(self, event: TransferCompleted) -> None:
        name = PurePath(event.path).name  # progress names the file; a saved download's event has its path
        span = self._transfers_open.pop((event.direction, name), None)
        if span is None:  # an identical file was kept: nothing moved, still one span for the file
            span = self._tracer.start_span(
                f"magic_hour.{event.direction}", attributes={"magic_hour.file.name": name}
            )
        span.set_attribute("magic_hour.file.size", event.size)
        span.end()
        self._bytes.add(event.size, {"magic_hour.transfer.direction": event.direction})
