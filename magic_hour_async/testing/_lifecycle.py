"""Render jobs and face detections, and how their status follows from the clock.

A job never runs anything: its status is a pure function of the clock. It is ``queued`` for the first
``QUEUED_FRACTION`` of its duration, ``rendering`` until the duration has passed, and then sits in its
precomputed ``outcome`` (``complete``, ``error`` or ``canceled``). The outcome and error code are drawn from
the seeded generator when the job is created, so a run is reproducible. Tests override this by *pinning* a
status (``pinned``), which wins over the clock: that is how ``Emulator.complete()/fail()/cancel()`` and
``create_project(status=...)`` work, including unknown status strings for robustness tests.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from ._tools import Kind

QUEUED_FRACTION = 0.2
TERMINAL = frozenset({"complete", "error", "canceled"})
REFUNDED = frozenset({"error", "canceled"})

# Realistic job error codes and the messages the API pairs with them (WEBHOOKS.md section 12); which codes a
# tool may end with is the tool's row (``Tool.errors``).
ERROR_MESSAGES: Mapping[str, str] = {
    "invalid_video_file": "The video file could not be processed. Please upload a valid video.",
    "processing_timeout": "The render took too long and was stopped. Please try again.",
    "no_source_face": "Please use an image with a detectable face",
    "unknown_error": "An unexpected error occurred. Your credits have been refunded.",
    "content_policy_violation": "The request was rejected by the content policy.",
    "invalid_file_format": "The input file format is not supported.",
    "text_too_long": "The text is too long for a single render.",
    "invalid_voice": "The requested voice is not available.",
}
_FIRST_ERROR: Mapping[Kind, str] = {
    "video": "invalid_video_file",
    "image": "content_policy_violation",
    "audio": "text_too_long",
}
DEFAULT_ERROR = ("unknown_error", ERROR_MESSAGES["unknown_error"])


def job_error(kind: Kind, code: str | None = None, message: str | None = None) -> tuple[str, str]:
    """``(code, message)`` of a failed job: a usual code of the kind by default, its usual message."""
    code = code or _FIRST_ERROR[kind]
    return code, message or ERROR_MESSAGES.get(code, DEFAULT_ERROR[1])


@attrs.frozen(kw_only=True)
class VideoInfo:
    """The video-only fields of a project."""

    width: int = 1280
    height: int = 720
    fps: float = 30.0
    start_seconds: float = 0.0
    end_seconds: float = 5.0


def _phase(elapsed: float, duration: float, final: str) -> str:
    if elapsed < duration * QUEUED_FRACTION:
        return "queued"
    if elapsed < duration:
        return "rendering"
    return final


@attrs.define(slots=True, kw_only=True)
class Project:
    """A video, image or audio project; mutable only through the emulator's lock."""

    id: str
    kind: Kind
    type: str
    name: str | None
    created: float
    created_wall: float
    duration: float
    outcome: str
    error: tuple[str, str] | None
    credits: int
    outputs: int
    output_size: int
    extension: str
    video: VideoInfo | None = None
    enabled: bool = True
    pinned: str | None = None
    billed: bool = True
    refunded: bool = False
    settled: bool = False
    #: What a video render really cost and its real frame rate, known at completion: the create answer and
    #: every GET before ``complete`` show the estimate (``credits``, ``video.fps``), as the docs describe.
    final_credits: int | None = None
    final_fps: float | None = None

    @property
    def ends(self) -> float:
        """Clock time at which the job reaches its outcome."""
        return self.created + self.duration

    def status(self, now: float) -> str:
        """The status at clock time ``now``."""
        if self.pinned is not None:
            return self.pinned
        return _phase(now - self.created, self.duration, self.outcome)

    def credits_charged(self, status: str) -> int:
        """The estimate until ``complete``, then the final cost; failed and canceled renders are refunded
        (the API reports the refund in ``credits_charged``)."""
        if status in REFUNDED:
            return 0
        if status == "complete" and self.final_credits is not None:
            return self.final_credits
        return self.credits

    def fps(self, status: str) -> float:
        """A video's frame rate: the estimate until ``complete``, then the output's real one."""
        assert self.video is not None
        if status == "complete" and self.final_fps is not None:
            return self.final_fps
        return self.video.fps


@attrs.define(slots=True, kw_only=True)
class Detection:
    """A face-detection task: its own statuses (no ``canceled``) and a list of faces once complete."""

    id: str
    created: float
    duration: float
    outcome: str
    faces: int

    def status(self, now: float) -> str:
        """The status at clock time ``now``."""
        return _phase(now - self.created, self.duration, self.outcome)
