"""What a batch journal records: one :class:`Job` per key, and the :class:`BatchStatus` summary.

A job moves through these states (``run()`` drives it; the journal makes every step durable)::

    pending ──claim──▶ submitting ──POST ok──▶ submitted ──render ends──▶ complete / error / canceled
       │                   │  ▲
       │                   │  └── died mid-POST, or the POST failed after it was sent ──▶ unknown
       └── does not fit max_credits ──▶ over_budget            (resubmitted only on request)

``downloaded`` and ``paths`` record a ``complete`` job's saved outputs. Credits are tracked per job:
``credits_reserved`` is the worst case held against ``max_credits`` from the claim until the render is
settled, ``credits_charged`` what the API reported once it finished (a failed render is refunded: 0), and
``credits_uncertain`` the worst case of earlier attempts whose outcome nobody knows (an ``unknown`` job that
was resubmitted may have been charged for both).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

import attrs

__all__ = ["ACTIVE_STATES", "FINAL_STATES", "STATES", "BatchStatus", "Job", "JobState"]

JobState = Literal[
    "pending", "submitting", "submitted", "complete", "error", "canceled", "unknown", "over_budget"
]
STATES: tuple[JobState, ...] = (
    "pending", "submitting", "submitted", "complete", "error", "canceled", "unknown", "over_budget",
)  # fmt: skip
#: States a run has nothing left to do for (``complete`` may still wait for its download).
FINAL_STATES: frozenset[str] = frozenset({"complete", "error", "canceled", "unknown", "over_budget"})
#: States a run works on.
ACTIVE_STATES: frozenset[str] = frozenset({"pending", "submitting", "submitted"})


@attrs.frozen(kw_only=True)
class Job:
    """One render of a batch, as the journal records it.

    Attributes:
        key: the caller's unique name for the job (``add()`` is idempotent by key).
        tool: the create endpoint's path name, e.g. ``"ai-image-generator"``.
        body: the create request's JSON body, as given to ``add()``.
        state: see :data:`JobState` and the module docstring.
        project_id: the render's id once the create POST answered.
        kind: ``"video"``, ``"image"`` or ``"audio"`` once known.
        estimate: the worst-case credits reserved before the POST (``None``: no price known).
        credits_reserved: credits held against ``max_credits`` now.
        credits_charged: credits the finished render cost (0 for a refunded failure).
        credits_uncertain: worst case of earlier attempts with an unknown outcome.
        downloaded: the outputs of a ``complete`` job are on disk.
        paths: where they were saved.
        error: why the job failed, in one line (API error, render error code, or transport failure).
        attempts: create POSTs sent (more than 1 only after ``resubmit_unknown``).
        updated_at: when the journal row last changed (UTC).
    """

    key: str
    tool: str
    body: Mapping[str, Any]
    state: JobState
    project_id: str | None = None
    kind: str | None = None
    estimate: int | None = None
    credits_reserved: int = 0
    credits_charged: int = 0
    credits_uncertain: int = 0
    downloaded: bool = False
    paths: tuple[str, ...] = ()
    error: str | None = None
    attempts: int = 0
    updated_at: datetime | None = None

    @property
    def finished(self) -> bool:
        """True once no run will do anything more for this job (a ``complete`` one may still download)."""
        return self.state in FINAL_STATES


@attrs.frozen(kw_only=True)
class BatchStatus:
    """Counts of jobs per state and the credits the batch holds, from :meth:`Batch.status`.

    Attributes:
        counts: jobs per state; every state is present (0 when none).
        downloaded: ``complete`` jobs whose outputs are on disk.
        credits_reserved: worst-case credits held by jobs not settled yet (``unknown`` jobs keep theirs).
        credits_charged: credits reported by finished renders.
        credits_uncertain: worst case of resubmitted attempts whose outcome nobody knows.
    """

    counts: Mapping[str, int]
    downloaded: int = 0
    credits_reserved: int = 0
    credits_charged: int = 0
    credits_uncertain: int = 0

    @property
    def total(self) -> int:
        """Jobs in the batch."""
        return sum(self.counts.values())

    @property
    def credits_committed(self) -> int:
        """What counts against ``max_credits``: charged + uncertain + reserved."""
        return self.credits_charged + self.credits_uncertain + self.credits_reserved

    def to_json(self) -> dict[str, Any]:
        """A plain dict for ``--json`` output."""
        return {
            "total": self.total,
            "counts": dict(self.counts),
            "downloaded": self.downloaded,
            "credits_reserved": self.credits_reserved,
            "credits_charged": self.credits_charged,
            "credits_uncertain": self.credits_uncertain,
        }
