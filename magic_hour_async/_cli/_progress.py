"""Live progress for the CLI: a status table redrawn in place on a terminal, plain lines otherwise.

It is fed by the scheduler's :class:`PollEvent` callback (statuses, transient poll errors) and by byte counts
from downloads, and it only ever writes to its stream: no threads, no timers. Redraws are throttled so a
thousand renders finishing at once cost a few screen updates, not a thousand.

It shows only what it knows: an id is ``checking`` until its first answer (not ``queued``: it may be complete,
unknown, or on a host that cannot be reached); the header counts every id given; a poll that fails
transiently shows as ``unreachable`` or ``retrying`` until an answer comes. Failures sort first, so when the
table is cut to fit a terminal (``+N more``) no failure hides among the cut rows.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from typing import TextIO

from .._exceptions import APIConnectionError, APIStatusError, APITimeoutError
from .._models import Project
from .._polling._scheduler import PollEvent
from .._transfers._parts import TransferProgress

__all__ = ["CHECKING", "Progress", "transient_state"]

CHECKING = "checking"
_FAILED = ("error", "canceled", "FAILED")
_DONE = ("complete",)


def transient_state(error: BaseException) -> str:
    """How a poll error that polling survives reads in the table."""
    if isinstance(error, APITimeoutError):
        return "no answer (timeout), retrying"
    if isinstance(error, APIConnectionError):
        return "unreachable, retrying"
    if isinstance(error, APIStatusError):
        return f"retrying after HTTP {error.status_code}"
    return f"retrying after {type(error).__name__}"


def _order(status: str) -> int:
    """Failures first, then unfinished renders, then finished ones."""
    if status.startswith(_FAILED):
        return 0
    return 2 if status in _DONE else 1


class Progress:
    """Tracks render statuses and transferred bytes, and shows them on ``stream``.

    Args:
        stream: where to draw (default stderr, so stdout stays clean for ``--json``).
        live: redraw a table in place; default: when ``stream`` is a terminal.
        clock: monotonic seconds, for throttling redraws.
        min_interval: the least time between two redraws, except the final one and forced ones.
        max_rows: the most project rows in the table; the rest are summed up as ``+N more``.
        width: the terminal's width in columns (default: asked of the terminal); longer rows are cut.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        live: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        min_interval: float = 0.1,
        max_rows: int = 15,
        width: int | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.statuses: dict[str, str] = {}
        self.kinds: dict[str, str] = {}
        self.last_errors: dict[str, BaseException] = {}
        self.bytes_done: dict[str, int] = {}
        self.present: set[str] = set()  # files that were already there, identical, and not downloaded again
        self._clock = clock
        self._min_interval = min_interval
        self._max_rows = max_rows
        self._width = width
        self._last_draw = -1e9
        self._drawn_lines = 0
        self._transfers: dict[str, tuple[int, int | None]] = {}

    def track(self, kind: str, *ids: str) -> None:
        """Start showing renders before their first answer, as ``checking``; one frame for all of them."""
        fresh = [id for id in ids if self.statuses.get(id) != CHECKING]
        for id in fresh:
            self.kinds[id] = kind
            self.statuses[id] = CHECKING
        if self.live and fresh:
            self._redraw(force=True)
        elif not self.live:
            for id in fresh:
                self._write_line(f"{kind} {id}: {CHECKING}")

    def on_poll_event(self, event: PollEvent[Project]) -> None:
        """The scheduler's ``on_poll_event`` callback."""
        self.kinds.setdefault(event.id, event.kind)
        project = event.project
        if project is not None:
            status = str(project.status)
            if status == "error":
                code = project.error.code if project.error is not None else "no details"
                status = f"FAILED ({code})"
            self.last_errors.pop(event.id, None)
        elif event.error is not None and event.what == "retry":
            self.last_errors[event.id] = event.error
            status = transient_state(event.error)
        elif event.error is not None:
            status = f"FAILED ({type(event.error).__name__})"
        else:
            return
        self._set(event.id, status)

    def fail(self, id: str, reason: str) -> None:
        """Show ``id`` as failed for a reason found outside polling (a download, a wait's deadline)."""
        self._set(id, f"FAILED ({reason})")

    def report(self, line: str) -> None:
        """Print a line that stays (an error about one id) above the table, which is redrawn below it."""
        if self.live:
            self.stream.write("\x1b[F\x1b[2K" * self._drawn_lines + line + "\n")
            self._drawn_lines = 0
            self._redraw(force=True)
        else:
            self._write_line(line)

    def on_transfer(self, progress: TransferProgress) -> None:
        """The ``on_progress`` callback of downloads and uploads; a repeat of the same numbers is ignored."""
        name, done, total = progress.name, progress.bytes_done, progress.bytes_total
        if self._transfers.get(name) == (done, total):
            return
        self._transfers[name] = (done, total)
        self.bytes_done[name] = done
        present = bool(getattr(progress, "already_present", False))
        if present:
            self.present.add(name)
        finished = total is not None and done >= total
        if not self.live:
            if finished:
                self._write_line(f"{'already present' if present else 'saved'} {name} ({done:,} bytes)")
        else:
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

    def _set(self, id: str, status: str) -> None:
        if self.statuses.get(id) == status:
            return  # once per change: a poll with no news is not news
        self.statuses[id] = status
        if self.live:
            self._redraw(force=False)
        else:
            self._write_line(f"{self.kinds.get(id, '?')} {id}: {status}")

    def _write_line(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def _redraw(self, *, force: bool) -> None:
        now = self._clock()
        if not force and now - self._last_draw < self._min_interval:
            return
        self._last_draw = now
        width = self._width or shutil.get_terminal_size().columns
        # Cut to the width: a wrapped row would take two lines, and the cursor-up count would be wrong.
        lines = [line[: max(width - 1, 10)] for line in self.table()]
        # Move up over the previous table and clear each line before writing the new one.
        out = "\x1b[F\x1b[2K" * self._drawn_lines + "".join(f"\x1b[2K{line}\n" for line in lines)
        self.stream.write(out)
        self.stream.flush()
        self._drawn_lines = len(lines)

    def table(self) -> list[str]:
        """The lines of the table as it would be drawn now."""
        counts = self.summary_counts()
        by_order = sorted(counts.items(), key=lambda item: (_order(item[0]), item[0]))
        head = ", ".join(f"{n} {status}" for status, n in by_order)
        rows = [f"renders: {len(self.statuses)} ({head})" if self.statuses else "renders: 0"]
        ordered = sorted(
            self.statuses, key=lambda id: _order(self.statuses[id])
        )  # stable: input order within
        shown = ordered if len(ordered) <= self._max_rows else ordered[: self._max_rows - 1]
        rows += [f"  {self.kinds.get(id, '?'):5} {id}  {self.statuses[id]}" for id in shown]
        if len(shown) < len(ordered):
            rest = ordered[len(shown) :]
            rest_counts: dict[str, int] = {}
            for id in rest:
                rest_counts[self.statuses[id]] = rest_counts.get(self.statuses[id], 0) + 1
            detail = ", ".join(f"{n} {status}" for status, n in sorted(rest_counts.items()))
            rows.append(f"  +{len(rest)} more ({detail})")
        if self.bytes_done:
            total = sum(self.bytes_done.values())
            kept = f", {len(self.present)} already present" if self.present else ""
            rows.append(f"files: {len(self.bytes_done)}{kept}, {total / 1e6:,.1f} MB")
        return rows
