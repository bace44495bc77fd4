"""``client.v1.{video,image,audio}_projects``: read, delete and wait for renders.

Resources only describe endpoints; the transport sends, the converter decodes, the scheduler waits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, TypeVar
from urllib.parse import quote

from .._converter import decode
from .._exceptions import ConfigurationError
from .._models import AudioProject, ImageProject, Project, VideoProject

if TYPE_CHECKING:
    from .._client import AsyncClient

P = TypeVar("P", bound=Project)


def encode_id(value: str) -> str:
    """URL-encode a path parameter so ``id="a/b"`` can never reach another route."""
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"id must be a non-empty string, not {value!r}")
    return quote(value, safe="")


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

    async def get(self, *, id: str) -> P:
        """Fetch a project's current state.

        Example:
            ``project = await client.v1.video_projects.get(id="cuid")``
        """
        data = await self._client._transport.request("GET", self._path(id))
        return decode(data, self._model)

    async def delete(self, *, id: str) -> None:
        """Permanently delete a project's outputs (204). Not reversible."""
        await self._client._transport.request("DELETE", self._path(id))


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
