"""``magic-hour-async``: the command line.

Each command is a small coroutine over an :class:`AsyncClient`; ``main`` parses arguments, runs the command,
and turns every SDK error into one line on stderr and an exit status a script can branch on:

====  =========================================
0     success
1     any other error (API, connection, download)
2     usage or configuration (no token, bad arguments)
3     authentication (401) or permission (403)
4     not found (404)
5     timeout (a wait's deadline, a request timeout)
130   interrupted (Ctrl-C)
====  =========================================
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, cast

from .._client import AsyncClient
from .._converter import converter
from .._exceptions import (
    AuthenticationError,
    ConfigurationError,
    MagicHourError,
    NotFoundError,
    PermissionDeniedError,
    WaitTimeoutError,
)
from .._models import CreateResponse, Project
from .._resources.create import AsyncCreateResource
from .._resources.projects import AsyncProjects, save_outputs
from ._emulator import add_arguments as add_emulator_arguments
from ._emulator import run as run_emulator
from ._progress import Progress

KINDS = ("video", "image", "audio")
EXIT_ERROR, EXIT_USAGE, EXIT_AUTH, EXIT_NOT_FOUND, EXIT_TIMEOUT, EXIT_INTERRUPTED = 1, 2, 3, 4, 5, 130


def project_json(project: Project) -> dict[str, Any]:
    """A project as the API's JSON, plus ``downloaded_paths``."""
    data: dict[str, Any] = converter.unstructure(project)
    data["status"] = str(project.status)
    return data


def _print_project(project: Project, as_json: bool) -> None:
    if as_json:
        print(json.dumps(project_json(project), indent=2))
        return
    print(f"{type(project).__name__} {project.id}: {project.status}")
    print(f"  type: {project.type}  credits: {project.credits_charged}  created: {project.created_at}")
    if project.error is not None:
        print(f"  error: {project.error.code}: {project.error.message}")
    for download in project.downloads:
        print(f"  download: {download.url.partition('?')[0]} (expires {download.expires_at})")
    for path in project.downloaded_paths:
        print(f"  saved: {path}")


def _resource(client: AsyncClient, kind: str) -> AsyncProjects[Any]:
    resources: dict[str, AsyncProjects[Any]] = {
        "video": client.v1.video_projects,
        "image": client.v1.image_projects,
        "audio": client.v1.audio_projects,
    }
    return resources[kind]


async def cmd_get(client: AsyncClient, args: argparse.Namespace) -> int:
    _print_project(await _resource(client, args.kind).get(id=args.id), args.json)
    return 0


async def cmd_delete(client: AsyncClient, args: argparse.Namespace) -> int:
    await _resource(client, args.kind).delete(id=args.id)
    print(f"deleted {args.kind} project {args.id}")
    return 0


async def cmd_wait(client: AsyncClient, args: argparse.Namespace, progress: Progress) -> int:
    resource = _resource(client, args.kind)
    for id in args.ids:
        progress.track(args.kind, id)
    finished: list[Project] = []
    async for project in resource.as_completed(args.ids, timeout=args.timeout):
        if args.download:
            project = await save_outputs(client, project, args.download, progress.on_transfer)
        finished.append(project)
    progress.close()
    by_id = {project.id: project for project in finished}
    ordered = [by_id[id] for id in dict.fromkeys(args.ids)]
    if args.json:
        print(json.dumps([project_json(p) for p in ordered], indent=2))
    else:
        for project in ordered:
            _print_project(project, False)
    return 0 if all(p.status == "complete" for p in ordered) else EXIT_ERROR


async def cmd_download(client: AsyncClient, args: argparse.Namespace, progress: Progress) -> int:
    project = await _resource(client, args.kind).get(id=args.id)
    if project.status != "complete":
        raise MagicHourError(
            f"{args.kind} project {args.id} is {project.status}, not complete: nothing to download"
        )
    paths = await client.download_outputs(project, args.dir, on_progress=progress.on_transfer)
    progress.close()
    for path in paths:
        print(path)
    return 0


def _tools(client: AsyncClient) -> dict[str, AsyncCreateResource[Any]]:
    """Every create resource on ``client.v1``, by CLI name (``ai-image-generator``)."""
    return {
        name.replace("_", "-"): resource
        for name, resource in vars(client.v1).items()
        if isinstance(resource, AsyncCreateResource)
    }


