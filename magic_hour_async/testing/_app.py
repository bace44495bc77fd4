"""The aiohttp application: routes plus three middlewares, outermost first.

1. ``_observe`` counts and logs every request (see :mod:`._counters`), turns router errors (unknown path,
   wrong method) into the API's JSON ``{"code": ..., "message": ...}`` bodies, and answers 400 for any input
   a handler fails on unexpectedly (logged with its traceback): no input makes the emulator answer 5xx
   unless a fault rule asks for it.
2. ``_inject`` applies the rate limit and the first matching fault rule (see :mod:`._faults`). It sits before
   auth because real gateways throttle and fail before the application checks credentials.
3. ``_authenticate`` answers 401 ``{"code": "unauthorized", "message": "Unauthorized"}`` on ``/v1``
   without the right bearer token.
   Storage URLs (``/outputs``, ``/uploads``) are authorised by their signature instead.
4. ``_check_parameters`` answers 400 ``invalid_request`` for query or path parameters that break the spec's
   rules (``limit=0`` on ``GET /v1/saved-items``), from the same generated table as request bodies.
"""

from __future__ import annotations

import asyncio
import hmac
import logging

from aiohttp import web

from . import _account, _api, _transfers
from ._api import Handler, message, refuse
from ._counters import Counters
from ._faults import DROPPED_KEY, FAULT_KEY, Faults, drop_connection
from ._routing import route_key
from ._state import STATE_KEY, State
from ._throttle import rate_limited
from ._validation import check_parameters

FAULTS_KEY = web.AppKey("magic_hour_async.faults", Faults)
COUNTERS_KEY = web.AppKey("magic_hour_async.counters", Counters)
_log = logging.getLogger("magic_hour_async.testing")


@web.middleware
async def _observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    route, project_id = route_key(request)
    counters = request.app[COUNTERS_KEY]
    record = counters.begin(request.method, request.path, request.query_string, route, project_id,
                            request.headers)  # fmt: skip
    try:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            # The router's 404/405: answer like the API rather than with aiohttp's plain-text page.
            response = message(exc.status, exc.reason)
            response.headers.extend((k, v) for k, v in exc.headers.items() if k.lower() == "allow")
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception:
            # A bug no fuzzer has found yet: the client still gets the API's 4xx shape, the log the trace.
            _log.exception("emulator: %s %s failed; answering 400", request.method, request.path)
            response = message(400, "The request could not be processed")
        if not request.get(DROPPED_KEY, False):
            record.status = response.status
        return response
    finally:
        counters.end()


async def _truncated(request: web.Request, response: web.StreamResponse, keep: int) -> web.StreamResponse:
    """Send ``response``'s status, headers and full ``Content-Length`` but only ``keep`` body bytes."""
    body = response.body if isinstance(response, web.Response) else None
    if response.prepared or not isinstance(body, bytes):
        return response
    stream = web.StreamResponse(status=response.status, headers=response.headers)
    stream.content_length = len(body)
    await stream.prepare(request)
    await stream.write(body[:keep])
    drop_connection(request, reset=False)
    return stream


@web.middleware
async def _inject(request: web.Request, handler: Handler) -> web.StreamResponse:
    faults = request.app[FAULTS_KEY]
    route, project_id = route_key(request)
    wait = faults.throttle(route)
    if wait > 0:
        return rate_limited(wait)
    fault = faults.match(route, project_id)
    if fault is None:
        return await handler(request)
    request[FAULT_KEY] = fault
    if fault.delay > 0:
        await asyncio.sleep(fault.delay)
    if fault.hold:
        await fault.wait_released()
    if fault.reset == "before":
        drop_connection(request, reset=True)
        return web.Response(status=499)  # never sent: the connection is gone
    if fault.status is not None:
        return fault.response(request.app[STATE_KEY].wall())
    response = await handler(request)
    if fault.reset == "after":
        drop_connection(request, reset=True)
    elif fault.truncate_after is not None:
        response = await _truncated(request, response, fault.truncate_after)
    return response


@web.middleware
async def _authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/v1/"):
        expected = f"Bearer {request.app[STATE_KEY].token}"
        supplied = request.headers.get("Authorization", "")
        scheme, _, credentials = supplied.partition(" ")
        supplied = f"Bearer {credentials.strip()}" if scheme.lower() == "bearer" else ""
        if not hmac.compare_digest(supplied.encode(), expected.encode()):
            return message(401, "Unauthorized")
    return await handler(request)


@web.middleware
async def _check_parameters(request: web.Request, handler: Handler) -> web.StreamResponse:
    operation, _ = route_key(request)
    problem = check_parameters(operation, request.query, request.match_info)
    return refuse(problem) if problem is not None else await handler(request)


def build_app(state: State, faults: Faults, counters: Counters) -> web.Application:
    """The emulator's aiohttp application over the given state, fault rules and counters."""
    app = web.Application(middlewares=[_observe, _inject, _authenticate, _check_parameters])
    app[STATE_KEY] = state
    app[FAULTS_KEY] = faults
    app[COUNTERS_KEY] = counters
    _api.add_routes(app)
    _account.add_routes(app)
    _transfers.add_routes(app)
    return app
