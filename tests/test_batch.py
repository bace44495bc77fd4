"""``magic_hour_async.batch`` with the SQLite journal, end to end against the emulator over loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_asyncio

import magic_hour_async as mh
from magic_hour_async.batch import Batch, Job, Totals, worst_case_credits
from magic_hour_async.testing import Emulator

pytestmark = pytest.mark.asyncio

FAST = mh.PollPolicy(initial=0.01, maximum=0.05)
IMAGE = "POST /v1/ai-image-generator"


async def until(condition: Callable[[], bool], *, timeout: float = 10.0) -> None:
    """Let the loop run until ``condition()`` holds; fail after ``timeout`` seconds (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.002)


def read(path: str | Path) -> bytes:
    return Path(path).read_bytes()


def image(prompt: str, count: int = 1) -> dict[str, Any]:
    return {"name": prompt, "image_count": count, "style": {"prompt": prompt}}


@pytest_asyncio.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(seed=3, speed=0.001, output_size=2048) as emulator:
        yield emulator


@pytest_asyncio.fixture
async def client(emu: Emulator) -> AsyncIterator[mh.AsyncClient]:
    async with mh.AsyncClient(token=emu.token, base_url=emu.url, poll=FAST) as sdk:
        yield sdk


async def collect(batch: Batch, **options: Any) -> dict[str, Job]:
    return {job.key: job async for job in batch.run(**options)}


def rows(path: Path) -> dict[str, dict[str, Any]]:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.row_factory = sqlite3.Row
        return {row["key"]: dict(row) for row in connection.execute("SELECT * FROM jobs")}


def set_row(path: Path, key: str, **columns: Any) -> None:
    """Put a row in the state a crashed process would have left (the journal is a plain SQLite file)."""
    assignments = ", ".join(f"{name} = ?" for name in columns)
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute(f"UPDATE jobs SET {assignments} WHERE key = ?", (*columns.values(), key))
        connection.commit()


