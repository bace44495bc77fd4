"""What the commands and the demo share: project resources by kind, and the create tools by CLI name.

Its own module so that ``_demo`` (which creates renders) and ``_main`` (which runs the demo) both import it
instead of each other.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from .._exceptions import ConfigurationError
from .._generated import RESOURCES
from .._models import CreateResponse
from .._resources.create import AsyncCreateResource, to_wire
from .._resources.projects import AsyncProjects

if TYPE_CHECKING:
    from .._client import AsyncClient

__all__ = ["KINDS", "bind_body", "create_uploading", "create_with", "project_path", "projects", "tool_named"]

KINDS = ("video", "image", "audio")


def projects(client: AsyncClient, kind: str) -> AsyncProjects[Any]:
    """``client.v1.{kind}_projects``."""
    by_kind: dict[str, AsyncProjects[Any]] = {
        "video": client.v1.video_projects,
        "image": client.v1.image_projects,
        "audio": client.v1.audio_projects,
    }
    return by_kind[kind]


def project_path(kind: str, id: str) -> str:
    """The route of a project, for error lines (the id as given: a line names, it does not request)."""
    return f"/v1/{kind}-projects/{id}"


def _tools(client: AsyncClient) -> dict[str, AsyncCreateResource[Any]]:
    """Every create resource on ``client.v1``, by CLI name (``ai-image-generator``)."""
    resources = {name: getattr(client.v1, name) for name in RESOURCES}  # loads every tool module
    return {
        name.replace("_", "-"): resource
        for name, resource in resources.items()
        if isinstance(resource, AsyncCreateResource)
    }


def tool_named(client: AsyncClient, tool: str) -> AsyncCreateResource[Any]:
    """The create resource for a tool named by its path (``/v1/ai-image-generator``) or name."""
    name = tool.rpartition("/")[2].replace("_", "-")
    tools = _tools(client)
    if name not in tools:
        raise ConfigurationError(f"unknown tool {tool!r}; one of: {', '.join(sorted(tools))}")
    return tools[name]


def bind_body(
    resource: AsyncCreateResource[Any], method: str, /, **kwargs: Any
) -> Callable[[], Awaitable[Any]]:
    """``resource.<method>(**kwargs)`` as a call to make later, once the body is known to bind.

    Each generated tool declares its own typed signature; a JSON body is passed through as is after checking
    that it binds, so a wrong field is a usage error before any request, never a TypeError from deep inside.
    """
    function = cast("Callable[..., Awaitable[Any]]", getattr(resource, method))
    try:
        inspect.signature(function).bind(**kwargs)
    except TypeError as error:
        raise ConfigurationError(f"{type(resource).__name__.removeprefix('Async')}: {error}") from None
    return lambda: function(**kwargs)


async def create_with(client: AsyncClient, tool: str, body: dict[str, Any]) -> CreateResponse:
    """``client.v1.<tool>.create(**body)``, the tool named by its path or name."""
    created: CreateResponse = await bind_body(tool_named(client, tool), "create", **body)()
    return created


async def create_uploading(client: AsyncClient, tool: str, body: dict[str, Any]) -> CreateResponse:
    """Like :func:`create_with`, but local files among ``assets.*_file_path(s)`` are uploaded first.

    What ``generate`` does before its POST, without its wait: the API only reads ``api-assets/`` paths and
    URLs, so a local path sent as is would fail the render after it was paid for.
    """
    resource = tool_named(client, tool)
    bind_body(resource, "create", **body)  # a wrong field is a usage error before the upload
    # The JSON body already uses the API's names, so the copy to_wire makes keeps every key as given.
    uploaded: dict[str, Any] = await resource._upload_assets(to_wire(body))
    created: CreateResponse = await bind_body(resource, "create", **uploaded)()
    return created
