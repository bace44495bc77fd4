"""``magic-hour-async``: the command line.

Each command is a small coroutine over an :class:`AsyncClient`; ``main`` parses arguments, runs the command,
and turns every SDK error into one line on stderr naming what failed, with an exit status a script can
branch on (the table is in :mod:`._errors`). Everything that can be checked before a request is: numbers,
URLs, files to upload, the directory to save into; a mistake there exits 2 before anything is paid for.

Global options (``--token``, ``--base-url``, ``--json``) are accepted before or after the command: each
command's parser repeats them with ``default=SUPPRESS``, so a value given before the command is not reset
by the command's parser.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from .._client import AsyncClient
from .._converter import converter
from .._exceptions import ConfigurationError, MagicHourError
from .._http._config import BASE_URL_ENV
from .._models import Project
from .._resources.projects import save_outputs
from ..batch._cli import register as register_batch
from ..batch._cli import run_command as run_batch_command
from ._args import base_url, base_url_arg, local_files, port, positive_number, writable_directory
from ._emulator import add_arguments as add_emulator_arguments
from ._emulator import run as run_emulator
from ._errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, describe, exit_code, worst
from ._progress import Progress
from ._show import print_project, project_json
from ._tools import KINDS, bind_body, create_uploading, create_with, project_path, projects, tool_named

# Names other commands import from here: the exit statuses and helpers now live in _errors, _show and _tools.
__all__ = [
    "EXIT_ERROR",
    "EXIT_USAGE",
    "build_parser",
    "create_with",
    "describe",
    "exit_code",
    "main",
    "print_project",
    "project_json",
]

EXIT_BROKEN_PIPE = 141  # what a shell reports for a process ended by SIGPIPE


class _Subject:
    """What the command is working on, so that an error line can name it (and the request's URL)."""

    def __init__(self) -> None:
        self.name: str | None = None
        self.request: str | None = None

    def project(self, client: AsyncClient, method: str, kind: str, id: str) -> None:
        self.name = f"{kind} project {id}"
        self.request = f"{method} {client.base_url}{project_path(kind, id)}"


def _out(line: str = "") -> None:
    print(line, flush=True)


def _print_projects(found: list[Project], as_json: bool) -> None:
    if as_json:
        _out(json.dumps([project_json(p) for p in found], indent=2))
        return
    for project in found:
        print_project(project, as_json=False, out=sys.stdout)


def _render_failure(kind: str, project: Project) -> str | None:
    """The error line for a render that ended badly, None for a complete one."""
    if project.status == "complete":
        return None
    detail = f"{project.error.code}: {project.error.message}" if project.error else "no details"
    return f"error: {kind} project {project.id}: render {project.status}: {detail}"


async def cmd_get(client: AsyncClient, args: argparse.Namespace, subject: _Subject) -> int:
    subject.project(client, "GET", args.kind, args.id)
    print_project(await projects(client, args.kind).get(id=args.id), as_json=args.json, out=sys.stdout)
    return 0


async def cmd_delete(client: AsyncClient, args: argparse.Namespace, subject: _Subject) -> int:
    subject.project(client, "DELETE", args.kind, args.id)
    await projects(client, args.kind).delete(id=args.id)
    _out(f"deleted {args.kind} project {args.id}")
    return 0


async def cmd_wait(client: AsyncClient, args: argparse.Namespace, progress: Progress) -> int:
    """Wait for each id on its own: one that fails is reported and the others go on."""
    if args.download is not None:
        writable_directory(args.download, "--download")
    kind, resource = args.kind, projects(client, args.kind)
    ids = list(dict.fromkeys(args.ids))
    progress.track(kind, *ids)
    finished: dict[str, Project] = {}
    codes: list[int] = []

    async def one(id: str) -> None:
        try:
            project = await resource.wait(id=id, timeout=args.timeout)
            finished[id] = project
            failure = _render_failure(kind, project)
            if failure is not None:
                codes.append(EXIT_ERROR)
                progress.report(failure)
                return
            if args.download is not None:
                finished[id] = await save_outputs(client, project, args.download, progress.on_transfer)
            codes.append(0)
        except MagicHourError as error:
            codes.append(exit_code(error))
            progress.fail(id, type(error).__name__)
            request = f"GET {client.base_url}{project_path(kind, id)}"
            last = progress.last_errors.get(id)
            progress.report(describe(error, f"{kind} project {id}", request=request, last_poll_error=last))

    await asyncio.gather(*(one(id) for id in ids))
    progress.close()
    _print_projects([finished[id] for id in ids if id in finished], args.json)
    return worst(codes)


async def cmd_download(
    client: AsyncClient, args: argparse.Namespace, progress: Progress, subject: _Subject
) -> int:
    writable_directory(args.dir, "--dir")
    subject.project(client, "GET", args.kind, args.id)
    project = await projects(client, args.kind).get(id=args.id)
    why = None
    if not project.enabled:
        why = "the project was deleted, and its outputs with it"
    elif project.status == "error":
        detail = f"{project.error.code}: {project.error.message}" if project.error else "no details"
        why = f"the render failed ({detail})"
    elif project.status == "canceled":
        why = "the render was canceled"
    elif project.status != "complete":
        why = f"the render is not complete yet (it is {project.status}); `wait --download` waits for it"
    elif not project.downloads:
        why = "the project is complete but lists no outputs"
    if why is not None:
        print(f"error: {args.kind} project {args.id}: nothing to download: {why}", file=sys.stderr)
        return EXIT_ERROR
    subject.request = None  # from here on the URLs are signed output URLs, named by the errors themselves
    paths = await client.download_outputs(project, args.dir, on_progress=progress.on_transfer)
    progress.close()
    saved = [("already present" if path.name in progress.present else "saved", path) for path in paths]
    if args.json:
        _out(json.dumps([{"path": str(path), "state": state} for state, path in saved], indent=2))
    else:
        for state, path in saved:
            _out(f"{state}: {path}")
    return 0


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


async def cmd_create(
    client: AsyncClient, args: argparse.Namespace, progress: Progress, subject: _Subject
) -> int:
    """Upload local files, create; with ``--wait``, wait and optionally download. Checks come first."""
    if args.download is not None and not args.wait:
        raise ConfigurationError(
            "--download needs --wait: without it the command ends before any output exists"
        )
    body = _read_body(args.body)
    resource = tool_named(client, args.tool)
    bind_body(resource, "create", **body)  # a wrong field is a usage error now, not after an upload
    if args.download is not None:
        writable_directory(args.download, "--download")
    name = args.tool.rpartition("/")[2]
    subject.name, subject.request = f"tool {name}", f"POST {client.base_url}{resource._path}"
    created = await create_uploading(client, args.tool, body)
    kind = resource._kind
    if not args.wait:
        _out(
            json.dumps(converter.unstructure(created))
            if args.json
            else f"created {kind} project {created.id}"
        )
        return 0
    print(f"created {kind} project {created.id}; waiting", file=progress.stream, flush=True)
    progress.track(kind, created.id)
    subject.project(client, "GET", kind, created.id)
    project: Project = await projects(client, kind).wait(id=created.id, timeout=args.timeout)
    failure = _render_failure(kind, project)
    if failure is None and args.download is not None:
        project = await save_outputs(client, project, args.download, progress.on_transfer)
    progress.close()
    print_project(project, as_json=args.json, out=sys.stdout)
    if failure is not None:
        print(failure, file=sys.stderr)
        return EXIT_ERROR
    return 0


async def cmd_upload(client: AsyncClient, args: argparse.Namespace, subject: _Subject) -> int:
    local_files(list(args.files))
    subject.name = "upload" if len(args.files) == 1 else f"upload of {len(args.files)} files"
    paths = await client.v1.files.upload_files(list(args.files))
    if args.json:
        _out(json.dumps([{"source": s, "file_path": p} for s, p in zip(args.files, paths, strict=True)]))
        return 0
    for local, remote in zip(args.files, paths, strict=True):
        _out(remote if args.quiet else f"{local} -> {remote}")
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
            _out(json.dumps({"type": event.type, "payload": body}))
            return
        status = payload.get("status") if isinstance(payload, dict) else payload.status
        error = None if isinstance(payload, dict) else payload.error
        detail = f" {error.code}: {error.message}" if error is not None else ""
        _out(f"{event.type} {event.project_id} {status}{detail}")

    app = webhooks.create_app(show, path=args.path, secret=args.secret)  # no secret: ConfigurationError
    log = logging.getLogger("magic_hour_async.webhooks")  # rejected deliveries and callback errors
    log.setLevel(logging.INFO)
    log.addHandler(logging.StreamHandler(sys.stderr))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, args.host, args.port)
        await site.start()
        host, bound = runner.addresses[0][:2]
        url = f"http://{host}:{bound}{args.path}"
        print(f"listening for Magic Hour webhooks on {url}", file=sys.stderr, flush=True)
        stop = asyncio.Event()
        with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows: Ctrl-C only
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
    return 0