async def test_run_creates_waits_downloads_and_a_rerun_repeats_nothing(
    emu: Emulator, client: mh.AsyncClient, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    async with Batch(client, tmp_path / "j.db", default_estimate=10) as batch:
        for n in range(6):
            await batch.add(f"k{n}", "ai-image-generator", image(f"p{n}", count=1 + n % 2))
        done = await collect(batch, concurrency=3, download_directory=out)
        assert sorted(done) == [f"k{n}" for n in range(6)]
        for job in done.values():
            assert job.state == "complete" and job.downloaded and job.project_id is not None
            assert job.credits_charged == 5 * (1 + int(job.key[1:]) % 2)
            assert [read(p) for p in job.paths] == [
                emu.output_bytes(job.project_id, i) for i in range(len(job.paths))
            ]
        status = await batch.status()
        assert status.counts["complete"] == 6 and status.downloaded == 6
        assert (status.credits_charged, status.credits_reserved) == (45, 0)
        requests = emu.counters.count()
        assert await collect(batch, concurrency=3, download_directory=out) == {}
        assert emu.counters.count() == requests  # a finished batch sends nothing at all
    assert emu.counters.count(IMAGE) == 6


async def test_add_is_idempotent_by_key_and_refuses_a_different_body(
    client: mh.AsyncClient, tmp_path: Path
) -> None:
    async with Batch(client, tmp_path / "j.db") as batch:
        first = await batch.add("a", "ai-image-generator", image("x"), estimate=5)
        again = await batch.add(
            "a", "/v1/ai-image-generator", {"style": {"prompt": "x"}, "image_count": 1, "name": "x"}
        )
        assert again == first and first.state == "pending" and first.estimate == 5
        with pytest.raises(mh.ConfigurationError, match="different body"):
            await batch.add("a", "ai-image-generator", image("y"))
        with pytest.raises(mh.ConfigurationError, match="different tool"):
            await batch.add("a", "ai-gif-generator", image("x"))
        with pytest.raises(mh.ConfigurationError, match="plain JSON"):
            await batch.add("b", "ai-image-generator", {"when": object()})
        assert (await batch.status()).total == 1


async def test_a_create_lost_after_it_was_sent_is_unknown_and_only_resent_on_request(
    emu: Emulator, client: mh.AsyncClient, tmp_path: Path
) -> None:
    emu.faults.add(route=IMAGE, reset="after", times=1)  # the render is created, the answer is lost
    async with Batch(client, tmp_path / "j.db", default_estimate=5) as batch:
        await batch.add("lost", "ai-image-generator", image("lost"))
        [job] = (await collect(batch)).values()
        assert job.state == "unknown" and job.project_id is None and "after it was sent" in (job.error or "")
        assert job.credits_reserved == 5  # it may have been charged: the reservation stays
        assert emu.counters.count(IMAGE) == 1
        rerun = await collect(batch)
        assert [j.state for j in rerun.values()] == ["unknown"] and emu.counters.count(IMAGE) == 1
        [again] = (await collect(batch, resubmit_unknown=True)).values()
        assert again.state == "complete" and again.attempts == 2
        assert (again.credits_charged, again.credits_uncertain, again.credits_reserved) == (5, 5, 0)
    assert emu.counters.count(IMAGE) == 2


async def test_a_server_error_on_the_create_is_unknown_and_a_4xx_is_an_error_that_costs_nothing(
    emu: Emulator, client: mh.AsyncClient, tmp_path: Path
) -> None:
    emu.faults.add(route=IMAGE, status=502, html=True, times=1)
    async with Batch(client, tmp_path / "j.db", default_estimate=5) as batch:
        await batch.add("a", "ai-image-generator", image("a"))
        await batch.add("b", "ai-image-generator", {"image_count": 99, "style": {"prompt": "b"}})
        await batch.add("c", "no-such-tool", {})
        done = await collect(batch, concurrency=1)
        assert done["a"].state == "unknown" and "ServerError" in (done["a"].error or "")
        # The emulator answers a schema violation 400 invalid_request, as the 2026-11 spec says (was 422).
        assert done["b"].state == "error" and "BadRequestError" in (done["b"].error or "")
        assert done["c"].state == "error" and "unknown tool" in (done["c"].error or "")
        assert (done["b"].credits_reserved, done["b"].credits_charged) == (0, 0)
        status = await batch.status()
        assert status.credits_reserved == 5 and status.credits_charged == 0


async def test_a_row_left_submitting_by_a_dead_process_becomes_unknown_and_is_reported(
    emu: Emulator, client: mh.AsyncClient, tmp_path: Path
) -> None:
    journal = tmp_path / "j.db"
    async with Batch(client, journal, default_estimate=5) as batch:
        await batch.add("mid-post", "ai-image-generator", image("m"))
    set_row(journal, "mid-post", state="submitting", owner="dead", reserved=5, attempts=1)
    async with Batch(client, journal) as batch:
        [job] = (await collect(batch)).values()
        assert job.state == "unknown" and "stopped while sending" in (job.error or "")
        assert [j.key async for j in batch.jobs(state="unknown")] == ["mid-post"]
    assert emu.counters.count(IMAGE) == 0


async def test_submitted_jobs_resume_waiting_and_complete_ones_resume_downloading_without_a_post(
    emu: Emulator, client: mh.AsyncClient, tmp_path: Path
) -> None:
    journal, out = tmp_path / "j.db", tmp_path / "out"
    waiting = emu.create_project("image", duration=0.05)
    finished = emu.create_project("image", status="complete", outputs=2)
    async with Batch(client, journal, default_estimate=5) as batch:
        await batch.add("waiting", "ai-image-generator", image("w"))
        await batch.add("finished", "ai-image-generator", image("f"))
    set_row(journal, "waiting", state="submitted", project_id=waiting, kind="image", reserved=5, attempts=1)
    set_row(journal, "finished", state="complete", project_id=finished, kind="image", charged=5, attempts=1)
    (out / "").mkdir()
    stale = out / f".{finished}-0-output.png.deadbeef.part"
    stale.write_bytes(b"half")  # a download killed mid-write
    async with Batch(client, journal) as batch:
        done = await collect(batch, download_directory=out)
    assert {k: j.state for k, j in done.items()} == {"waiting": "complete", "finished": "complete"}
    assert len(done["finished"].paths) == 2
    assert read(done["finished"].paths[1]) == emu.output_bytes(finished, 1)
    assert not stale.exists() and not list(out.glob("*.part"))
    assert emu.counters.count(IMAGE) == 0
    assert emu.counters.count("GET /v1/image-projects/{id}", id=finished) == 1  # fresh URLs, no waiting


async def test_failed_renders_are_settled_to_their_refund(
    emu: Emulator, client: mh.AsyncClient, tmp_path: Path
) -> None:
    emu.error_rate = 1.0
    async with Batch(client, tmp_path / "j.db") as batch:
        await batch.add(
            "bad", "photo-colorizer", {"assets": {"image_file_path": "https://example.com/a.png"}}
        )
        [job] = (await collect(batch)).values()
        assert job.state == "error" and job.credits_charged == 0 and job.credits_reserved == 0
        assert job.error is not None and ":" in job.error
        assert (await batch.status()).credits_committed == 0


async def test_local_asset_files_are_uploaded_before_the_create(
    emu: Emulator, client: mh.AsyncClient, tmp_path: Path
) -> None:
    photo = tmp_path / "old.jpg"
    photo.write_bytes(b"\xff\xd8 a photo")
    async with Batch(client, tmp_path / "j.db") as batch:
        await batch.add("color", "photo-colorizer", {"assets": {"image_file_path": str(photo)}})
        [job] = (await collect(batch)).values()
        assert job.state == "complete" and job.credits_charged == 10
        assert job.body == {"assets": {"image_file_path": str(photo)}}  # the journal keeps the caller's body
    [uploaded] = emu.uploads.values()
    assert uploaded.read_bytes() == photo.read_bytes()


async def test_budget_is_never_exceeded_by_settled_plus_reserved_credits(
    emu: Emulator, client: mh.AsyncClient, tmp_path: Path
) -> None:
    emu.error_rate = 0.5  # refunds free budget for jobs that waited on open reservations
    timeline: list[Totals] = []
    async with Batch(client, tmp_path / "j.db") as batch:
        batch.journal.observer = timeline.append
        for n in range(30):
            # worst case 10 per image; the emulator charges 5, so settled charges leave room for more jobs
            await batch.add(
                f"k{n}", "ai-image-generator", image(f"p{n}", 1 + n % 3), estimate=10 * (1 + n % 3)
            )
        await batch.add("huge", "ai-image-generator", image("huge"), estimate=1000)
        await batch.add("unpriced", "ai-image-generator", image("unpriced"))
        done = await collect(batch, concurrency=6, max_credits=200)
        status = await batch.status()
    assert timeline and max(t.settled + t.reserved for t in timeline) <= 200
    assert max(t.reserved for t in timeline) > 0
    assert done["huge"].state == "over_budget" and "does not fit" in (done["huge"].error or "")
    assert done["unpriced"].state == "over_budget" and "estimate=" in (done["unpriced"].error or "")
    sent = [job for job in done.values() if job.state in ("complete", "error")]
    assert len(sent) == emu.counters.count(IMAGE)
    assert sum(job.credits_charged for job in sent) == status.credits_charged <= 200
    assert status.credits_reserved == 0 and status.counts["over_budget"] >= 2
    assert status.counts["pending"] == 0  # every job was either sent or found never to fit


async def test_one_runner_per_sqlite_journal(client: mh.AsyncClient, tmp_path: Path) -> None:
    emu_hold = Path(tmp_path / "j.db")
    async with Batch(client, emu_hold, default_estimate=1) as first, Batch(client, emu_hold) as second:
        await first.add("a", "ai-image-generator", image("a"))
        await first.journal.acquire_runner()
        try:
            with pytest.raises(mh.ConfigurationError, match="another process is running"):
                await collect(second)
        finally:
            await first.journal.release_runner()
        assert [job.state for job in (await collect(second)).values()] == ["complete"]


async def test_leaving_the_loop_during_a_create_leaves_the_job_unknown(
    emu: Emulator, client: mh.AsyncClient, tmp_path: Path
) -> None:
    held = emu.faults.add(route=IMAGE, hold=True, times=1)
    async with Batch(client, tmp_path / "j.db", default_estimate=5) as batch:
        await batch.add("held", "ai-image-generator", image("held"))
        await batch.add("later", "ai-image-generator", image("later"))
        run = batch.run(concurrency=1)
        first = asyncio.ensure_future(run.__anext__())
        await until(lambda: held.held == 1)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        await run.aclose()
        held.release()
        assert (await batch.get("held")) is not None
        assert (await batch.get("held")).state == "unknown"  # type: ignore[union-attr]
        assert (await batch.get("later")).state == "pending"  # type: ignore[union-attr]


async def test_the_account_balance_is_a_second_ceiling(
    emu: Emulator, client: mh.AsyncClient, tmp_path: Path
) -> None:
    emu.credits = 25  # room for two 10-credit jobs, not three

    @attrs.frozen
    class Account:
        credits: int

    class AccountResource:
        reads = 0

        async def get(self) -> Account:
            self.reads += 1
            return Account(credits=emu.credits)

    account = AccountResource()
    client.v1.account = account  # type: ignore[attr-defined]  # the endpoint of the newest spec
    async with Batch(client, tmp_path / "j.db") as batch:
        for n in range(3):
            await batch.add(
                f"k{n}", "photo-colorizer", {"assets": {"image_file_path": "https://x.test/a.png"}}
            )
        done = await collect(batch, concurrency=1)
    assert sorted(job.state for job in done.values()) == ["complete", "complete", "over_budget"]
    assert account.reads >= 2  # the last job was refused only after a fresh read
    assert emu.counters.count("POST /v1/photo-colorizer") == 2


async def test_worst_case_prices_follow_the_documented_rules() -> None:
    assert worst_case_credits("ai-headshot-generator", {}) == 50
    assert worst_case_credits("ai-voice-generator", {"style": {"prompt": "x" * 101}}) == 11
    assert worst_case_credits("ai-image-upscaler", {"scale_factor": 4}) == 200
    assert worst_case_credits("face-swap", {"end_seconds": 5}) is None
    assert json.loads(json.dumps(worst_case_credits("ai-qr-code-generator", {}))) == 0


async def test_a_render_settled_twice_is_counted_once(client: mh.AsyncClient, tmp_path: Path) -> None:
    async with Batch(client, tmp_path / "j.db") as batch:
        await batch.add("k", "ai-image-generator", image("k"), estimate=10)
        journal = batch.journal
        claim = await journal.claim(worker="w", lease=60, max_credits=100, downloads=False, skip=())
        assert claim.job is not None and claim.job.state == "submitting" and claim.job.credits_reserved == 10
        await journal.to_submitted("k", worker="w", lease=60, project_id="p1", kind="image", credits=5)
        # Two workers that both waited on the render (one adopted it after a lease ran out) settle it.
        first = await journal.finish("k", state="complete", charged=5, error=None)
        second = await journal.finish("k", state="complete", charged=5, error=None)
        assert first == second and first.credits_charged == 5
        status = await batch.status()
        assert (status.credits_charged, status.credits_reserved) == (5, 0)


async def test_the_public_names_are_sorted_and_presented_as_the_package() -> None:
    import inspect

    import magic_hour_async.batch as package

    assert list(package.__all__) == sorted(package.__all__)
    for name in package.__all__:
        item = getattr(package, name)
        if isinstance(item, type) or inspect.isfunction(item):
            assert item.__module__ == "magic_hour_async.batch", name


async def test_a_webhook_settles_its_job_in_the_journal_without_a_poll(
    emu: Emulator, client: mh.AsyncClient, tmp_path: Path
) -> None:
    from aiohttp import web

    from magic_hour_async import webhooks

    secret = "whsec_batch_test"
    journal = tmp_path / "j.db"
    rendering = emu.create_project("image", status="rendering", credits_charged=5)
    async with Batch(client, journal) as batch:
        await batch.add("hooked", "ai-image-generator", image("hooked"), estimate=10)
        set_row(journal, "hooked", state="submitted", project_id=rendering, kind="image", reserved=10)
        settled: list[Job | None] = []

        async def on_event(event: webhooks.WebhookEvent) -> None:
            settled.append(await batch.accept_webhook_event(event))

        runner = web.AppRunner(webhooks.create_app(on_event, secret=secret), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            emu.webhooks.configure(f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/magic-hour", secret)
            emu.complete(rendering)
            await until(lambda: any(job is not None for job in settled))
        finally:
            await runner.cleanup()
        job = await batch.get("hooked")
        assert job is not None and job.state == "complete" and job.credits_charged == 5
        assert (await batch.status()).credits_reserved == 0
        again = await batch.journal.finish(
            "hooked", state="complete", charged=5, error=None
        )  # the poller, later
        assert again.credits_charged == 5 and (await batch.status()).credits_charged == 5
    assert emu.counters.count("GET /v1/image-projects/{id}") == 0
