"""Where the compatibility tests find the official ``magic_hour`` SDK, and what they read from it.

Nothing of the official package is copied into this repository: its ``client.v1`` tree is introspected and
the code samples of the README files it ships are extracted when the tests run.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

OFFICIAL_VERSION = "0.90.0"
SKIP_REASON = (
    f"the official SDK (magic-hour=={OFFICIAL_VERSION}) is not installed; `nox -s compat` installs it and "
    "runs these tests"
)


def official() -> Any:
    """The official package, or skip the calling module with a clear reason."""
    return pytest.importorskip("magic_hour", reason=SKIP_REASON)


def methods(v1: object, prefix: str = "v1") -> dict[str, Any]:
    """``"v1.face_swap.create"`` -> bound method, for every public method under ``client.v1``."""
    found: dict[str, Any] = {}
    for name in dir(v1):
        if name.startswith("_"):
            continue
        value = getattr(v1, name)
        if inspect.ismethod(value):
            found[f"{prefix}.{name}"] = value
        elif not callable(value) and hasattr(value, "__dict__") and not isinstance(value, type):
            found |= methods(value, f"{prefix}.{name}")
    return found


def parameter_names(method: Any) -> tuple[set[str], bool]:
    """The keyword names a method accepts, and whether it takes ``**kwargs`` too."""
    parameters = inspect.signature(method).parameters.values()
    names = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names, any(p.kind is p.VAR_KEYWORD for p in parameters)


@attrs.frozen
class Sample:
    """One ```python block of a README shipped inside the official package."""

    readme: str  # relative to the package, e.g. resources/v1/face_swap/README.md
    index: int  # the block's position in that README
    code: str

    @property
    def name(self) -> str:
        return f"{self.readme}#{self.index}"


_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def samples(package_dir: Path) -> Iterator[Sample]:
    """Every Python sample that builds a client, from every README.md in the installed package."""
    for readme in sorted(package_dir.rglob("README.md")):
        relative = readme.relative_to(package_dir).as_posix()
        blocks = _BLOCK.findall(readme.read_text(encoding="utf-8"))
        for index, code in enumerate(blocks):
            if "Client(" in code and "magic_hour" in code:
                yield Sample(relative, index, code)
