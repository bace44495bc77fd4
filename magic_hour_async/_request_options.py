"""``request_options``: per-call overrides every API method accepts, as the official SDK's methods do.

A ``RequestOptions`` dict may set ``timeout`` (seconds for this call, replacing the client's total),
``additional_headers`` (sent with this call; the SDK's own ``Authorization`` and ``User-Agent`` cannot be
replaced through it) and ``additional_params`` (added to the query string). :func:`resolve` checks the dict
once, before anything is sent, and turns it into what the transport takes; an unknown key is a
:class:`ConfigurationError` rather than a silently ignored typo.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, TypedDict, cast
from urllib.parse import urlencode

from ._exceptions import ConfigurationError

__all__ = ["RequestOptions", "Sent", "resolve"]

#: Headers the SDK owns: the credentials and its own identification.
_PROTECTED = frozenset({"authorization", "user-agent"})


class RequestOptions(TypedDict, total=False):
    """Per-call overrides: ``timeout`` (seconds), ``additional_headers``, ``additional_params`` (query)."""

    timeout: float
    additional_headers: Mapping[str, str]
    additional_params: Mapping[str, Any]


class Sent(NamedTuple):
    """What a call's options change: the path (with any extra query), extra headers, the total timeout."""

    path: str
    headers: Mapping[str, str] | None = None
    timeout: float | None = None


def _query_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def resolve(path: str, options: RequestOptions | Mapping[str, Any] | None) -> Sent:
    """Apply ``options`` to a request for ``path``; :class:`ConfigurationError` for anything malformed."""
    if not options:
        return Sent(path)
    if not isinstance(options, Mapping):
        raise ConfigurationError(f"request_options must be a dict, not {type(options).__name__}")
    unknown = sorted(set(options) - {"timeout", "additional_headers", "additional_params"})
    if unknown:
        raise ConfigurationError(
            f"request_options has unknown keys {unknown}; use timeout, additional_headers, additional_params"
        )
    timeout = options.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0
    ):
        raise ConfigurationError(
            f"request_options timeout must be a positive number of seconds, not {timeout!r}"
        )
    headers = dict(options.get("additional_headers") or {})
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ConfigurationError("request_options additional_headers must map strings to strings")
        if name.lower() in _PROTECTED:
            raise ConfigurationError(f"request_options cannot replace the {name} header the client sets")
    params = options.get("additional_params") or {}
    if params:
        pairs: list[tuple[str, str]] = []
        for key, value in dict(params).items():
            if value is None:
                continue
            items: list[object] = (
                list(cast("list[object]", value)) if isinstance(value, (list, tuple)) else [value]
            )
            pairs += [(str(key), _query_value(item)) for item in items]
        if pairs:
            path += ("&" if "?" in path else "?") + urlencode(pairs)
    return Sent(path, headers or None, float(timeout) if timeout is not None else None)
