"""The one resolver of the OpenAPI spec the repository was generated from, and its pin.

``tools/spec.lock.json`` names the spec file (under ``../shared/api/``) and its sha256, as Stainless SDKs pin
theirs in ``.stats.yml``. Generators and spec tests call :func:`resolve`: it returns the path when the file is
there and matches the pin. Otherwise it raises :class:`SpecUnavailable` with a one-line reason; callers fail
under ``CI=true`` (a stale generated surface must not pass silently) and skip elsewhere (see :func:`strict`).
``MAGIC_HOUR_OPENAPI`` points at another copy of the same file (the hash still has to match).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SHARED_API = REPO.parent / "shared" / "api"
LOCK = Path(__file__).with_name("spec.lock.json")
SPEC_ENV = "MAGIC_HOUR_OPENAPI"


class SpecUnavailable(Exception):
    """The pinned spec is missing or differs from the pin."""


def pin() -> dict[str, str]:
    """The pinned ``{"file": ..., "sha256": ...}``."""
    data: dict[str, str] = json.loads(LOCK.read_text(encoding="utf-8"))
    return data


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def strict() -> bool:
    """Whether a missing or mismatched spec is a failure (CI) rather than a skip (elsewhere)."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def location() -> Path:
    """Where the pinned spec is expected (it may be absent)."""
    return Path(os.environ.get(SPEC_ENV) or SHARED_API / pin()["file"])


def resolve() -> Path:
    """The pinned spec's path; :class:`SpecUnavailable` when it is absent or its hash differs from the pin."""
    path = location()
    if not path.is_file():
        raise SpecUnavailable(f"the pinned spec {pin()['file']} is not at {path} (set {SPEC_ENV})")
    digest = sha256(path)
    if digest != pin()["sha256"]:
        raise SpecUnavailable(
            f"{path} has sha256 {digest[:12]}..., the pin says {pin()['sha256'][:12]}... "
            f"(regenerate with `nox -s gen` and update {LOCK.name})"
        )
    return path


def load() -> dict[str, Any]:
    """The pinned spec, parsed."""
    spec: dict[str, Any] = json.loads(resolve().read_text(encoding="utf-8"))
    return spec
