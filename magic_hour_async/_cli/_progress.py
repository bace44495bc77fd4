"""Live progress for the CLI: a status table redrawn in place on a terminal, plain lines otherwise.

It is fed by the scheduler's :class:`PollEvent` callback (statuses) and by byte counts from downloads, and it
only ever writes to its stream: no threads, no timers. Redraws are throttled so a thousand renders finishing
at once cost a few screen updates, not a thousand.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from .._models import Project
from .._polling._scheduler import PollEvent
from .._transfers._parts import TransferProgress

_SYMBOLS = {"complete": "done", "error": "FAILED", "canceled": "canceled"}


class Progress:
    """Tracks render statuses and transferred bytes, and shows them on ``stream``.

    Args:
        stream: where to draw (default stderr, so stdout stays clean for ``--json``).
        live: redraw a table in place; default: when ``stream`` is a terminal.
        clock: monotonic seconds, for throttling redraws.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        live: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        min_interval: float = 0.1,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.statuses: dict[str, str] = {}
        self.kinds: dict[str, str] = {}
        self.bytes_done: dict[str, int] = {}
        self._clock = clock
        self._min_interval = min_interval
        self._last_draw = -1e9
        self._drawn_lines = 0

    def track(self, kind: str, id: str, status: str = "queued") -> None:
        """Start showing a render before its first poll."""
        self.kinds[id] = kind
        self.statuses[id] = status
        self._changed(f"{kind} {id}: {status}")

    def on_poll_event(self, event: PollEvent[Project]) -> None:
        """The scheduler's ``on_poll_event`` callback."""
        if event.project is not None:
            status = str(event.project.status)
        elif event.what == "error":
            status = f"error: {event.error}"
        else:
            return
        if self.statuses.get(event.id) == status:
            return
        self.kinds[event.id] = event.kind
        self.statuses[event.id] = status
        self._changed(f"{event.kind} {event.id}: {status}")

    def on_transfer(self, progress: TransferProgress) -> None:
        """The ``on_progress`` callback of downloads and uploads."""
        name, done, total = progress.name, progress.bytes_done, progress.bytes_total
        finished = total is not None and done >= total
        previous = self.bytes_done.get(name)
        self.bytes_done[name] = done
        if not self.live and finished and previous != done:
            self._write_line(f"saved {name} ({done:,} bytes)")
        elif self.live:
            self._redraw(force=finished)

    def summary_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for status in self.statuses.values():
            counts[status] = counts.get(status, 0) + 1
        return counts

    def close(self) -> None:
        """Draw the final state once more (live mode) so the table ends complete."""
        if self.live:
            self._redraw(force=True)

    def _changed(self, line: str) -> None:
        if self.live:
            self._redraw(force=False)
        else:
            self._write_line(line)

    def _write_line(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def _redraw(self, *, force: bool) -> None:
        now = self._clock()
        if not force and now - self._last_draw < self._min_interval:
            return
        self._last_draw = now
        lines = self._table()
        # Move up over the previous table and clear each line before writing the new one.
        out = "\x1b[F\x1b[2K" * self._drawn_lines + "".join(f"\x1b[2K{line}\n" for line in lines)
        self.stream.write(out)
        self.stream.flush()
        self._drawn_lines = len(lines)

    def _table(self) -> list[str]:
        counts = self.summary_counts()
        head = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        rows = [f"renders: {len(self.statuses)} ({head})"]
        # Show unfinished renders first; a terminal is only so tall.
        pending = [i for i, s in self.statuses.items() if s not in _SYMBOLS]
        shown = (pending or list(self.statuses))[:15]
        rows += [
            f"  {self.kinds.get(i, '?'):5} {i}  {_SYMBOLS.get(self.statuses[i], self.statuses[i])}"
            for i in shown
        ]
        if self.bytes_done:
            total = sum(self.bytes_done.values())
            rows.append(f"downloaded: {len(self.bytes_done)} files, {total / 1e6:,.1f} MB")
        return rows
