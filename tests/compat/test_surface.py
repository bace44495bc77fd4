"""Every method of the official SDK's ``client.v1`` tree exists here and accepts every parameter name it does.

Both trees are introspected at test time, for ``Client`` and ``AsyncClient``: a method the official SDK has
and this one lacks, or a parameter name it accepts and this one would reject with ``TypeError``, fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import magic_hour_async as mh
from tests.compat._official import methods, official, parameter_names

magic_hour = official()
TOKEN = "mhk_compat_surface"
#: What the official 0.90.0 tree holds (issue 14): a drop in this number means the introspection broke.
OFFICIAL_METHODS = 78


@pytest.fixture(params=["Client", "AsyncClient"])
def trees(request: pytest.FixtureRequest) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    name: str = request.param
    theirs = methods(getattr(magic_hour, name)(token=TOKEN).v1)
    client = getattr(mh, name)(token=TOKEN)
    try:
        yield theirs, methods(client.v1)
    finally:
        if isinstance(client, mh.Client):
            client.close()


def test_every_official_method_exists_here(trees: tuple[dict[str, Any], dict[str, Any]]) -> None:
    theirs, ours = trees
    assert len(theirs) == OFFICIAL_METHODS
    assert sorted(set(theirs) - set(ours)) == []


def test_every_official_parameter_name_is_accepted_here(trees: tuple[dict[str, Any], dict[str, Any]]) -> None:
    theirs, ours = trees
    rejected: list[str] = []
    for path, method in sorted(theirs.items()):
        if path not in ours:
            continue  # reported by the test above
        accepted, open_kwargs = parameter_names(ours[path])
        wanted, _ = parameter_names(method)
        if not open_kwargs:
            rejected += [f"{path}({name}=...)" for name in sorted(wanted - accepted)]
    assert rejected == []


def test_official_positional_parameters_keep_their_positions(
    trees: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """``check_result(id, True, True)`` as the official SDK allows: positional parameters line up."""
    import inspect

    theirs, ours = trees
    moved: list[str] = []
    for path, method in sorted(theirs.items()):
        positional = [
            p.name
            for p in inspect.signature(method).parameters.values()
            if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        ]
        if positional and path in ours:
            here = list(inspect.signature(ours[path]).parameters)[: len(positional)]
            if here != positional:
                moved.append(f"{path}: {positional} here {here}")
    assert moved == []
