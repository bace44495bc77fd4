"""The emulator's world: configuration, projects, face detections, uploads and the credit balance.

All mutation goes through :class:`State` under one lock, because the same state is touched by request handlers
on the server's event loop and by test code in another thread (thread mode). The critical sections are short
and never await.

Credits work like the real account: a create request is charged up front (402 when the balance is short), and
a render that ends in ``error`` or ``canceled`` is refunded. A video is charged an estimate (its clip length
at 30 fps); at completion the output's real frame rate, drawn from the seed, sets the final cost and the
difference is refunded ("the cost is an estimate and will be adjusted when the video completes"). Refunds
and adjustments of API renders are settled lazily from a heap ordered by end time, so the balance is exact
without scanning projects. Projects inserted by tests (:meth:`State.insert`) are fixtures and never touch
the balance.

Arithmetic on user numbers is bounded: the billed clip length is capped at :data:`MAX_BILLED_SECONDS` and
the image count at :data:`MAX_IMAGES` (the API bills the input file's real length, which the emulator does
not have), so no body, however large its numbers, overflows or allocates without bound.
"""

from __future__ import annotations

import heapq
import random
import shutil
import string
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
from aiohttp import web

from ._clock import Clock, WallTime
from ._lifecycle import DEFAULT_ERROR, ERROR_MESSAGES, REFUNDED, Detection, Project, VideoInfo
from ._media import Media
from ._signing import Signer, iso
from ._tools import Kind, Tool, price

_ALPHABET = string.ascii_lowercase + string.digits
DETECTION_SECONDS = 3.0
MAX_BILLED_SECONDS = 3 * 3600.0
MAX_IMAGES = 16
ESTIMATE_FPS = 30.0
_OUTPUT_FPS = (24.0, 25.0, 30.0)  # what an output's real frame rate turns out to be
_RESOLUTIONS = {"360p": (640, 360), "480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080),
                "4k": (3840, 2160)}  # fmt: skip


@attrs.frozen(kw_only=True)
class UploadedFile:
    """A file received on an upload URL; the bytes live in a temporary file until the emulator stops."""

    file_path: str
    size: int
    sha256: str
    content_type: str | None
    path: Path

    def read_bytes(self) -> bytes:
        """The uploaded bytes (only while the emulator runs)."""
        return self.path.read_bytes()


def _number(value: object, default: float) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(min(max(value, -1e300), 1e300))  # never inf, whatever the JSON integer's size
    return default


def _clip(body: Mapping[str, Any]) -> tuple[float, float, float]:
    """``(start, end, billed seconds)`` of a video body: the clip, or five seconds when it names none."""
    start = _number(body.get("start_seconds"), 0.0)
    end = _number(body.get("end_seconds"), start + 5.0)
    return start, end, min(max(end - start, 0.0), MAX_BILLED_SECONDS)


