"""What the client saw of each render's life, as :class:`~.events.RenderPolled` and ``RenderFinished``.

The scheduler reports polls as :class:`PollEvent` objects; this adapter remembers, per project, when the
client first knew of it (its create, else its first poll) and the first poll that saw it ``rendering``, so
the finish event can say how long the render sat queued and how long it rendered, as far as polling can tell.
Entries are dropped when the render finishes, so memory follows the number of renders being waited on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from .events import RenderFinished, RenderPolled

TERMINAL = frozenset({"complete", "error", "canceled"})


@attrs.define
class _Seen:
    start: float
    queued: bool  # the first thing known was a create or a queued/draft status
    rendering_at: float | None = None


class RenderTimeline:
    """Per-project first-seen times; ``clock`` is injectable for exact tests."""

    __slots__ = ("_clock", "_seen")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._seen: dict[str, _Seen] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def created(self, project_id: str) -> None:
        self._seen.setdefault(project_id, _Seen(start=self._clock(), queued=True))

    def observe(
        self, kind: str, project_id: str, status: str, credits_charged: int | None
    ) -> tuple[RenderPolled, RenderFinished | None]:
        """The events for one observed status: always a poll, and a finish when ``status`` is terminal."""
        from .events import RenderFinished, RenderPolled  # only clients with hooks get here

        now = self._clock()
        seen = self._seen.get(project_id)
        if seen is None:
            seen = self._seen[project_id] = _Seen(start=now, queued=status in {"queued", "draft"})
        if status == "rendering" and seen.rendering_at is None:
            seen.rendering_at = now
        polled = RenderPolled(kind=kind, project_id=project_id, status=status)
        if status not in TERMINAL:
            return polled, None
        del self._seen[project_id]
        rendering_at = seen.rendering_at
        queued = ((rendering_at if rendering_at is not None else now) - seen.start) if seen.queued else None
        finished = RenderFinished(
            kind=kind,
            project_id=project_id,
            status=status,
            credits_charged=credits_charged,
            queued_seconds=queued,
            rendering_seconds=None if rendering_at is None else now - rendering_at,
        )
        return polled, finished
