"""The one resolver of the OpenAPI spec the repository was generated from, and its pin.

``tools/spec.lock.json`` names the spec file (under ``../shared/api/``) and its sha256, as Stainless SDKs pin
theirs in ``.stats.yml``. Generators and spec tests call :func:`resolve`: it returns the path when the file is
there and matches the pin. Otherwise it raises :class:`SpecUnavailable` with a one-line reason; callers fail
under ``CI=true`` (a stale generated surface must not pass silently) and skip elsewhere (see :func:`strict`).
``MAGIC_HOUR_OPENAPI`` points at another copy of the same file (the hash still has to match).

The official ``magic-hour`` SDK also serves a few endpoints and older field names the spec lacks. Those facts
live in ``tools/spec_overlay.json`` (paths, field names, types, enums, and the replacement of each deprecated
field); :func:`load_with_overlay` merges them in, so what the generator sees is a superset of both. The spec
wins wherever it already says something.
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
OVERLAY = Path(__file__).with_name("spec_overlay.json")
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


def overlay() -> dict[str, Any]:
    """The overlay of facts from the official SDK (``tools/spec_overlay.json``)."""
    data: dict[str, Any] = json.loads(OVERLAY.read_text(encoding="utf-8"))
    return data


def _body_schema(spec: dict[str, Any], address: str) -> dict[str, Any]:
    """The request-body schema of ``"POST /v1/..."``; ``KeyError`` names the address when it is absent."""
    method, _, path = address.partition(" ")
    try:
        schema: dict[str, Any] = spec["paths"][path][method.lower()]["requestBody"]["content"][
            "application/json"
        ]["schema"]
    except KeyError:
        raise KeyError(
            f"spec_overlay.json names {address}, which neither the spec nor the overlay has"
        ) from None
    return schema


def merge_overlay(spec: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with ``extra`` merged in (a new dict; the arguments are not modified).

    ``paths`` adds whole operations the spec lacks; ``properties`` adds body fields; ``enum_values`` appends
    values to a body field's enum; ``deprecated`` marks body fields deprecated with ``x-replacement`` (the
    field to use instead, or null when the field no longer has any effect).
    """
    merged: dict[str, Any] = json.loads(json.dumps(spec))
    paths = merged.setdefault("paths", {})
    for path, operations in extra.get("paths", {}).items():
        for method, operation in operations.items():
            paths.setdefault(path, {}).setdefault(method, json.loads(json.dumps(operation)))
    for address, fields in extra.get("properties", {}).items():
        properties = _body_schema(merged, address).setdefault("properties", {})
        for name, schema in fields.items():
            properties.setdefault(name, json.loads(json.dumps(schema)))
    for address, fields in extra.get("enum_values", {}).items():
        properties = _body_schema(merged, address)["properties"]
        for name, values in fields.items():
            enum = properties[name]["enum"]
            enum.extend(value for value in values if value not in enum)
    for address, fields in extra.get("deprecated", {}).items():
        properties = _body_schema(merged, address)["properties"]
        for name, replacement in fields.items():
            properties[name]["deprecated"] = True
            properties[name]["x-replacement"] = replacement
    return merged


def load_with_overlay() -> dict[str, Any]:
    """The pinned spec with the official SDK's extra facts merged in: what the generator reads."""
    return merge_overlay(load(), overlay())
