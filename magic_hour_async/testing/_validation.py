"""Create bodies checked against the SDK's generated request models, the classes clients build.

The generated attrs classes (``magic_hour_async/_generated``) carry what a body must satisfy: which fields
are required, their JSON names (field metadata ``wire``), their types, ``Literal`` enums, and the class of
each nested object (metadata ``model``). Walking a JSON body against them gives the emulator the spec's rules
without reading the spec at run time; numeric ranges, which types do not carry, stay in ``_tools``.
"""

from __future__ import annotations

import sys
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any, Literal, Union, cast

import attrs

from .. import _generated as generated
from .._resources.create import MODEL, WIRE, AsyncCreateResource

__all__ = ["body_models", "check_body"]


@cache
def body_models() -> dict[str, type[Any]]:
    """The generated body class of every create endpoint, by path (``/v1/ai-image-generator``)."""
    found: dict[str, type[Any]] = {}
    for name in generated.__all__:
        resource: object = getattr(generated, name)
        if not (isinstance(resource, type) and issubclass(resource, AsyncCreateResource)):
            continue
        module = sys.modules[resource.__module__]
        found[resource._path] = getattr(module, resource.__name__.removeprefix("Async") + "Body")
    return found


def check_body(model: type[Any], body: Mapping[str, Any], prefix: str = "") -> str | None:
    """The first rule ``body`` breaks (a 422 message), or None: required fields, types, enums, nesting."""
    hints = _hints(model)
    for field in attrs.fields(cast("type[attrs.AttrsInstance]", model)):
        name = field.metadata.get(WIRE, field.name)
        where = f"{prefix}{name}"
        value = body.get(name)
        if value is None:
            if field.default is attrs.NOTHING:
                return f"'{where}' is required"
            continue
        nested = field.metadata.get(MODEL)
        problem = (
            _check_nested(nested, value, where)
            if nested is not None
            else _check_type(hints[field.name], value, where)
        )
        if problem is not None:
            return problem
    return None


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(model: type[Any]) -> dict[str, Any]:
    hints = _HINTS.get(model)
    if hints is None:
        hints = _HINTS[model] = typing.get_type_hints(model)
    return hints


def _check_nested(model: type[Any], value: object, where: str) -> str | None:
    items: list[object] = cast("list[object]", value) if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, Mapping):
            return f"'{where}' must be an object"
        problem = check_body(model, cast("Mapping[str, Any]", item), where + ".")
        if problem is not None:
            return problem
    return None


def _check_type(annotation: Any, value: object, where: str) -> str | None:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        options = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if str in options and any(typing.get_origin(arg) is Literal for arg in options):
            # ``Literal[...] | str``: a long enum left open for typed callers; the spec lists the values.
            options.remove(str)
        problems = [_check_type(option, value, where) for option in options]
        return None if any(p is None for p in problems) else problems[0]
    if origin is Literal:
        allowed = typing.get_args(annotation)
        if isinstance(value, bool) or value not in allowed:
            return f"'{where}' must be one of: {', '.join(str(choice) for choice in allowed)}"
        return None
    if origin in (list, tuple) or annotation in (list, tuple):
        if not isinstance(value, list):
            return f"'{where}' must be an array"
        args = [arg for arg in typing.get_args(annotation) if arg is not Ellipsis]
        for item in cast("list[object]", value):
            problem = _check_type(args[0], item, where) if args else None
            if problem is not None:
                return problem
        return None
    expected = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(annotation)
    if expected is None:
        return None
    ok = (
        isinstance(value, bool)
        if annotation is bool
        else not isinstance(value, bool)
        and (isinstance(value, (int, float)) if annotation is float else isinstance(value, annotation))
    )
    return None if ok else f"'{where}' must be {expected}"
