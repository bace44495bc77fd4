"""Base classes of the generated tool resources (``client.v1.ai_image_generator`` and the rest).

The classes in ``magic_hour_async/_generated/`` only declare: the path, the project kind, and typed
``create``/``generate`` signatures that build a request-body attrs class. Everything that happens after
lives here, written once:

- :func:`to_wire` turns a body (attrs classes and plain dicts, mixed at any depth) into JSON: ``None``
  values are omitted (the API wants optional fields absent, never null), Python names map to wire names
  (``search_web`` -> ``searchWeb``), unknown dict keys pass through, and the caller's objects are never
  modified;
- ``generate`` uploads local files named in ``assets.*_file_path(s)``, creates the render, waits through
  the client's scheduler and downloads the outputs;
- every call takes the official SDK's ``request_options`` (:mod:`magic_hour_async._request_options`), and
  deprecated parameters warn once per call with :class:`DeprecationWarning`, naming the replacement; they
  are still sent, because the API still maps them.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar, cast

import attrs

from .._converter import decode
from .._models import CreateResponse, Download, ImageProject, Project
from .._request_options import RequestOptions, resolve
from ._polled import encode_id, register_polled
from .projects import AsyncProjects, save_outputs

if TYPE_CHECKING:
    from attrs import AttrsInstance

    from .._client import AsyncClient

__all__ = ["AsyncCreateResource", "AsyncResource", "deprecated_parameter", "to_wire"]

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


def deprecated_parameter(name: str, replacement: str | None) -> None:
    """Warn that ``name`` is deprecated, naming what replaces it; the value is still sent."""
    advice = f"use {replacement!r} instead" if replacement else "the API ignores it"
    # stacklevel 3: the warning points at the caller of create()/generate(), not at the SDK.
    warnings.warn(f"{name!r} is deprecated: {advice}", DeprecationWarning, stacklevel=3)


def _with_extra(wire: Any, extra: Mapping[str, Any] | None) -> Any:
    """The wire body plus ``additional_properties`` (which never replace a field the call set)."""
    if not extra:
        return wire
    return {**{key: value for key, value in extra.items() if value is not None}, **wire}


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

    async def _request(
        self,
        method: str,
        path: str,
        options: RequestOptions | None,
        *,
        json_body: Any = None,
        paid: bool = False,
    ) -> Any:
        sent = resolve(path, options)
        return await self._client._transport.request(
            method, sent.path, json_body=json_body, paid=paid, headers=sent.headers, timeout=sent.timeout
        )

    async def _post(self, wire: Any, options: RequestOptions | None) -> CreateResponse:
        """``POST`` a body; creating a job costs credits, so the transport retries only when safe."""
        created = decode(
            await self._request("POST", self._path, options, json_body=wire, paid=True), CreateResponse
        )
        hooks = self._client._hooks
        if hooks:
            from ..events import RenderCreated  # loaded with the first hook

            self._client._timeline.created(created.id)
            tool = self._path.removeprefix("/v1/")
            hooks.emit(RenderCreated(tool=tool, project_id=created.id, credits=created.credits_charged))
        return created

    async def _create(
        self,
        body: object,
        *,
        request_options: RequestOptions | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> CreateResponse:
        return await self._post(_with_extra(to_wire(body), extra), request_options)

    async def _get(self, id: str, model: type[T], *, request_options: RequestOptions | None = None) -> T:
        return decode(await self._request("GET", f"{self._path}/{encode_id(id)}", request_options), model)

    async def _generate_job(
        self,
        model: type[T],
        body: object,
        *,
        wait_for_completion: bool,
        download_outputs: bool,
        download_directory: str | Path | None,
        request_options: RequestOptions | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> T:
        """Upload, create, then (optionally) wait and save the files the job lists (``faces[i].url``)."""
        wire = await _upload_assets(self._client, _with_extra(to_wire(body), extra))
        created = await self._post(wire, request_options)
        if not wait_for_completion:
            return await self._get(created.id, model)
        result = await self._wait(created.id, model, None)
        if not download_outputs or getattr(result, "status", None) != "complete":
            return result
        urls = [url for item in _listed(result) if isinstance(url := getattr(item, "url", None), str)]
        if not urls:
            return result
        # The download machinery works on projects: the job's files as the outputs of a stand-in project.
        stand_in = ImageProject(
            id=created.id, status="complete", downloads=tuple(Download(url=u) for u in urls)
        )
        paths = await self._client.download_outputs(stand_in, download_directory)
        evolved: Any = attrs.evolve(cast(Any, result), downloaded_paths=[str(p) for p in paths])
        return cast(T, evolved)

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
        return await _upload_assets(self._client, wire)

    async def _generate(
        self,
        body: object,
        *,
        wait_for_completion: bool,
        download_outputs: bool,
        download_directory: str | Path | None,
        request_options: RequestOptions | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> P:
        """Upload, create, then (optionally) wait and download; see the generated ``generate`` methods."""
        wire = await self._upload_assets(_with_extra(to_wire(body), extra))
        created = await self._post(wire, request_options)
        projects = self._projects()
        if not wait_for_completion:
            return await projects.get(id=created.id)
        project = await projects.wait(id=created.id, timeout=None)
        if download_outputs:
            project = await save_outputs(self._client, project, download_directory)
        return project


def _listed(result: object) -> list[object]:
    """The items of every tuple field of a job's answer (``faces``), in field order."""
    found: list[object] = []
    for field in attrs.fields(cast("type[AttrsInstance]", type(result))):
        value = getattr(result, field.name)
        if isinstance(value, tuple):
            found += cast("tuple[object, ...]", value)
    return found


async def _upload_assets(client: AsyncClient, wire: dict[str, Any]) -> dict[str, Any]:
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
    uploaded = await client.v1.files.upload_files(files)
    for (key, position), path in zip(slots, uploaded, strict=True):
        if position is None:
            assets[key] = path
        else:
            assets[key][position] = path
    return wire
