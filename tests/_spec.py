"""Spec access for tests: the pinned spec through ``tools/spec_pin.py``; fail under CI, skip elsewhere."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import spec_pin

SpecUnavailable = spec_pin.SpecUnavailable


def spec_path() -> Path:
    """The pinned spec's path, or skip (fail under ``CI=true``) with a one-line reason."""
    try:
        return spec_pin.resolve()
    except SpecUnavailable as exc:
        if spec_pin.strict():
            pytest.fail(f"CI=true and {exc}", pytrace=False)
        pytest.skip(str(exc), allow_module_level=True)


def load_spec() -> dict[str, Any]:
    """The pinned spec, parsed (or skip/fail as :func:`spec_path`)."""
    spec_path()
    return spec_pin.load()


def available() -> bool:
    """Whether the pinned spec is here and matches; never skips or fails by itself."""
    try:
        spec_pin.resolve()
    except SpecUnavailable:
        return False
    return True
