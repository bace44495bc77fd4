"""What the client's scheduler polls, kept light: building an ``AsyncClient`` imports this, not the models.

:func:`fetch_project` is the scheduler's fetch: ``GET /v1/{kind}-projects/{id}`` for the three project kinds,
``GET {path}/{id}`` for job paths registered by the resources that wait on them (``/v1/face-detection``).
The project models and the converter (attrs classes, cattrs) are imported at the first poll, not before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .._exceptions import ConfigurationError

if TYPE_CHECKING:
    from .._http._transport import Transport

__all__ = ["POLLED_PATHS", "TERMINAL_STATUSES", "encode_id", "fetch_project", "register_polled"]

#: A wait ends on any of these; an unknown status is never terminal.
TERMINAL_STATUSES = frozenset({"complete", "error", "canceled"})

#: Other jobs the scheduler can poll, by their resource path (``/v1/face-detection``): the model of
#: ``GET {path}/{id}``. Registered by the resources that wait on them.
POLLED_PATHS: dict[str, type[Any]] = {}


def encode_id(value: str) -> str:
    """URL-encode a path parameter so ``id="a/b"`` can never reach another route."""
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"id must be a non-empty string, not {value!r}")
    if value.isascii() and value.isalnum():  # every id the API issues (cuids): nothing to encode
        return value
    return quote(value, safe="")


def register_polled(path: str, model: type[Any]) -> None:
    POLLED_PATHS.setdefault(path, model)


async def fetch_project(transport: Transport, kind: str, id: str, *, max_retries: int | None = None) -> Any:
    """One poll, decoded (the scheduler's fetch); see the module docstring for the paths."""
    from .._converter import decode
    from .projects import MODELS

    if kind in MODELS:
        path, model = f"/v1/{kind}-projects/{encode_id(id)}", MODELS[kind]
    else:
        path, model = f"{kind}/{encode_id(id)}", POLLED_PATHS[kind]
    data = await transport.request("GET", path, max_retries=max_retries)
    return decode(data, model)
