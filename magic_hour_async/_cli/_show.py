"""How the CLI prints projects: for people (local time, durations in words, credits) or as the API's JSON.

``--json`` prints exactly what the API said (plus ``downloaded_paths``), in UTC ISO 8601, so scripts never
depend on the reader's time zone; the human form converts times to the local zone and says how long ago or
how soon they are.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, TextIO

from .._converter import converter
from .._models import Project, VideoProject

__all__ = ["humanise", "local_time", "print_project", "project_json", "project_lines"]


def project_json(project: Project) -> dict[str, Any]:
    """A project as the API's JSON, plus ``downloaded_paths``."""
    data: dict[str, Any] = converter.unstructure(project)
    data["status"] = str(project.status)
    return data


def humanise(seconds: float) -> str:
    """A duration in words a person reads at a glance: ``45 s``, ``12 min``, ``3 h 5 min``, ``2 days 4 h``."""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 or seconds == int(seconds) else f"{seconds:.1f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    unit = "day" if days == 1 else "days"
    return f"{days} {unit} {hours} h" if hours else f"{days} {unit}"


def local_time(moment: datetime, now: datetime) -> str:
    """``2026-12-01 16:04:05 CET, 3 min ago``: the local zone, and the distance from ``now``."""
    if moment.tzinfo is None:  # the converter makes aware datetimes; a naive one is taken as UTC
        moment = moment.replace(tzinfo=timezone.utc)
    delta = (moment - now).total_seconds()
    when = (
        "just now" if abs(delta) < 1 else f"in {humanise(delta)}" if delta > 0 else f"{humanise(delta)} ago"
    )
    return f"{moment.astimezone():%Y-%m-%d %H:%M:%S %Z}, {when}"


def _credits(count: int) -> str:
    return f"{count:,} credit" + ("" if count == 1 else "s")


def project_lines(project: Project, now: datetime) -> list[str]:
    """The human form of ``project``, one field a line."""
    lines = [f"{type(project).__name__} {project.id}: {project.status}"]
    field = "  {:<9}{}".format
    if project.name:
        lines.append(field("name:", project.name))
    if project.type:
        lines.append(field("type:", project.type))
    if project.created_at is not None:
        lines.append(field("created:", local_time(project.created_at, now)))
    lines.append(field("credits:", _credits(project.credits_charged)))
    if isinstance(project, VideoProject) and project.end_seconds > project.start_seconds:
        length = humanise(project.end_seconds - project.start_seconds)
        size = f", {project.width}x{project.height}" if project.width > 0 and project.height > 0 else ""
        rate = f", {project.fps:g} fps" if project.fps > 0 else ""
        lines.append(field("length:", f"{length}{size}{rate}"))
    if not project.enabled:
        lines.append(field("deleted:", "yes (its outputs are gone)"))
    if project.error is not None:
        lines.append(field("error:", f"{project.error.code}: {project.error.message}"))
    for download in project.downloads:
        expiry = f" (expires {local_time(download.expires_at, now)})" if download.expires_at else ""
        lines.append(field("output:", download.url.partition("?")[0] + expiry))
    lines += [field("saved:", path) for path in project.downloaded_paths]
    return lines


def print_project(project: Project, *, as_json: bool, out: TextIO, now: datetime | None = None) -> None:
    if as_json:
        print(json.dumps(project_json(project), indent=2), file=out)
        return
    for line in project_lines(project, now or datetime.now(timezone.utc)):
        print(line, file=out)