def _global_options(parser: argparse.ArgumentParser, default: object) -> None:
    """``--token``, ``--base-url`` and ``--json``, on the main parser and again on each command's."""
    parser.add_argument("--token", default=default, help="API token (default: $MAGIC_HOUR_API_KEY)")
    parser.add_argument(
        "--base-url",
        type=base_url_arg,
        default=default,
        help="API URL (default: $MAGIC_HOUR_BASE_URL or production)",
    )
    parser.add_argument("--json", action="store_true", default=default, help="print JSON on stdout")


def _register_project_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    get = sub.add_parser("get", parents=[common], help="show a project")
    get.add_argument("kind", choices=KINDS)
    get.add_argument("id")

    wait = sub.add_parser("wait", parents=[common], help="wait for projects to finish, with live progress")
    wait.add_argument("kind", choices=KINDS)
    wait.add_argument("ids", nargs="+", metavar="ID")
    wait.add_argument("--timeout", type=positive_number, help="give up after S seconds (> 0)")
    wait.add_argument("--download", metavar="DIR", type=Path, help="save outputs of complete projects")

    download = sub.add_parser("download", parents=[common], help="save a complete project's outputs")
    download.add_argument("kind", choices=KINDS)
    download.add_argument("id")
    download.add_argument("--dir", type=Path, default=Path("."), help="target directory (default: .)")

    delete = sub.add_parser("delete", parents=[common], help="delete a project")
    delete.add_argument("kind", choices=KINDS)
    delete.add_argument("id")

    create = sub.add_parser(
        "create", parents=[common], help="start a render with a tool (uploads local files)"
    )
    create.add_argument("tool", help="the tool's path name (ai-image-generator, face-swap, ...)")
    create.add_argument("--body", required=True, help="the request body: JSON, or @file.json")
    create.add_argument("--wait", action="store_true", help="wait for the render, then print the project")
    create.add_argument("--timeout", type=positive_number, help="with --wait: give up after S seconds")
    create.add_argument("--download", metavar="DIR", type=Path, help="with --wait: save the outputs here")

    upload = sub.add_parser(
        "upload", parents=[common], help="upload local files; prints their api-assets paths"
    )
    upload.add_argument("files", nargs="+", metavar="FILE")
    upload.add_argument("-q", "--quiet", action="store_true", help="print only the api-assets paths")


