"""A reverse proxy in front of the emulator that misbehaves on purpose, for the rate-limit benchmarks.

Run as ``python -m benchmarks._hostile_proxy --port N --upstream URL``. Every request is forwarded to the
upstream (the emulator), except that project GETs (``GET /v1/<kind>-projects/<id>``) may be answered by the
proxy itself, as configured through ``POST /_proxy/config`` (JSON, every field optional; posting resets the
log):

- ``throttle``: the share of project GETs answered 429 at random, whatever the rate (a seeded
  ``random.Random``), with ``Retry-After: 1`` and ``retry-after-ms`` of ``retry_after_ms`` (default 1000);
- ``fail``: the share answered 503 at random;
- ``rate`` and ``burst``: a token bucket of ``rate`` project GETs a second; over it, 429 with ``Retry-After``
  (whole seconds, at least 1) and the exact ``retry-after-ms``, as the emulator's own rate limit answers;
- ``seed``: reseeds the random source.

``GET /_proxy/log`` answers ``[[seconds since the config, status], ...]`` for every project GET since the last
config: the arrival times the benchmarks count per second.
"""

from __future__ import annotations

import argparse
import math
import random
import re
import time
from typing import Any

import aiohttp
from aiohttp import web

PROJECT_GET = re.compile(r"^/v1/[a-z]+-projects/[^/]+$")
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "host"})


class Hostility:
    def __init__(self) -> None:
        self.configure({})

    def configure(self, config: dict[str, Any]) -> None:
        self.throttle = float(config.get("throttle", 0.0))
        self.fail = float(config.get("fail", 0.0))
        self.retry_after_ms = float(config.get("retry_after_ms", 1000.0))
        self.rate = float(config.get("rate", math.inf))
        self.burst = float(config.get("burst", self.rate if math.isfinite(self.rate) else 1.0))
        self.random = random.Random(int(config.get("seed", 1)))
        self.start = time.monotonic()
        self.tokens = self.burst
        self.updated = self.start
        self.log: list[tuple[float, int]] = []

    def answer(self) -> web.Response | None:
        """The proxy's own answer to a project GET, or None to forward it."""
        now = time.monotonic()
        at = now - self.start
        if math.isfinite(self.rate):
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens < 1.0:
                wait = (1.0 - self.tokens) / self.rate
                self.log.append((at, 429))
                headers = {
                    "Retry-After": str(max(1, math.ceil(wait))),
                    "retry-after-ms": str(math.ceil(wait * 1000)),
                }
                return web.json_response({"message": "Too Many Requests"}, status=429, headers=headers)
            self.tokens -= 1.0
        roll = self.random.random()
        if roll < self.throttle:
            self.log.append((at, 429))
            headers = {"Retry-After": "1", "retry-after-ms": str(math.ceil(self.retry_after_ms))}
            return web.json_response({"message": "Too Many Requests"}, status=429, headers=headers)
        if roll < self.throttle + self.fail:
            self.log.append((at, 503))
            return web.json_response({"message": "Service Unavailable"}, status=503)
        self.log.append((at, 200))
        return None


def build_app(upstream: str) -> web.Application:
    hostility = Hostility()
    app = web.Application()
    session_key = web.AppKey("session", aiohttp.ClientSession)

    async def open_session(app: web.Application) -> Any:
        app[session_key] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        yield
        await app[session_key].close()

    async def configure(request: web.Request) -> web.Response:
        hostility.configure(await request.json())
        return web.json_response({"ok": True})

    async def log(request: web.Request) -> web.Response:
        return web.json_response(hostility.log)

    async def forward(request: web.Request) -> web.StreamResponse:
        if request.method == "GET" and PROJECT_GET.match(request.path):
            own = hostility.answer()
            if own is not None:
                return own
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        async with app[session_key].request(
            request.method, upstream + request.path_qs, headers=headers, data=await request.read()
        ) as response:
            body = await response.read()
            out = {k: v for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP}
            return web.Response(status=response.status, body=body, headers=out)

    app.cleanup_ctx.append(open_session)
    app.router.add_post("/_proxy/config", configure)
    app.router.add_get("/_proxy/log", log)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    app = build_app(args.upstream.rstrip("/"))
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