class State:
    """Everything the request handlers and the test-facing control API share."""

    def __init__(
        self,
        *,
        seed: int,
        speed: float,
        clock: Clock,
        credits: int,
        error_rate: float,
        output_size: int,
        url_ttl: float,
        honor_range: bool,
        token: str,
    ) -> None:
        self.lock = threading.RLock()
        self.seed, self.speed, self.token = seed, speed, token
        self.error_rate, self.output_size = error_rate, output_size
        self.url_ttl, self.honor_range = url_ttl, honor_range
        self.clock = clock
        self.wall = WallTime(clock)
        self.signer = Signer(seed)
        self.media = Media(seed)
        self.projects: dict[str, Project] = {}
        self.detections: dict[str, Detection] = {}
        self.uploads: dict[str, UploadedFile] = {}
        self._balance = credits
        self._refunds: list[tuple[float, str]] = []
        # Separate streams so that, e.g., enabling error_rate does not change the ids a test sees.
        self._ids = random.Random(f"{seed}:ids")
        self._outcomes = random.Random(f"{seed}:outcomes")
        self._upload_dir: Path | None = None
        # Called under the lock when a project is added or its status pinned (the webhook sender's hook).
        self.on_change: Callable[[Project], None] | None = None

    # -- ids and time ---------------------------------------------------------------------------------------
    def new_id(self) -> str:
        """A cuid-like id (``c`` + 24 base-36 characters), deterministic for a seed."""
        while True:
            candidate = "c" + "".join(self._ids.choices(_ALPHABET, k=24))
            if candidate not in self.projects:
                return candidate

    def new_uuid(self) -> str:
        """A UUID-4-shaped id (face detections use UUIDs), deterministic for a seed."""
        hexa = f"{self._ids.getrandbits(128):032x}"
        return f"{hexa[:8]}-{hexa[8:12]}-4{hexa[13:16]}-a{hexa[17:20]}-{hexa[20:]}"

    # -- credits --------------------------------------------------------------------------------------------
    @property
    def balance(self) -> int:
        """Credits left, after refunding renders that have failed by now."""
        with self.lock:
            self._settle()
            return self._balance

    @balance.setter
    def balance(self, value: int) -> None:
        with self.lock:
            self._balance = value

    def _settle(self) -> None:
        now = self.clock()
        while self._refunds and self._refunds[0][0] <= now:
            _, project_id = heapq.heappop(self._refunds)
            self._refund(self.projects[project_id], now)

    def _refund(self, project: Project, now: float) -> None:
        """Settle a billed render that has ended: a refund when it failed, the estimate's excess when done."""
        if not project.billed or project.settled:
            return
        status = project.status(now)
        if status in REFUNDED:
            project.settled = project.refunded = True
            self._balance += project.credits
        elif status == "complete":
            project.settled = True
            self._balance += project.credits - project.credits_charged(status)

    # -- projects -------------------------------------------------------------------------------------------
    def start_render(self, tool: Tool, body: Mapping[str, Any]) -> Project | None:
        """Create the project a valid create request describes; ``None`` when credits are short (402)."""
        outputs, video, final_fps, final_credits = 1, None, None, None
        if tool.kind == "video":
            start, end, seconds = _clip(body)
            width, height = _RESOLUTIONS.get(str(body.get("resolution")), (1280, 720))
            fps = min(max(_number(body.get("fps"), ESTIMATE_FPS), 1.0), 120.0)
            video = VideoInfo(width=width, height=height, fps=fps, start_seconds=start, end_seconds=end)
            credits = max(1, round(seconds * tool.credits)) if tool.credits else 0
        elif tool.kind == "image":
            outputs = min(max(1, int(_number(body.get("image_count"), 1))), MAX_IMAGES)
            credits = price(tool, body) * outputs
        else:
            credits = price(tool, body)
        extension = tool.output_extension
        if tool.type == "AI_GIF" and body.get("output_format") in ("mp4", "webm"):
            extension = str(body["output_format"])
        with self.lock:
            self._settle()
            if credits > self._balance:
                return None
            failed = self._outcomes.random() < self.error_rate
            code = self._outcomes.choice(tool.errors) if failed else None
            if video is not None and not failed:
                # The body's own fps (animation) is the output's; otherwise the input decides, drawn here.
                final_fps = video.fps if "fps" in body else self._outcomes.choice(_OUTPUT_FPS)
                ratio = min(final_fps, ESTIMATE_FPS) / ESTIMATE_FPS
                final_credits = max(1, round(credits * ratio)) if credits else 0
            name = body.get("name")
            project = self._add(
                kind=tool.kind,
                type=tool.type,
                name=name if isinstance(name, str) else None,
                credits=credits,
                duration=tool.duration * self.speed,
                outcome="error" if failed else "complete",
                error=(code, ERROR_MESSAGES.get(code, DEFAULT_ERROR[1])) if code is not None else None,
                outputs=outputs,
                output_size=self.output_size,
                extension=extension,
                video=video,
                final_credits=final_credits,
                final_fps=final_fps,
            )
            if project.name is None:
                project.name = f"{tool.type.replace('_', ' ').title()} - {iso(project.created_wall)}"
            self._balance -= credits
            if failed or final_credits is not None:
                heapq.heappush(self._refunds, (project.ends, project.id))
            return project

    def _add(self, **fields: Any) -> Project:
        project = Project(
            id=fields.pop("id", None) or self.new_id(),
            created=self.clock(),
            created_wall=self.wall(),
            **fields,
        )
        self.projects[project.id] = project
        if self.on_change is not None:
            self.on_change(project)
        return project

    def insert(self, kind: Kind, project_type: str, **fields: Any) -> Project:
        """Add a test fixture project (not billed); see ``Emulator.create_project``."""
        with self.lock:
            if fields.get("id") in self.projects:
                raise ValueError(f"a project with id {fields['id']!r} already exists")
            return self._add(kind=kind, type=project_type, billed=False, **fields)

    def find(self, kind: Kind | None, project_id: str) -> Project | None:
        """The project with this id, or ``None`` when unknown or of another kind (the API answers 404)."""
        project = self.projects.get(project_id)
        return project if project is not None and kind in (None, project.kind) else None

    def get(self, project_id: str) -> Project:
        """The project with this id, of any kind; ``KeyError`` when there is none."""
        project = self.projects.get(project_id)
        if project is None:
            raise KeyError(project_id)
        return project

    def force(self, project_id: str, status: str, error: tuple[str, str] | None = None) -> None:
        """Pin a project's status now (refunding a billed render that is pinned to error or canceled)."""
        with self.lock:
            project = self.get(project_id)
            project.pinned = status
            if status == "error":
                project.error = error or project.error or DEFAULT_ERROR
            self._refund(project, self.clock())
            if self.on_change is not None:
                self.on_change(project)

    # -- face detection -------------------------------------------------------------------------------------
    def start_detection(self) -> Detection:
        """A new face-detection task, finding one to three faces after a few (scaled) seconds."""
        with self.lock:
            detection = Detection(
                id=self.new_uuid(),
                created=self.clock(),
                duration=DETECTION_SECONDS * self.speed,
                outcome="complete",
                faces=1 + self._outcomes.randrange(3),
            )
            self.detections[detection.id] = detection
            return detection

    # -- uploads --------------------------------------------------------------------------------------------
    def upload_dir(self) -> Path:
        """The temporary directory uploads are streamed into, created on first use."""
        with self.lock:
            if self._upload_dir is None:
                self._upload_dir = Path(tempfile.mkdtemp(prefix="magic-hour-emulator-"))
            return self._upload_dir

    def close(self) -> None:
        """Delete uploaded files."""
        with self.lock:
            if self._upload_dir is not None:
                shutil.rmtree(self._upload_dir, ignore_errors=True)
                self._upload_dir = None


STATE_KEY = web.AppKey("magic_hour_async.state", State)
