"""Base classes of the generated tool resources (``client.v1.ai_image_generator`` and the rest).

The classes in ``magic_hour_async/_generated/`` only declare: the path, the project kind, and typed
``create``/``generate`` signatures that build a request-body attrs class. Everything that happens after
lives here, written once:

- :func:`to_wire` turns a body (attrs classes and plain dicts, mixed at any depth) into JSON: ``None``
  values are omitted (the API wants optional fields absent, never null), Python names map to wire names
  (``search_web`` -> ``searchWeb``), unknown dict keys pass through, and the caller's objects are never
  modified;
- ``generate`` uploads local files named in ``assets.*_file_path(s)``, creates the render, waits through
  the client's scheduler and downloads the outputs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar, cast

import attrs

from .._converter import decode
from .._models import CreateResponse, Project
from ..events import RenderCreated
from .projects import AsyncProjects, encode_id, register_polled, save_outputs

if TYPE_CHECKING:
    from attrs import AttrsInstance

    from .._client import AsyncClient

__all__ = ["AsyncCreateResource", "AsyncResource", "to_wire"]

P = TypeVar("P", bound=Project)
T = TypeVar("T")

#: Field metadata keys set by the generator: the JSON name when it differs, and the attrs class of a
#: nested object (or of a list's items), so plain dicts in that position get the same renames.
WIRE = "wire"
MODEL = "model"

_Plan = dict[str, tuple[str, "type[Any] | None"]]
_plans: dict[type[object], _Plan] = {}


def _plan(cls: type[object]) -> _Plan:
    """Python name -> (wire name, nested model) for one generated class, computed once."""
    plan = _plans.get(cls)
    if plan is None:
        plan = _plans[cls] = {
            field.name: (field.metadata.get(WIRE, field.name), field.metadata.get(MODEL))
            for field in attrs.fields(cast("type[AttrsInstance]", cls))
        }
    return plan


def to_wire(value: Any, model: type[Any] | None = None) -> Any:
    """The JSON form of a request body or any part of it, built as new objects.

    ``model`` is the generated class a plain dict stands for; its known Python names are renamed to wire
    names and its nested dicts converted the same way. Keys it does not know are sent as given.
    """
    cls = cast("type[object]", type(value))
    if attrs.has(cls):
        plan = _plan(cls)
        return {
            wire: to_wire(item, nested)
            for name, (wire, nested) in plan.items()
            if (item := getattr(value, name)) is not None
        }
    if isinstance(value, Mapping):
        mapping = cast("Mapping[str, Any]", value)
        known = _plan(model) if model is not None else {}
        out: dict[str, Any] = {}
        for key, item in mapping.items():
            if item is None:
                continue
            wire, nested = known.get(key, (key, None))
            out[wire] = to_wire(item, nested)
        return out
    if isinstance(value, (list, tuple)):
        return [to_wire(item, model) for item in cast("Sequence[object]", value)]
    return value


def _is_local(value: object) -> bool:
    """A file to upload: a path (str or PathLike) that is not a URL or an ``api-assets/`` path, or a file."""
    if isinstance(value, str):
        return bool(value) and not value.startswith(("http://", "https://", "api-assets/"))
    return isinstance(value, os.PathLike) or hasattr(value, "read")


class AsyncResource:
    """A generated resource: knows its path and sends requests through the client's transport."""

    _path: ClassVar[str]

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._path}>"

    async def _create(self, body: object) -> CreateResponse:
        """``POST`` the body; creating a job costs credits, so the transport retries only when safe."""
        data = await self._client._transport.request("POST", self._path, json_body=to_wire(body), paid=True)
        created = decode(data, CreateResponse)
        hooks = self._client._hooks
        if hooks:
            self._client._timeline.created(created.id)
            tool = self._path.removeprefix("/v1/")
            hooks.emit(RenderCreated(tool=tool, project_id=created.id, credits=created.credits_charged))
        return created

    async def _get(self, id: str, model: type[T]) -> T:
        data = await self._client._transport.request("GET", f"{self._path}/{encode_id(id)}")
        return decode(data, model)

    async def _wait(self, id: str, model: type[T], timeout: float | None) -> T:
        """Wait through the client's scheduler, which polls ``GET {path}/{id}`` (see ``POLLED_PATHS``)."""
        encode_id(id)
        register_polled(self._path, model)
        return cast(T, await self._client._scheduler.wait(self._path, id, timeout=timeout))


class AsyncCreateResource(AsyncResource, Generic[P]):
    """A tool that starts a render of one project kind: ``create`` and ``generate``."""

    _kind: ClassVar[Literal["video", "image", "audio"]]

    def _projects(self) -> AsyncProjects[P]:
        v1 = self._client.v1
        by_kind = {"video": v1.video_projects, "image": v1.image_projects, "audio": v1.audio_projects}
        return cast("AsyncProjects[P]", by_kind[self._kind])

    async def _upload_assets(self, wire: dict[str, Any]) -> dict[str, Any]:
        """Upload the local files among ``assets.*_file_path`` and ``assets.*_file_paths`` concurrently.

        ``wire`` was built by :func:`to_wire`, so it is ours to change; URLs and ``api-assets/`` paths stay.
        """
        assets = wire.get("assets")
        if not isinstance(assets, dict):
            return wire
        slots: list[tuple[str, int | None]] = []
        files: list[Any] = []
        for key, value in cast("dict[str, Any]", assets).items():
            if key.endswith("_file_path") and _is_local(value):
                slots.append((key, None))
                files.append(value)
            elif key.endswith("_file_paths") and isinstance(value, list):
                for index, item in enumerate(cast("list[object]", value)):
                    if _is_local(item):
                        slots.append((key, index))
                        files.append(item)
        if not files:
            return wire
        uploaded = await self._client.v1.files.upload_files(files)
        for (key, position), path in zip(slots, uploaded, strict=True):
            if position is None:
                assets[key] = path
            else:
                assets[key][position] = path
        return wire

    async def _generate(
        self,
        body: object,
        *,
        wait_for_completion: bool,
        download_outputs: bool,
        download_directory: str | Path | None,
    ) -> P:
        """Upload, create, then (optionally) wait and download; see the generated ``generate`` methods."""
        wire = await self._upload_assets(to_wire(body))
        data = await self._client._transport.request("POST", self._path, json_body=wire, paid=True)
        created = decode(data, CreateResponse)
        projects = self._projects()
        if not wait_for_completion:
            return await projects.get(id=created.id)
        project = await projects.wait(id=created.id, timeout=None)
        if download_outputs:
            project = await save_outputs(self._client, project, download_directory)
        return project
