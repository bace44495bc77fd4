"""``client.v1.{video,image,audio}_projects``: read, delete and wait for renders.

Resources only describe endpoints; the transport sends, the converter decodes, the scheduler waits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar, cast

import attrs

from .._converter import decode
from .._exceptions import ConfigurationError
from .._models import AudioProject, ImageProject, Project, VideoProject
from .._request_options import RequestOptions, resolve
from ._polled import encode_id

if TYPE_CHECKING:
    from .._client import AsyncClient
    from .._transfers._parts import ProgressCallback

P = TypeVar("P", bound=Project)


MODELS: dict[str, type[Project]] = {"video": VideoProject, "image": ImageProject, "audio": AudioProject}


async def save_outputs(
    client: AsyncClient,
    project: P,
    directory: str | Path | None,
    on_progress: ProgressCallback | None = None,
) -> P:
    """The project with ``downloaded_paths`` set, after saving its outputs if it is ``complete``.

    Shared by ``check_result``, ``generate`` and the CLI; a failed or unfinished render saves nothing.
    """
    if project.status != "complete" or not project.downloads:
        return project
    paths = await client.download_outputs(project, directory, on_progress=on_progress)
    return attrs.evolve(project, downloaded_paths=[str(path) for path in paths])


def _checked(ids: Iterable[str]) -> list[str]:
    if isinstance(ids, str):
        raise ConfigurationError("ids must be a list of ids, not a single string")
    listed = list(ids)
    for id in listed:
        encode_id(id)
    return listed


class AsyncProjects(Generic[P]):
    """Operations shared by the three project kinds."""

    _kind: str
    _model: type[P]

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    def _path(self, id: str) -> str:
        return f"/v1/{self._kind}-projects/{encode_id(id)}"

    async def get(self, *, id: str, request_options: RequestOptions | None = None) -> P:
        """Fetch a project's current state.

        Example:
            ``project = await client.v1.video_projects.get(id="cuid")``

        Args:
            id: the project id.
            request_options: per-call ``timeout``, ``additional_headers``, ``additional_params``.
        """
        sent = resolve(self._path(id), request_options)
        data = await self._client._transport.request(
            "GET", sent.path, headers=sent.headers, timeout=sent.timeout
        )
        return decode(data, self._model)

    async def delete(self, *, id: str, request_options: RequestOptions | None = None) -> None:
        """Permanently delete a project's outputs (204). Not reversible.

        Args:
            id: the project id.
            request_options: per-call ``timeout``, ``additional_headers``, ``additional_params``.
        """
        sent = resolve(self._path(id), request_options)
        await self._client._transport.request("DELETE", sent.path, headers=sent.headers, timeout=sent.timeout)

    async def wait(self, *, id: str, timeout: float | None = None) -> P:
        """Wait until the project is ``complete``, ``error`` or ``canceled`` and return it.

        Polls through the client's scheduler, so any number of concurrent waits share its request budget.
        A failed render is returned, not raised: call ``project.raise_for_status()`` for that.

        Example:
            ``project = (await client.v1.video_projects.wait(id=pid, timeout=600)).raise_for_status()``

        Raises:
            WaitTimeoutError: ``timeout`` seconds passed; ``.project`` is the last state seen.
        """
        encode_id(id)
        return cast(P, await self._client._scheduler.wait(self._kind, id, timeout=timeout))

    async def wait_many(self, ids: Iterable[str], *, timeout: float | None = None) -> list[P]:
        """Wait for every project in ``ids`` under one deadline; return them in input order.

        Example:
            ``projects = await client.v1.image_projects.wait_many(ids, timeout=900)``
        """
        scheduler = self._client._scheduler
        return cast(list[P], await scheduler.wait_many(self._kind, _checked(ids), timeout=timeout))

    def as_completed(self, ids: Iterable[str], *, timeout: float | None = None) -> AsyncIterator[P]:
        """Yield each project of ``ids`` as soon as it turns terminal, in completion order.

        Leaving the loop early (``break``, an exception) withdraws interest in the rest at once.

        Example:
            ```python
            async for project in client.v1.audio_projects.as_completed(ids):
                print(project.id, project.status)
            ```
        """
        completions = self._client._scheduler.as_completed(self._kind, _checked(ids), timeout=timeout)
        return cast("AsyncIterator[P]", completions)

    async def check_result(
        self,
        id: str,
        wait_for_completion: bool = False,
        download_outputs: bool = False,
        download_directory: str | Path | None = None,
    ) -> P:
        """The official SDK's ``check_result``: fetch, optionally wait, optionally download.

        Args:
            id: the project id.
            wait_for_completion: wait (through the scheduler) until the project is terminal.
            download_outputs: save the outputs of a ``complete`` project; their paths are in
                ``project.downloaded_paths``.
            download_directory: where to save them (default: the current directory).
        """
        project = await self.wait(id=id) if wait_for_completion else await self.get(id=id)
        if download_outputs:
            project = await save_outputs(self._client, project, download_directory)
        return project


class AsyncVideoProjects(AsyncProjects[VideoProject]):
    """``/v1/video-projects``."""

    _kind = "video"
    _model = VideoProject


class AsyncImageProjects(AsyncProjects[ImageProject]):
    """``/v1/image-projects``."""

    _kind = "image"
    _model = ImageProject


class AsyncAudioProjects(AsyncProjects[AudioProject]):
    """``/v1/audio-projects``."""

    _kind = "audio"
    _model = AudioProject
