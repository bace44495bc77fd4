"""Route keys: how requests are named for counters and matched by faults.

A request is identified by ``"METHOD /template"`` using the router's template, e.g.
``"GET /v1/video-projects/{id}"`` or ``"GET /outputs/{id}/{index}/{name}"``, plus the project id from
the path when there is one. Patterns are shell-style globs over that key (``"POST /v1/*"``,
``"* /outputs/*"``); a pattern that starts with ``/`` matches any method.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from aiohttp import web


def route_key(request: web.Request) -> tuple[str, str | None]:
    """``("METHOD /template", id or None)`` for a request; unrouted paths use the raw path as template."""
    resource = request.match_info.route.resource
    template = resource.canonical if resource is not None else request.path
    return f"{request.method} {template}", request.match_info.get("id")


def route_matches(pattern: str, key: str) -> bool:
    """Whether a route pattern (exact key or glob, method optional) matches a route key."""
    if pattern.startswith("/"):
        pattern = "* " + pattern
    return fnmatchcase(key, pattern)
