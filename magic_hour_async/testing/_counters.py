"""Request counters and a log of recent requests, for assertions such as "the POST was sent once".

Counting happens in the outermost middleware, before faults and auth, so every request that reached the
emulator is seen, including those answered by an injected fault or dropped by a reset (their ``status`` is
``None``). Counters are per route key (see :mod:`._routing`), per ``(route key, id)``, in total, and in flight
(with the maximum reached since the last reset, which is how concurrency caps are checked).
"""

from __future__ import annotations

import threading
from collections import Counter, deque

import attrs
from multidict import CIMultiDict, CIMultiDictProxy

from ._routing import route_matches


@attrs.define(slots=True, kw_only=True)
class RequestRecord:
    """One request as the emulator received it; ``status`` is ``None`` until answered or when dropped."""

    method: str
    path: str
    query: str
    route: str
    project_id: str | None
    headers: CIMultiDictProxy[str]
    status: int | None = None


class Counters:
    """Thread-safe request statistics; read them from tests, reset with :meth:`reset`."""

    def __init__(self, log_size: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._by_route: Counter[str] = Counter()
        self._by_id: Counter[tuple[str, str]] = Counter()
        self._log: deque[RequestRecord] = deque(maxlen=log_size)
        self.total = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def begin(
        self,
        method: str,
        path: str,
        query: str,
        route: str,
        project_id: str | None,
        headers: CIMultiDictProxy[str],
    ) -> RequestRecord:
        """Count a request that has just arrived."""
        record = RequestRecord(
            method=method,
            path=path,
            query=query,
            route=route,
            project_id=project_id,
            headers=CIMultiDictProxy(CIMultiDict(headers)),
        )
        with self._lock:
            self.total += 1
            self._by_route[route] += 1
            if project_id is not None:
                self._by_id[(route, project_id)] += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._log.append(record)
        return record

    def end(self) -> None:
        """A request has been answered (or dropped)."""
        with self._lock:
            self.in_flight -= 1

    def count(self, route: str | None = None, id: str | None = None) -> int:
        """Requests seen for a route key or glob (all routes when ``None``), optionally for one project id.

        Example:
            >>> emu.counters.count("POST /v1/face-swap")  # doctest: +SKIP
            1
        """
        with self._lock:
            if id is not None:
                return sum(
                    n
                    for (key, pid), n in self._by_id.items()
                    if pid == id and (route is None or route_matches(route, key))
                )
            if route is None:
                return self.total
            return sum(n for key, n in self._by_route.items() if route_matches(route, key))

    def requests(self, route: str | None = None, id: str | None = None) -> list[RequestRecord]:
        """Recent requests (oldest first, up to the log size), optionally filtered like :meth:`count`."""
        with self._lock:
            records = list(self._log)
        return [
            r
            for r in records
            if (route is None or route_matches(route, r.route)) and (id is None or r.project_id == id)
        ]

    @property
    def routes(self) -> dict[str, int]:
        """Requests per route key."""
        with self._lock:
            return dict(self._by_route)

    def reset(self) -> None:
        """Forget counts and the log; ``max_in_flight`` restarts from the requests in flight now."""
        with self._lock:
            self._by_route.clear()
            self._by_id.clear()
            self._log.clear()
            self.total = 0
            self.max_in_flight = self.in_flight
