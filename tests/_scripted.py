"""A loopback aiohttp.web server that answers from a per-test script, for transport-level tests.

Each test queues responses (status, body, headers, or a connection reset) for a path; unscripted requests get
a default project body. Every request is recorded so tests can assert what was sent and how often.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from typing import Any

import attrs
from aiohttp import web
from aiohttp.test_utils import TestServer


@attrs.define
class Scripted:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = attrs.Factory(dict)
    reset: bool = False
    delay: float = 0.0


@attrs.define
class Recorded:
    method: str
    path: str
    raw_path: str
    headers: dict[str, str]
    body: bytes


class ScriptedServer:
    def __init__(self) -> None:
        self.scripts: dict[str, deque[Scripted]] = defaultdict(deque)
        self.requests: list[Recorded] = []
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.server = TestServer(app, host="127.0.0.1")

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    def add(self, path: str, *responses: Scripted) -> None:
        self.scripts[path].extend(responses)

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.path == path)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            Recorded(request.method, request.path, request.raw_path, dict(request.headers), body)
        )
        queue = self.scripts.get(request.raw_path)
        step = queue.popleft() if queue else Scripted(body=default_project(request.path))
        if step.delay:
            import asyncio

            await asyncio.sleep(step.delay)
        if step.reset:
            assert request.transport is not None
            request.transport.close()
            return web.Response()  # never delivered: the socket is gone
        if isinstance(step.body, (bytes, str)):
            text = step.body.decode() if isinstance(step.body, bytes) else step.body
            return web.Response(status=step.status, text=text, headers=step.headers, content_type="text/html")
        if step.body is None and step.status == 204:
            return web.Response(status=204, headers=step.headers)
        return web.Response(
            status=step.status,
            text=json.dumps(step.body),
            headers=step.headers,
            content_type="application/json",
        )


def default_project(path: str) -> dict[str, Any]:
    project_id = path.rsplit("/", 1)[-1]
    return {
        "id": project_id,
        "name": "Example Name",
        "status": "complete",
        "type": "VOICE_GENERATOR",
        "created_at": "2024-10-19T05:16:19.027Z",
        "enabled": True,
        "credits_charged": 2,
        "downloads": [],
        "error": None,
    }
