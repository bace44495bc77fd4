"""``magic-hour-async batch run`` and ``batch status``: durable batches from the command line.

``batch run JOBS.jsonl --journal FILE|URL`` adds every line (``{"key", "tool", "body"}``, optionally
``"estimate"``) to the journal, which is idempotent by key, then runs the batch with one progress line per
finished job on stderr. Rerunning the same command resumes: nothing finished is repeated and no create is sent
twice. Jobs whose create outcome is unknown are listed at the end, and only sent again with
``--resubmit-unknown``. ``--webhooks`` says a webhook receiver settles the batch's jobs
(``webhooks.create_app(batch=...)`` on a PostgreSQL journal): the workers then poll ten times slower.
Exit status: 0 when every job is ``complete`` (and downloaded, with ``--download``),
1 otherwise (the summary says why); usage errors are 2, as for every command.

``batch status --journal FILE|URL [--json]`` reads the journal only: it needs no token.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO, cast

from .._client import AsyncClient
from .._exceptions import ConfigurationError
from ._batch import Batch
from ._jobs import BatchStatus, Job
from ._journal import open_journal

__all__ = ["register", "run_command"]


def register(subparsers: Any) -> None:
    """Add ``batch run`` and ``batch status`` to the CLI's sub-command parsers."""
    batch = subparsers.add_parser("batch", help="durable batches: run a JSONL file of jobs through a journal")
    commands = batch.add_subparsers(dest="batch_command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="add the jobs of a JSONL file and run the batch (rerun to resume)")
    run.add_argument(
        "jobs", type=Path, metavar="JOBS.jsonl", help='one {"key", "tool", "body"} object a line'
    )
    run.add_argument("--journal", required=True, help="an SQLite file, or a postgresql:// URL")
    run.add_argument("--concurrency", type=int, default=8, help="jobs in flight at once (default 8)")
    run.add_argument("--max-credits", type=int, help="never commit more credits than this to the batch")
    run.add_argument("--download", type=Path, metavar="DIR", help="save the outputs of complete jobs here")
    run.add_argument("--resubmit-unknown", action="store_true", help="send jobs in state unknown again")
    run.add_argument("--default-estimate", type=int, help="worst-case credits of jobs without a known price")
    run.add_argument(
        "--webhooks",
        action="store_true",
        help="a webhook receiver settles the jobs: poll only as a safety net",
    )
    status = commands.add_parser("status", help="jobs per state and credits of a journal")
    status.add_argument("--journal", required=True, help="an SQLite file, or a postgresql:// URL")
    status.add_argument("--json", action="store_true", help="print JSON")


def read_jobs(path: Path) -> Iterator[tuple[str, str, dict[str, Any], int | None]]:
    """``(key, tool, body, estimate)`` per non-empty line; ConfigurationError names the bad line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ConfigurationError(f"cannot read {path}: {error.strerror or error}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item: object = json.loads(line)
        except ValueError as error:
            raise ConfigurationError(f"{path}:{number}: not JSON: {error}") from None
        if not isinstance(item, dict):
            raise ConfigurationError(f"{path}:{number}: each line must be a JSON object")
        fields = cast("dict[str, Any]", item)
        key, tool, body, estimate = (fields.get(k) for k in ("key", "tool", "body", "estimate"))
        if not isinstance(key, str) or not isinstance(tool, str) or not isinstance(body, dict):
            raise ConfigurationError(f'{path}:{number}: needs "key" and "tool" strings and a "body" object')
        if estimate is not None and (isinstance(estimate, bool) or not isinstance(estimate, int)):
            raise ConfigurationError(f'{path}:{number}: "estimate" must be an integer')
        yield key, tool, cast("dict[str, Any]", body), estimate


def _describe(job: Job) -> str:
    parts = [job.key, job.state]
    if job.project_id:
        parts.append(job.project_id)
    if job.state in ("complete", "error", "canceled"):
        parts.append(f"{job.credits_charged} credits")
    if job.paths:
        parts.append(", ".join(job.paths))
    if job.error and job.state != "complete":
        parts.append(job.error)
    return "  ".join(parts)


def print_status(status: BatchStatus, stream: TextIO) -> None:
    counts = "  ".join(f"{state} {count}" for state, count in status.counts.items() if count)
    print(f"{status.total} jobs: {counts or 'none'}", file=stream)
    print(
        f"credits: {status.credits_charged} charged, {status.credits_reserved} reserved, "
        f"{status.credits_uncertain} uncertain; {status.downloaded} downloaded",
        file=stream,
    )


async def _run(args: argparse.Namespace) -> int:
    jobs = list(read_jobs(args.jobs))
    async with (
        AsyncClient(token=args.token, base_url=args.base_url) as client,
        Batch(client, args.journal, default_estimate=args.default_estimate) as batch,
    ):
        for key, tool, body, estimate in jobs:
            await batch.add(key, tool, body, estimate=estimate)
        total = (await batch.status()).total
        seen = 0
        async for job in batch.run(
            concurrency=args.concurrency,
            max_credits=args.max_credits,
            download_directory=args.download,
            resubmit_unknown=args.resubmit_unknown,
            webhooks=args.webhooks,
        ):
            seen += 1
            print(f"[{seen}] {_describe(job)}", file=sys.stderr, flush=True)
        status = await batch.status()
        print_status(status, sys.stdout)
        unknown = [job async for job in batch.jobs(state="unknown")]
        if unknown:
            print(
                f"{len(unknown)} job(s) are unknown: their create request may or may not have reached the "
                "API. Check your Magic Hour dashboard, then rerun with --resubmit-unknown to send them:",
                file=sys.stdout,
            )
            for job in unknown:
                print(f"  {job.key}: {job.error}", file=sys.stdout)
        complete = status.counts["complete"]
        downloaded = status.downloaded if args.download is not None else complete
        return 0 if complete == total and downloaded == complete else 1


async def _status(args: argparse.Namespace) -> int:
    journal = open_journal(args.journal)  # the journal only: no client, no token
    await journal.open()
    try:
        status = await journal.status()
        unknown: list[str] = []
        after = 0
        while page := await journal.page(state="unknown", after=after, limit=500):
            unknown.extend(job.key for _, job in page)
            after = page[-1][0]
    finally:
        await journal.close()
    if args.json:
        print(json.dumps({**status.to_json(), "unknown": unknown}, indent=2))
    else:
        print_status(status, sys.stdout)
        if unknown:
            print(f"unknown: {', '.join(unknown)}")
    return 0


async def run_command(args: argparse.Namespace) -> int:
    """The handler of ``magic-hour-async batch ...``; returns the exit status."""
    if args.batch_command == "status":
        return await _status(args)
    return await _run(args)
