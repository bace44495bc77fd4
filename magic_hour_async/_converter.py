"""The one cattrs converter: every wire-format rule of the API lives here.

- Date-times arrive as ISO 8601 with ``Z`` or an offset (sometimes without either); they decode to aware
  ``datetime`` objects, naive ones taken as UTC.
- ``status`` decodes to a :class:`ProjectStatus` member when known and stays a plain string otherwise.
- Unknown keys are ignored; a missing required key or a wrong type raises :class:`ResponseDecodeError`.
- Unstructuring drops ``None`` values: the API wants optional fields omitted, never sent as null.

cattrs generates one structuring function per class on first use, so decoding costs a function call per
object, not a class construction per response.
"""

from __future__ import annotations

import sys
import types
import typing
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar, cast, get_args, get_origin

import cattrs

from ._exceptions import ResponseDecodeError
from ._models import ProjectStatus

T = TypeVar("T")

_STATUS_BY_VALUE = {member.value: member for member in ProjectStatus}
_UNIONS: tuple[Any, ...] = (typing.Union, getattr(types, "UnionType", typing.Union))  # X | None on 3.10+

converter = cattrs.Converter()


def _structure_datetime(value: Any, _: type) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = _parse_iso(value.strip())
    else:
        raise TypeError(f"expected an ISO 8601 string, got {type(value).__name__}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _parse_iso_compat(text: str) -> datetime:
    """Python 3.10's fromisoformat takes neither ``Z`` nor fractions other than 3 or 6 digits."""
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    dot = text.find(".", 17)
    if dot >= 0:
        end = dot + 1
        while end < len(text) and text[end].isdigit():
            end += 1
        digits = text[dot + 1 : end]
        text = text[: dot + 1] + (digits + "000000")[:6] + text[end:]
    return datetime.fromisoformat(text)


_parse_iso = datetime.fromisoformat if sys.version_info >= (3, 11) else _parse_iso_compat


def _structure_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return _STATUS_BY_VALUE.get(value, value)


def _structure_bool(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected a boolean, got {type(value).__name__}")
    return value


converter.register_structure_hook(datetime, _structure_datetime)
converter.register_unstructure_hook(datetime, lambda value: value.isoformat())
# Every str field goes through here; only status values map to enum members (they compare equal to the
# string, so other fields are unaffected in practice, and ``type`` strings never collide with statuses).
converter.register_structure_hook(str, _structure_str)
converter.register_structure_hook(bool, _structure_bool)


# The same rules without cattrs' detailed validation (which wraps every field in its own error bookkeeping):
# answers that match, nearly all of them, decode about a fifth faster; one that does not is decoded again by
# ``converter`` for an error message naming each bad field.
_fast = converter.copy(detailed_validation=False)


def _hook_of(cls: Any) -> Callable[[Any, Any], Any]:
    """``_fast``'s structuring function for ``cls`` (``get_structure_hook`` since cattrs 24.1)."""
    dispatch: Any = _fast._structure_func  # older cattrs: its dispatcher, whose dispatch(cls) is the same
    lookup: Callable[[Any], Any] = getattr(_fast, "get_structure_hook", None) or dispatch.dispatch
    return cast("Callable[[Any, Any], Any]", lookup(cls))


def _is_optional(cls: Any) -> bool:
    args = get_args(cls)
    return get_origin(cls) in _UNIONS and len(args) == 2 and type(None) in args


def _optional_hook(cls: Any) -> Callable[[Any, Any], Any]:
    """``X | None``: the hook of ``X`` looked up once, not dispatched again for every value decoded."""
    args = get_args(cls)
    inner = args[0] if args[1] is type(None) else args[1]
    structure = _hook_of(inner)
    return lambda value, _: None if value is None else structure(value, inner)


def _is_homogeneous_tuple(cls: Any) -> bool:
    args = get_args(cls)
    return get_origin(cls) is tuple and len(args) == 2 and args[1] is Ellipsis and args[0] is not Any


def _tuple_hook(cls: Any) -> Callable[[Any, Any], Any]:
    """``tuple[X, ...]``: the hook of ``X`` looked up once per type, not once per value."""
    item = get_args(cls)[0]
    structure = _hook_of(item)
    return lambda value, _: tuple([structure(element, item) for element in value])


# Only on the fast path: the detailed converter keeps cattrs' own hooks, whose errors name the bad index.
_fast.register_structure_hook_factory(_is_optional, _optional_hook)
_fast.register_structure_hook_factory(_is_homogeneous_tuple, _tuple_hook)


def decode(data: Any, cls: type[T]) -> T:
    """Structure ``data`` into ``cls``, turning every cattrs/KeyError/TypeError into ResponseDecodeError."""
    try:
        return _fast.structure(data, cls)
    except (cattrs.BaseValidationError, KeyError, TypeError, ValueError, AttributeError):
        pass
    try:
        return converter.structure(data, cls)
    except (cattrs.BaseValidationError, KeyError, TypeError, ValueError) as exc:
        raise ResponseDecodeError(f"response did not match {cls.__name__}: {_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        notes = cattrs.transform_error(exc)
        return "; ".join(notes[:3]) if notes else str(exc)
    return f"{type(exc).__name__}: {exc}"


def encode(value: Any) -> Any:
    """Unstructure a request body, omitting ``None`` values at every depth."""
    return _drop_none(converter.unstructure(value))


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        items = cast("dict[str, Any]", value).items()
        return {key: _drop_none(item) for key, item in items if item is not None}
    if isinstance(value, (list, tuple)):
        return [_drop_none(item) for item in cast("list[Any]", value)]
    return value
