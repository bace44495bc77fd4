"""Secrets out of text: the API token and signed URL query strings never reach a message, a log or a body.

Two kinds of secret travel with requests. The token is known up front, so it is replaced wherever it occurs
(a server may echo it in an error body or header; aiohttp may quote the ``Authorization`` header). A signed
download or upload URL carries its authority in the query string (``X-Amz-Signature=...``), and the URL
may be a redirect target we never saw, so every ``http(s)://...?query`` in a text loses its query, and the
query values of the URL we did send (long enough to be a signature) are replaced wherever they occur on
their own (storage error pages quote the signature they received).

Pure string functions, no I/O: the exception tree (:mod:`.._exceptions`) and the transport both call them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

__all__ = ["REDACTED", "redact_url", "scrub", "scrub_value", "url_secrets"]

REDACTED = "<redacted>"

# A URL's query: up to whitespace, a quote or a bracket (URLs are quoted in reprs and messages).
_URL_QUERY = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s?#'\"<>()\[\]]*)\?[^\s#'\"<>()\[\]]*")
# Query values shorter than this (``Expires=1``, ``X-Amz-Algorithm=...``) are not worth hiding on their own.
_MIN_SECRET = 8


def redact_url(url: str) -> str:
    """A URL fit for logs and messages: its query string, if any, is replaced."""
    base, sep, _ = url.partition("?")
    return base + ("?" + REDACTED if sep else "")


def url_secrets(url: str) -> tuple[str, ...]:
    """What to scrub besides the URL itself: its whole query and each of its longer values."""
    query = url.partition("?")[2].partition("#")[0]
    if not query:
        return ()
    values = {value for _, value in parse_qsl(query, keep_blank_values=False) if len(value) >= _MIN_SECRET}
    raw = {part.partition("=")[2] for part in query.split("&")}
    values |= {value for value in raw if len(value) >= _MIN_SECRET}
    # Longest first: a value that contains another is replaced whole.
    return (query, *sorted(values, key=len, reverse=True))


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without any of ``secrets`` and without the query string of any URL in it."""
    if "://" in text and "?" in text:
        text = _URL_QUERY.sub(r"\1?" + REDACTED, text)
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text


def scrub_value(value: Any, secrets: Iterable[str] = (), *, max_depth: int = 100) -> Any:
    """A decoded JSON value with every string scrubbed (keys too); containers are copied, others kept.

    Raises ValueError for a value nested deeper than ``max_depth``: an error body like that is kept as text
    (its ``repr`` or pickle would recurse as deep).
    """
    found = tuple(secrets)
    # An explicit stack, not recursion: a deeply nested body must not raise RecursionError here.
    root: list[Any] = [value]
    stack: list[tuple[Any, Any, Any, int]] = [(root, 0, value, 0)]
    while stack:
        parent, key, item, depth = stack.pop()
        if isinstance(item, str):
            parent[key] = scrub(item, found)
            continue
        if not isinstance(item, (Mapping, list)):
            continue
        if depth >= max_depth:
            raise ValueError(f"nested deeper than {max_depth} levels")
        if isinstance(item, Mapping):
            copy: dict[Any, Any] = {}
            entries: list[tuple[Any, Any]] = list(item.items())  # pyright: ignore[reportUnknownArgumentType]
            for k, v in entries:
                name: Any = scrub(k, found) if isinstance(k, str) else k
                copy[name] = v
                stack.append((copy, name, v, depth + 1))
            parent[key] = copy
        else:
            items: list[Any] = list(item)  # pyright: ignore[reportUnknownArgumentType]
            stack.extend((items, index, v, depth + 1) for index, v in enumerate(items))
            parent[key] = items
    return root[0]
