"""The API's project objects as frozen attrs classes.

Field names are the API's snake_case names. Only ``id`` and ``status`` are required when decoding: the API's
own spec lists fields as required that it never sends, so every other field has a neutral default and unknown
fields are ignored. ``status`` keeps unknown values as plain strings (never terminal), so a new status on the
server never aborts a wait.
"""

from __future__ import annotations

import enum
import json
from datetime import datetime
from typing import Any, TypeVar, cast

import attrs

from ._exceptions import RenderError
from ._http._redact import redact_url
from ._resources._polled import TERMINAL_STATUSES

__all__ = [
    "AudioProject",
    "CreateResponse",
    "Download",
    "ImageProject",
    "Project",
    "ProjectError",
    "ProjectStatus",
    "VideoProject",
    "WireModel",
]


class ProjectStatus(str, enum.Enum):
    """The statuses the API documents. A project's ``status`` equals its string: ``status == "complete"``."""

    DRAFT = "draft"
    QUEUED = "queued"
    RENDERING = "rendering"
    COMPLETE = "complete"
    ERROR = "error"
    CANCELED = "canceled"

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        # Reads as the plain string it equals: ``VideoProject(status='complete', ...)``.
        return repr(self.value)


def _wire(value: object) -> Any:
    """``value`` in the API's JSON shape: wire names, ISO 8601 strings, plain strings and lists."""
    if attrs.has(type(value)):
        return {
            field.metadata.get("wire", field.name): _wire(getattr(value, field.name))
            for field in attrs.fields(cast("type[attrs.AttrsInstance]", type(value)))
        }
    if isinstance(value, enum.Enum):
        return _wire(value.value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_wire(item) for item in cast("list[object]", value)]
    if isinstance(value, dict):
        return {str(key): _wire(item) for key, item in cast("dict[object, object]", value).items()}
    return value


class WireModel:
    """``model_dump()`` and ``model_dump_json()``, as on the official SDK's pydantic models.

    Both give the wire format: the API's snake_case keys, date-times as ISO 8601 strings, statuses as plain
    strings. ``attrs.asdict(model)`` still gives the Python values (``datetime`` objects).
    """

    __slots__ = ()

    def model_dump(self) -> dict[str, Any]:
        """The model as the API's JSON object (a new dict)."""
        dumped: dict[str, Any] = _wire(self)
        return dumped

    def model_dump_json(self, *, indent: int | None = None) -> str:
        """The model as a JSON document in the API's format."""
        return json.dumps(self.model_dump(), indent=indent, ensure_ascii=False)


_FAILED_STATUSES = frozenset({"error", "canceled"})


@attrs.frozen(kw_only=True)
class Download(WireModel):
    """One output file: a signed URL that expires (typically after 24 hours).

    The repr hides the URL's query (its signature), so a logged or printed project leaks no access.
    """

    url: str = attrs.field(repr=lambda url: repr(redact_url(url)))
    expires_at: datetime | None = None


@attrs.frozen(kw_only=True)
class ProjectError(WireModel):
    """Why a render failed: an open ``code`` string (e.g. ``no_source_face``) and a human ``message``."""

    code: str
    message: str


@attrs.frozen(kw_only=True)
class Project(WireModel):
    """Fields shared by video, image and audio projects."""

    id: str
    status: str
    name: str | None = None
    type: str = ""
    created_at: datetime | None = None
    enabled: bool = True
    credits_charged: int = 0
    downloads: tuple[Download, ...] = ()
    error: ProjectError | None = None
    #: Local paths saved by ``check_result(download_outputs=True)``; empty when nothing was downloaded.
    downloaded_paths: list[str] = attrs.field(factory=list[str], hash=False)

    @property
    def is_terminal(self) -> bool:
        """True once the status is ``complete``, ``error`` or ``canceled``."""
        return self.status in TERMINAL_STATUSES

    def raise_for_status(self: _P) -> _P:
        """Raise :class:`RenderError` if the render ended in ``error`` or ``canceled``; else return self.

        Example:
            ``project = (await client.v1.video_projects.wait(id=pid)).raise_for_status()``
        """
        if self.status in _FAILED_STATUSES:
            code = self.error.code if self.error else None
            detail = f"{self.error.code}: {self.error.message}" if self.error else "no details"
            raise RenderError(
                f"{type(self).__name__} {self.id} ended {self.status} ({detail})",
                project=self,
                code=code,
            )
        return self


_P = TypeVar("_P", bound=Project)


@attrs.frozen(kw_only=True)
class VideoProject(Project):
    """A video render (``GET /v1/video-projects/{id}``). ``width``/``height`` of -1 mean unknown.

    ``download`` is the first of ``downloads`` (``None`` until there is one), as the API sends it;
    ``total_frame_cost`` is the frame cost the API reports (0 when it sends none).
    """

    width: int = -1
    height: int = -1
    fps: float = 0.0
    start_seconds: float = 0.0
    end_seconds: float = 0.0
    download: Download | None = None
    total_frame_cost: int = 0


@attrs.frozen(kw_only=True)
class ImageProject(Project):
    """An image render (``GET /v1/image-projects/{id}``); ``downloads`` holds ``image_count`` outputs."""

    image_count: int = 0
    total_frame_cost: int = 0


@attrs.frozen(kw_only=True)
class AudioProject(Project):
    """An audio render (``GET /v1/audio-projects/{id}``)."""


@attrs.frozen(kw_only=True)
class CreateResponse(WireModel):
    """What a create endpoint returns: the new project's ``id`` and the credits charged up front."""

    id: str
    credits_charged: int = 0
    frame_cost: int | None = None
    estimated_frame_cost: int | None = None


# Resolve the string annotations now, while this module is their home: the package re-homes public classes
# (``__module__ = "magic_hour_async"``), after which cattrs could not find ``datetime`` by name.
_PUBLIC = (Download, ProjectError, Project, VideoProject, ImageProject, AudioProject, CreateResponse)
for _cls in _PUBLIC:
    attrs.resolve_types(_cls)
# Then the public home, whether or not the package attribute was read first (it loads this module lazily).
for _home in (*_PUBLIC, ProjectStatus, WireModel):
    _home.__module__ = "magic_hour_async"