def _read_body(text: str) -> dict[str, Any]:
    """``--body`` is JSON, or ``@file.json``."""
    try:
        raw = Path(text[1:]).read_text(encoding="utf-8") if text.startswith("@") else text
        body = json.loads(raw)
    except (OSError, ValueError) as error:
        raise ConfigurationError(f"--body must be JSON or @file.json: {error}") from None
    if not isinstance(body, dict):
        raise ConfigurationError("--body must be a JSON object")
    return cast("dict[str, Any]", body)


def _tool(client: AsyncClient, tool: str) -> AsyncCreateResource[Any]:
    """The create resource for a tool named by its path (``/v1/ai-image-generator``) or name."""
    name = tool.rpartition("/")[2].replace("_", "-")
    tools = _tools(client)
    if name not in tools:
        raise ConfigurationError(f"unknown tool {tool!r}; one of: {', '.join(sorted(tools))}")
    return tools[name]


async def _call_tool(resource: AsyncCreateResource[Any], method: str, /, **kwargs: Any) -> Any:
    # Each generated tool declares its own typed signature; a JSON body is passed through as is, after
    # checking it binds, so a wrong field is a usage error and never a TypeError from deep inside.
    function = cast("Callable[..., Awaitable[Any]]", getattr(resource, method))
    try:
        inspect.signature(function).bind(**kwargs)
    except TypeError as error:
        raise ConfigurationError(f"{type(resource).__name__.removeprefix('Async')}: {error}") from None
    return await function(**kwargs)


async def create_with(client: AsyncClient, tool: str, body: dict[str, Any]) -> CreateResponse:
    """``client.v1.<tool>.create(**body)``, the tool named by its path or name."""
    created: CreateResponse = await _call_tool(_tool(client, tool), "create", **body)
    return created


async def cmd_create(client: AsyncClient, args: argparse.Namespace, progress: Progress) -> int:
    body = _read_body(args.body)
    if not args.wait:
        created = await create_with(client, args.tool, body)
        print(json.dumps(converter.unstructure(created)) if args.json else f"created {created.id}")
        return 0
    project: Project = await _call_tool(
        _tool(client, args.tool),
        "generate",
        **body,
        wait_for_completion=True,
        download_outputs=args.download is not None,
        download_directory=args.download,
    )
    progress.close()
    _print_project(project, args.json)
    return 0 if project.status == "complete" else EXIT_ERROR


async def cmd_upload(client: AsyncClient, args: argparse.Namespace) -> int:
    paths = await client.v1.files.upload_files(list(args.files))
    for local, remote in zip(args.files, paths, strict=True):
        print(remote if args.quiet else f"{local} -> {remote}")
    return 0


