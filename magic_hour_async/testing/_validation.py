"""Request checks from the spec's own rules: strict JSON bodies and the generated ``_rules_generated`` table.

``tools/generate_rules.py`` reduces each operation's request schema to the keywords that decide acceptance;
:func:`check` walks a decoded body against that tree and returns the first :class:`Problem`, naming the field
by its dotted path (``style.prompt``, ``assets.image_file_paths[2]``). The SDK's generated models are never
consulted: a mistake in the SDK's generator must not be mirrored by the emulator that tests it.

Semantics follow OpenAPI 3.0 / JSON Schema as the API's validator applies them:

- a missing required field and an explicit ``null`` in a field that is not ``nullable`` are refused;
- ``integer`` accepts integral numbers (``2`` and ``2.0``); booleans are never numbers;
- ``multipleOf`` is decided in decimal arithmetic (``0.29`` is a multiple of ``0.01``), not binary floats;
- ``pattern`` is an ECMAScript regex: unanchored, ``\\w`` ASCII-only, and ``$`` does not match before a final
  newline;
- ``format: uri`` needs a scheme and a non-empty rest without whitespace;
- object fields the schema does not list are accepted unless ``additionalProperties`` says otherwise (the
  spec's default), as the API ignores unknown fields.

:func:`read_json` decodes a body strictly: UTF-8 only, ``application/json`` only, and no ``NaN``/``Infinity``
tokens or numbers that overflow to infinity. Every refusal is a :class:`Problem` with the status and code of
the newest spec's error bodies: 400 ``invalid_request`` for syntax and schema violations.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any, cast

import attrs

from ._rules_generated import OPERATIONS

__all__ = [
    "INVALID",
    "UNPROCESSABLE",
    "Problem",
    "check",
    "check_operation",
    "check_parameters",
    "read_json",
    "rules",
]

INVALID = (400, "invalid_request")
UNPROCESSABLE = (422, "unprocessable_entity")
_LISTED_ENUM = 12  # longer enums are summarised in messages (the voice list has hundreds of names)


@attrs.frozen(kw_only=True)
class Problem:
    """Why a request is refused: the HTTP status, the error body's ``code`` and a message naming the field."""

    message: str
    field: str | None = None
    status: int = INVALID[0]
    code: str = INVALID[1]

    def body(self) -> dict[str, str]:
        """The error body, ``{"code": ..., "message": ...}``."""
        return {"code": self.code, "message": self.message}


def rules(operation: str) -> Mapping[str, Any] | None:
    """The generated rules of ``"POST /v1/face-swap"``, or ``None`` for an operation the spec lacks."""
    return OPERATIONS.get(operation)


# -- strict JSON ---------------------------------------------------------------------------------------------


