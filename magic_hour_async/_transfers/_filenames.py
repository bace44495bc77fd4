"""Local file names for downloaded outputs: unique per project and output, confined to the target directory.

The scheme is ``{project_id}-{basename}`` for a project with one output and
``{project_id}-{index}-{basename}`` (``index`` 0-based, as in ``project.downloads[index]``) for several, where
``basename`` is the last segment of the URL's path. Two projects whose URLs both end in ``output.mp4``
therefore never share a name, and neither do two outputs of one project.

Both parts come from the network and are cleaned the same way: the URL path is percent-decoded once, split on
``/`` and ``\\`` and only its last segment kept (``..%2F..%2Fetc%2Fpasswd`` gives ``passwd``); control
characters and NUL are dropped; anything outside ``[A-Za-z0-9._-]`` becomes ``_``; leading dots (hidden
files, ``..``) and trailing dots (Windows) are stripped; an empty result becomes ``output``; long names are
cut, keeping the extension. A project id that needed cleaning gets a short hash of the original appended, so
two ids that clean to the same text still differ. :func:`confine` checks the resolved path as a last defence.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .._exceptions import DownloadError

__all__ = ["clean_component", "confine", "output_filename"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_ID = 64
# Leaves room for the id, the index and the ``.{name}.{random}.part`` temporary name within 255 bytes.
_MAX_BASENAME = 120
_MAX_EXTENSION = 16
FALLBACK = "output"


def clean_component(text: str, *, limit: int, fallback: str = FALLBACK) -> str:
    """``text`` reduced to a safe single path component of at most ``limit`` characters."""
    text = _UNSAFE.sub("_", _CONTROL.sub("", text)).lstrip(".").rstrip(". ")
    if not text:
        return fallback
    if len(text) <= limit:
        return text
    stem, dot, extension = text.rpartition(".")
    if dot and stem and 0 < len(extension) <= _MAX_EXTENSION:
        return stem[: limit - len(extension) - 1] + "." + extension
    return text[:limit]


def url_basename(url: str) -> str:
    """The last path segment of ``url``, percent-decoded once; query string and fragment ignored."""
    path = unquote(urlsplit(url).path, errors="replace")
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _clean_id(project_id: str) -> str:
    cleaned = clean_component(project_id, limit=_MAX_ID, fallback="project")
    if cleaned != project_id:
        digest = hashlib.sha256(project_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        cleaned = f"{cleaned}_{digest}"
    return cleaned


def output_filename(project_id: str, url: str, *, index: int, count: int) -> str:
    """The local file name for output ``index`` of ``count`` of a project (see the module docstring).

    Example:
        ``output_filename("cm1", "https://cdn/x/output.mp4?sig=...", index=0, count=1) == "cm1-output.mp4"``
    """
    basename = clean_component(url_basename(url), limit=_MAX_BASENAME)
    prefix = _clean_id(project_id)
    return f"{prefix}-{basename}" if count == 1 else f"{prefix}-{index}-{basename}"


def confine(root: Path, name: str) -> Path:
    """``root / name``, after checking it resolves to a direct child of the resolved ``root``.

    Raises:
        DownloadError: the name would land elsewhere (a separator, ``..``, a symlink planted there).
    """
    resolved_root = root.resolve()
    target = resolved_root / name
    if name in ("", ".", "..") or target.resolve().parent != resolved_root:
        raise DownloadError(f"refusing to write {name!r}: it would land outside {resolved_root}")
    return target