async def cmd_webhooks_listen(args: argparse.Namespace) -> int:
    """Serve a webhook receiver and print each verified event on stdout until Ctrl-C or SIGTERM."""
    import contextlib
    import logging
    import signal

    from aiohttp import web

    from .. import webhooks

    async def show(event: webhooks.WebhookEvent) -> None:
        payload = event.payload
        if args.json:
            body = payload if isinstance(payload, dict) else project_json(payload)
            if not isinstance(payload, dict):
                del body["downloaded_paths"]  # local to the SDK, never on the wire
            print(json.dumps({"type": event.type, "payload": body}), flush=True)
            return
        status = payload.get("status") if isinstance(payload, dict) else payload.status
        error = None if isinstance(payload, dict) else payload.error
        detail = f" {error.code}: {error.message}" if error is not None else ""
        print(f"{event.type} {event.project_id} {status}{detail}", flush=True)

    app = webhooks.create_app(show, path=args.path, secret=args.secret)  # no secret: ConfigurationError
    log = logging.getLogger("magic_hour_async.webhooks")  # rejected deliveries and callback errors
    log.setLevel(logging.INFO)
    log.addHandler(logging.StreamHandler(sys.stderr))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, args.host, args.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        url = f"http://{host}:{port}{args.path}"
        print(f"listening for Magic Hour webhooks on {url}", file=sys.stderr, flush=True)
        stop = asyncio.Event()
        with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows: Ctrl-C only
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="magic-hour-async",
        description="Magic Hour API from the command line (token from MAGIC_HOUR_API_KEY).",
    )
    parser.add_argument("--token", help="API token (default: $MAGIC_HOUR_API_KEY)")
    parser.add_argument("--base-url", help="API URL (default: $MAGIC_HOUR_BASE_URL or production)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    get = sub.add_parser("get", help="show a project")
    get.add_argument("kind", choices=KINDS)
    get.add_argument("id")
    get.add_argument("--json", action="store_true", help="print the project as JSON")

    wait = sub.add_parser("wait", help="wait for projects to finish, with live progress")
    wait.add_argument("kind", choices=KINDS)
    wait.add_argument("ids", nargs="+", metavar="ID")
    wait.add_argument("--timeout", type=float, help="give up after S seconds")
    wait.add_argument("--download", metavar="DIR", type=Path, help="save outputs of complete projects")
    wait.add_argument("--json", action="store_true", help="print the projects as JSON")

    download = sub.add_parser("download", help="save a complete project's outputs")
    download.add_argument("kind", choices=KINDS)
    download.add_argument("id")
    download.add_argument("--dir", type=Path, default=Path("."), help="target directory (default: .)")

    delete = sub.add_parser("delete", help="delete a project")
    delete.add_argument("kind", choices=KINDS)
    delete.add_argument("id")

    create = sub.add_parser("create", help="start a render with a tool, e.g. ai-image-generator")
    create.add_argument("tool", help="the tool's path name (ai-image-generator, face-swap, ...)")
    create.add_argument("--body", required=True, help="the request body: JSON, or @file.json")
    create.add_argument("--wait", action="store_true", help="upload local files, wait, print the project")
    create.add_argument("--download", metavar="DIR", type=Path, help="with --wait: save the outputs here")
    create.add_argument("--json", action="store_true", help="print JSON")

    upload = sub.add_parser("upload", help="upload local files; prints their api-assets paths")
    upload.add_argument("files", nargs="+", metavar="FILE")
    upload.add_argument("-q", "--quiet", action="store_true", help="print only the api-assets paths")

    add_emulator_arguments(sub.add_parser("emulator", help="serve the local API emulator until Ctrl-C"))

    hooks = sub.add_parser("webhooks", help="receive webhooks locally (no token needed)")
    hooks_sub = hooks.add_subparsers(dest="webhooks_command", required=True, metavar="COMMAND")
    listen = hooks_sub.add_parser("listen", help="print verified webhook deliveries until Ctrl-C")
    listen.add_argument("--port", type=int, default=8080, help="TCP port, 0 for any free one (default 8080)")
    listen.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    listen.add_argument("--path", default="/webhooks/magic-hour", help="URL path (default %(default)s)")
    listen.add_argument("--secret", help="webhook secret (default: $MAGIC_HOUR_WEBHOOK_SECRET)")
    listen.add_argument("--json", action="store_true", help="print each event as one JSON line")

    demo = sub.add_parser("demo", help="render a batch on the built-in emulator (no token, no network)")
    demo.add_argument("--dir", type=Path, default=Path("magic-hour-demo"), help="where outputs go")
    demo.add_argument("--speed", type=float, default=0.25, help="emulator render time factor")
    return parser


def exit_code(error: BaseException) -> int:
    if isinstance(error, ConfigurationError):
        return EXIT_USAGE
    if isinstance(error, (AuthenticationError, PermissionDeniedError)):
        return EXIT_AUTH
    if isinstance(error, NotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(error, TimeoutError):
        return EXIT_TIMEOUT
    return EXIT_ERROR


async def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from ._demo import run_demo

        return await run_demo(directory=args.dir, speed=args.speed)
    if args.command == "webhooks":
        return await cmd_webhooks_listen(args)
    progress = Progress()
    async with AsyncClient(
        token=args.token, base_url=args.base_url, on_poll_event=progress.on_poll_event
    ) as client:
        if args.command == "get":
            return await cmd_get(client, args)
        if args.command == "delete":
            return await cmd_delete(client, args)
        if args.command == "wait":
            return await cmd_wait(client, args, progress)
        if args.command == "download":
            return await cmd_download(client, args, progress)
        if args.command == "create":
            return await cmd_create(client, args, progress)
        return await cmd_upload(client, args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (see the module docstring)."""
    args = build_parser().parse_args(argv)
    if args.command == "emulator":
        return run_emulator(args)
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (MagicHourError, OSError) as error:
        detail = f"{type(error).__name__}: {error}"
        if isinstance(error, WaitTimeoutError) and error.project is not None:
            detail += f" (last status: {error.project.status})"
        print(f"error: {detail}", file=sys.stderr)
        return exit_code(error)