def _register_local_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_emulator_arguments(sub.add_parser("emulator", help="serve the local API emulator until Ctrl-C"))

    hooks = sub.add_parser("webhooks", help="receive webhooks locally (no token needed)")
    hooks_sub = hooks.add_subparsers(dest="webhooks_command", required=True, metavar="COMMAND")
    listen = hooks_sub.add_parser("listen", help="print verified webhook deliveries until Ctrl-C")
    listen.add_argument("--port", type=port, default=8080, help="TCP port, 0 for any free one (default 8080)")
    listen.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    listen.add_argument("--path", default="/webhooks/magic-hour", help="URL path (default %(default)s)")
    listen.add_argument("--secret", help="webhook secret (default: $MAGIC_HOUR_WEBHOOK_SECRET)")
    listen.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="one JSON line each")

    register_batch(sub)  # batch run / batch status (magic_hour_async/batch/_cli.py)

    demo = sub.add_parser("demo", help="render a batch on the built-in emulator (no token, no network)")
    demo.add_argument("--dir", type=Path, default=Path("magic-hour-demo"), help="where outputs go")
    demo.add_argument("--speed", type=positive_number, default=0.25, help="emulator render time factor (> 0)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="magic-hour-async",
        description="Magic Hour API from the command line (token from MAGIC_HOUR_API_KEY).",
    )
    _global_options(parser, None)
    parser.set_defaults(json=False)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _register_project_commands(sub, common)
    _register_local_commands(sub)
    # More commands register here, each with its own function: `batch` (durable batches) is next.
    return parser


async def _run(args: argparse.Namespace, subject: _Subject) -> int:
    if args.command == "demo":
        from ._demo import run_demo

        writable_directory(args.dir, "--dir")
        return await run_demo(directory=args.dir, speed=args.speed)
    if args.command == "webhooks":
        return await cmd_webhooks_listen(args)
    if args.base_url is None and os.environ.get(BASE_URL_ENV):
        base_url(os.environ[BASE_URL_ENV], BASE_URL_ENV)
    if args.command == "batch":
        return await run_batch_command(args)
    progress = Progress()
    async with AsyncClient(
        token=args.token, base_url=args.base_url, on_poll_event=progress.on_poll_event
    ) as client:
        if args.command == "get":
            return await cmd_get(client, args, subject)
        if args.command == "delete":
            return await cmd_delete(client, args, subject)
        if args.command == "wait":
            return await cmd_wait(client, args, progress)
        if args.command == "download":
            return await cmd_download(client, args, progress, subject)
        if args.command == "create":
            return await cmd_create(client, args, progress, subject)
        return await cmd_upload(client, args, subject)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (see :mod:`._errors`)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # argparse: 2 for a usage error, 0 for --help
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    if args.command == "emulator":
        return run_emulator(args)
    subject = _Subject()
    try:
        code = asyncio.run(_run(args, subject))
        sys.stdout.flush()  # here, where a closed pipe is handled, not at the interpreter's exit
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Whoever read stdout has gone (`| head`): not a failure to report. Point stdout at nothing so the
        # interpreter's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except (MagicHourError, OSError) as error:
        print(describe(error, subject.name, request=subject.request), file=sys.stderr)
        return exit_code(error)
