"""``magic-hour-async demo``: a realistic batch on the built-in emulator, offline and without a token.

It starts :class:`~magic_hour_async.testing.Emulator` in this process, submits a few dozen renders across
image, video and audio tools through the public client (two of them are made to fail, as real renders
sometimes do), waits for all of them through one scheduler with live progress, downloads every output under
the target directory, and prints what it cost compared with the incumbent SDK's fixed 0.5-second poller.
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import Any

from .._client import AsyncClient
from .._models import Project
from ..testing import Emulator
from ._progress import Progress
from ._tools import create_with, projects

# (path, kind, body): a spread of tools with valid bodies, repeated to make the batch.
_BATCH: list[tuple[str, str, dict[str, Any]]] = [
    ("/v1/ai-image-generator", "image", {"image_count": 4, "style": {"prompt": "a lighthouse at dusk"}}),
    ("/v1/ai-image-generator", "image", {"image_count": 1, "style": {"prompt": "a red fox, watercolor"}}),
    ("/v1/ai-meme-generator", "image", {"style": {"topic": "Mondays", "template": "Drake Hotline Bling"}}),
    ("/v1/image-background-remover", "image", {"assets": {"image_file_path": "api-assets/demo/cat.png"}}),
    ("/v1/photo-colorizer", "image", {"assets": {"image_file_path": "api-assets/demo/old.jpg"}}),
    ("/v1/ai-headshot-generator", "image", {"assets": {"image_file_path": "api-assets/demo/me.jpg"}}),
    ("/v1/ai-voice-generator", "audio", {"style": {"prompt": "Welcome aboard.", "voice_name": "Elon Musk"}}),
    (
        "/v1/text-to-video",
        "video",
        {"end_seconds": 5, "style": {"prompt": "a paper boat on a stream"}, "resolution": "720p"},
    ),
    (
        "/v1/image-to-video",
        "video",
        {"end_seconds": 5, "assets": {"image_file_path": "api-assets/demo/a.png"}},
    ),
    (
        "/v1/face-swap",
        "video",
        {
            "start_seconds": 0,
            "end_seconds": 8,
            "assets": {
                "video_source": "file",
                "video_file_path": "api-assets/demo/clip.mp4",
                "image_file_path": "api-assets/demo/face.png",
            },
        },
    ),
]
_COPIES = 3  # 30 renders
_FAIL = {
    4: ("no_source_face", "No face was found in the source image"),
    17: ("processing_timeout", "Timed out"),
}
_FIXED_INTERVAL = 0.5


async def run_demo(*, directory: Path, speed: float = 0.25) -> int:
    """Run the demo; returns the exit status (0)."""
    started = time.monotonic()
    progress = Progress()
    async with Emulator(seed=7, speed=speed, output_size=256 * 1024) as emu:
        async with AsyncClient(
            token=emu.token, base_url=emu.url, on_poll_event=progress.on_poll_event
        ) as client:
            print(f"emulator on {emu.url}: submitting {len(_BATCH) * _COPIES} renders", file=progress.stream)
            created: list[tuple[str, str, float]] = []
            for n in range(_COPIES * len(_BATCH)):
                path, kind, body = _BATCH[n % len(_BATCH)]
                project_id = (await create_with(client, path, body)).id
                if n in _FAIL:
                    emu.fail(project_id, *_FAIL[n])
                created.append((kind, project_id, time.monotonic()))
                progress.track(kind, project_id)
            finished, finished_at = await _wait_all(client, created)
            saved: list[Path] = []
            for project in finished:
                if project.status == "complete":
                    saved += await client.download_outputs(
                        project, directory, on_progress=progress.on_transfer
                    )
            progress.close()
            polls = client.poll_stats.polls_sent
        # What the incumbent's fixed 0.5 s poller would have sent for the same renders, seen finished as late.
        fixed = sum(math.ceil((finished_at[pid] - at) / _FIXED_INTERVAL) + 1 for _, pid, at in created)
    _summary(finished, saved, polls, fixed, time.monotonic() - started, directory)
    return 0


async def _wait_all(
    client: AsyncClient, created: list[tuple[str, str, float]]
) -> tuple[list[Project], dict[str, float]]:
    """Wait for every render through the one scheduler; also return when each was seen finished."""
    finished_at: dict[str, float] = {}

    async def one_kind(kind: str) -> list[Project]:
        ids = [project_id for k, project_id, _ in created if k == kind]
        seen: list[Project] = []
        async for project in projects(client, kind).as_completed(ids, timeout=600):
            finished_at[project.id] = time.monotonic()
            seen.append(project)
        return seen

    groups = await asyncio.gather(*(one_kind(kind) for kind in ("image", "audio", "video")))
    return [project for group in groups for project in group], finished_at


def _summary(
    finished: list[Project], saved: list[Path], polls: int, fixed: int, wall: float, directory: Path
) -> None:
    failed = [p for p in finished if p.status != "complete"]
    size = sum(path.stat().st_size for path in saved)
    print()
    print(f"renders:   {len(finished)} ({len(finished) - len(failed)} complete, {len(failed)} failed)")
    for project in failed:
        reason = f"{project.error.code}: {project.error.message}" if project.error else project.status
        print(f"  failed:  {type(project).__name__} {project.id} ({reason})")
    print(f"saved:     {len(saved)} files, {size:,} bytes under {directory}/")
    ratio = fixed / max(polls, 1)
    print(f"polls:     {polls} GETs (a fixed {_FIXED_INTERVAL} s poller: about {fixed}, {ratio:.1f}x more)")
    print(f"wall time: {wall:.1f} s")