def _no_constant(token: str) -> object:
    raise ValueError(f"{token} is not valid JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def read_json(raw: bytes, content_type: str | None) -> object | Problem:
    """The decoded JSON body, or the 400 :class:`Problem` for an empty, non-JSON or non-strict body."""
    if not raw.strip():
        return Problem(message="Missing request body")
    media = (content_type or "").partition(";")[0].strip().lower()
    if media != "application/json":
        return Problem(message="Content-Type must be application/json")
    try:
        decoded: object = json.loads(raw.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return Problem(message="Invalid JSON in request body")
    return decoded


# -- the walk ------------------------------------------------------------------------------------------------

_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "array": "an array",
    "object": "an object",
}


def _is_type(value: object, expected: str) -> bool:
    if expected == "string":
        return isinstance(value, str)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "array":
        return isinstance(value, list)
    if expected == "object":
        return isinstance(value, dict)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if expected == "integer":
        return isinstance(value, int) or value.is_integer()
    return expected == "number"


@cache
def _pattern(source: str) -> re.Pattern[str]:
    # ECMAScript: "$" only matches at the very end (Python's also before a final newline), so an unescaped "$"
    # becomes "\Z" (the spec's patterns use it only as the end anchor); "\w", "\d" are ASCII.
    converted = re.sub(r"(?<!\\)\$", r"\\Z", source)
    return re.compile(converted, re.ASCII)


_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+")


def _is_multiple(value: float, step: float) -> bool:
    try:
        return Decimal(repr(value)) % Decimal(repr(step)) == 0
    except InvalidOperation:  # a quotient with more digits than the context holds: far off any grid
        return False


def _number(value: float) -> str:
    return repr(value) if isinstance(value, float) and not value.is_integer() else f"{value:g}"


def _in_enum(value: object, allowed: list[Any]) -> bool:
    # Python's True == 1: a boolean only matches a boolean, a number only a number.
    return any(choice == value and isinstance(choice, bool) == isinstance(value, bool) for choice in allowed)


def _enum_text(allowed: list[Any]) -> str:
    if len(allowed) <= _LISTED_ENUM:
        return "one of: " + ", ".join(str(choice) for choice in allowed)
    shown = ", ".join(str(choice) for choice in allowed[:5])
    return f"one of the {len(allowed)} values the API documents (e.g. {shown})"


def check(rule: Mapping[str, Any], value: object, where: str) -> Problem | None:
    """The first rule ``value`` breaks (a :class:`Problem` naming ``where``), or ``None``."""
    name = where or "body"

    def problem(text: str) -> Problem:
        return Problem(message=f"'{name}' {text}", field=name)

    if value is None:
        return None if rule.get("nullable") else problem("must not be null")
    for child in rule.get("allOf", ()):
        first = check(child, value, where)
        if first is not None:
            return first
    for key in ("anyOf", "oneOf"):
        options = rule.get(key)
        if options:
            results = [check(child, value, where) for child in options]
            passed = sum(1 for result in results if result is None)
            if passed == 0:
                return results[0]
            if key == "oneOf" and passed > 1:
                return problem("matches more than one of the allowed shapes")
    expected = rule.get("type")
    if isinstance(expected, str) and not _is_type(value, expected):
        return problem(f"must be {_TYPE_NAMES.get(expected, expected)}")
    allowed = rule.get("enum")
    if allowed is not None and not _in_enum(value, allowed):
        return problem(f"must be {_enum_text(allowed)}")
    if isinstance(value, str):
        return _check_string(rule, value, problem)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _check_number(rule, value, problem)
    if isinstance(value, list):
        return _check_array(rule, cast("list[object]", value), name, problem)
    if isinstance(value, dict):
        return _check_object(rule, cast("dict[str, object]", value), where)
    return None


def _check_string(rule: Mapping[str, Any], value: str, problem: Callable[[str], Problem]) -> Problem | None:
    low, high = rule.get("minLength"), rule.get("maxLength")
    if low is not None and len(value) < low:
        return problem("must not be empty" if low == 1 else f"must be at least {low} characters long")
    if high is not None and len(value) > high:
        return problem(f"must be at most {high} characters long")
    pattern = rule.get("pattern")
    if pattern is not None and _pattern(pattern).search(value) is None:
        return problem(f"must match the pattern {pattern}")
    if rule.get("format") == "uri" and _URI.fullmatch(value) is None:
        return problem("must be a URI (with a scheme, e.g. https://...)")
    return None


def _check_number(rule: Mapping[str, Any], value: float, problem: Callable[[str], Problem]) -> Problem | None:
    low, high = rule.get("minimum"), rule.get("maximum")
    if low is not None:
        if rule.get("exclusiveMinimum") is True and not value > low:
            return problem(f"must be greater than {_number(low)}")
        if value < low:
            return problem(f"must be greater than or equal to {_number(low)}")
    if high is not None:
        if rule.get("exclusiveMaximum") is True and not value < high:
            return problem(f"must be less than {_number(high)}")
        if value > high:
            return problem(f"must be less than or equal to {_number(high)}")
    # OpenAPI 3.1 / JSON Schema numeric exclusive bounds, should a spec use them.
    floor: object = rule.get("exclusiveMinimum")
    ceiling: object = rule.get("exclusiveMaximum")
    if isinstance(floor, (int, float)) and not isinstance(floor, bool) and not value > floor:
        return problem(f"must be greater than {_number(floor)}")
    if isinstance(ceiling, (int, float)) and not isinstance(ceiling, bool) and not value < ceiling:
        return problem(f"must be less than {_number(ceiling)}")
    step = rule.get("multipleOf")
    if step is not None and not _is_multiple(value, step):
        return problem(f"must be a multiple of {_number(step)}")
    return None


def _check_array(
    rule: Mapping[str, Any], value: list[object], name: str, problem: Callable[[str], Problem]
) -> Problem | None:
    low, high = rule.get("minItems"), rule.get("maxItems")
    if low is not None and len(value) < low:
        return problem("must not be empty" if low == 1 else f"must have at least {low} items")
    if high is not None and len(value) > high:
        return problem(f"must have at most {high} items")
    if rule.get("uniqueItems"):
        seen = [json.dumps(item, sort_keys=True) for item in value]
        if len(set(seen)) != len(seen):
            return problem("must not repeat items")
    items = rule.get("items")
    if items is not None:
        for index, item in enumerate(value):
            found = check(items, item, f"{name}[{index}]")
            if found is not None:
                return found
    return None


def _check_object(rule: Mapping[str, Any], value: dict[str, object], where: str) -> Problem | None:
    prefix = f"{where}." if where else ""
    properties: Mapping[str, Any] = rule.get("properties", {})
    for required in rule.get("required", ()):
        if required not in value:
            return Problem(message=f"'{prefix}{required}' is required", field=prefix + required)
    extra = rule.get("additionalProperties", True)
    for key, child in value.items():
        sub: object = properties.get(key)
        if sub is None:
            if extra is False:
                return Problem(message=f"'{prefix}{key}' is not a known field", field=prefix + key)
            if not isinstance(extra, dict):
                continue
            sub = cast("dict[str, Any]", extra)
        found = check(cast("Mapping[str, Any]", sub), child, prefix + key)
        if found is not None:
            return found
    return None


def check_operation(operation: str, body: object) -> Problem | None:
    """Check a decoded body against the generated rules of ``operation`` (no rules: nothing to check)."""
    entry = rules(operation)
    if entry is None or "body" not in entry:
        return None
    return check(entry["body"], body, "")


_INTEGER = re.compile(r"-?[0-9]{1,30}")


def _parameter(rule: Mapping[str, Any], text: str) -> object:
    """A parameter's text as the type its rule names (the text itself when it does not parse)."""
    kind = rule.get("type")
    if kind == "integer" and _INTEGER.fullmatch(text):
        return int(text)
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            return text
        return number if math.isfinite(number) else text
    if kind == "boolean" and text in ("true", "false"):
        return text == "true"
    return text


def check_parameters(operation: str, query: Mapping[str, str], path: Mapping[str, str]) -> Problem | None:
    """Check the query and path parameters of ``operation`` against their generated rules."""
    entry = rules(operation)
    if entry is None:
        return None
    for where, given in (("path", path), ("query", query)):
        for name, rule in cast("Mapping[str, Mapping[str, Any]]", entry.get(where, {})).items():
            if name not in given:
                if rule.get("required"):
                    return Problem(message=f"'{name}' is required", field=name)
                continue
            found = check({**rule, "required": ()}, _parameter(rule, given[name]), name)
            if found is not None:
                return found
    return None
