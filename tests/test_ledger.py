"""The job ledger on a real SQLite file and on PostgreSQL: schema, states, claims, recovery."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from mirrago.config import Settings
from mirrago.ledger import (
    SCHEMA_VERSION,
    JobInput,
    JobState,
    Ledger,
    LedgerError,
)
from mirrago.ledger import schema as ledger_module
from mirrago.models import JobStatus, Submission

PAIRS = [JobInput(f"person-{i}.jpg", f"garment-{i}.png") for i in range(5)]
B = "http://127.0.0.1:1#test-client"  # the backend every row here is for


# Every test here runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.every_database


def _submission(job_id: str = "job-1", credits: int | None = 42) -> Submission:
    return Submission(
        job_id=job_id,
        status=JobStatus.IN_PROGRESS,
        raw_status="pending",
        business_id="demo",
        username="TEMPx",
        cloth_id="business/demo/clothes/c.png",
        credits_before=credits,
        created_at=None,
    )


def _submitted(ledger: Ledger, runner: str = "runner-a", job_id: str = "job-1") -> int:
    """A batch of one row, claimed and submitted by `runner`; returns the row id."""
    ledger.register_runner(runner)
    ledger.create_batch("one", f"src-{uuid.uuid4()}", PAIRS[:1], backend=B)
    row = ledger.claim_next(runner, backend=B)
    assert row is not None
    assert ledger.record_submission(row.id, runner, _submission(job_id))
    return row.id


# --------------------------------------------------------------------------- schema


def test_new_ledger_has_the_current_schema_version(ledger: Ledger) -> None:
    assert ledger.schema_version() == SCHEMA_VERSION


def test_open_creates_the_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    opened = Ledger.open(settings)
    try:
        assert (tmp_path / "data" / "ledger.sqlite3").is_file()
        assert opened.counts() == {state: 0 for state in JobState}
    finally:
        opened.close()


def test_sqlite_ledger_uses_wal_and_a_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    opened = Ledger(f"sqlite:///{path}")
    try:
        with opened._engine.connect() as conn:  # noqa: SLF001 - checking the connection setup
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        opened.close()


def test_reopening_a_current_ledger_keeps_its_rows(ledger_url: str) -> None:
    first = Ledger(ledger_url)
    batch = first.create_batch("kept", "src", PAIRS, backend=B)
    first.close()
    again = Ledger(ledger_url)
    try:
        assert again.schema_version() == SCHEMA_VERSION
        assert [row.target for row in again.jobs(batch_id=batch.id)] == [p.target for p in PAIRS]
    finally:
        again.close()


def test_opening_an_older_ledger_runs_the_migrations_in_order(
    ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = Ledger(ledger_url)
    batch = old.create_batch("before the upgrade", "src", PAIRS[:2], backend=B)
    old.close()

    def add_priority(conn: sa.Connection) -> None:
        conn.execute(sa.text("ALTER TABLE jobs ADD COLUMN priority INTEGER DEFAULT 0"))

    newer = SCHEMA_VERSION + 1
    monkeypatch.setattr(ledger_module, "SCHEMA_VERSION", newer)
    monkeypatch.setattr(ledger_module, "MIGRATIONS", {SCHEMA_VERSION: add_priority})
    upgraded = Ledger(ledger_url)
    try:
        assert upgraded.schema_version() == newer
        with upgraded._engine.connect() as conn:  # noqa: SLF001
            priorities = conn.execute(sa.text("SELECT priority FROM jobs")).scalars().all()
        assert priorities == [0, 0]
        assert len(upgraded.jobs(batch_id=batch.id)) == 2
    finally:
        upgraded.close()


def test_a_ledger_from_a_newer_version_is_refused_with_a_clear_message(
    ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    Ledger(ledger_url).close()
    monkeypatch.setattr(ledger_module, "SCHEMA_VERSION", 0)
    with pytest.raises(LedgerError, match="newer Mirrago Studio") as caught:
        Ledger(ledger_url)
    assert "\n" not in str(caught.value)


def test_an_unreachable_database_gives_one_line_without_the_password() -> None:
    with pytest.raises(LedgerError) as caught:
        Ledger("postgresql+psycopg://mirrago:hunter2@127.0.0.1:1/nowhere?connect_timeout=2")
    message = str(caught.value)
    assert "Cannot open the job ledger" in message
    assert "hunter2" not in message and "\n" not in message


# --------------------------------------------------------------------------- batches and rows


def test_create_batch_queues_one_row_per_input_in_order(ledger: Ledger) -> None:
    batch = ledger.create_batch("spring", "/out/spring", PAIRS, backend=B)
    rows = ledger.jobs(batch_id=batch.id)
    assert [row.row_index for row in rows] == list(range(len(PAIRS)))
    assert [row.input for row in rows] == PAIRS
    assert {row.state for row in rows} == {JobState.QUEUED}
    assert all(row.attempts == 1 and row.job_id is None for row in rows)
    assert ledger.batch(batch.id) == batch


def test_rows_keep_the_options_as_given(ledger: Ledger) -> None:
    given = JobInput("https://x.test/p.jpg", "/tmp/g.png", background="white", username="qa-7")
    batch = ledger.create_batch("opts", "src", [given], backend=B)
    assert ledger.jobs(batch_id=batch.id)[0].input == given


def test_times_are_stored_as_utc_and_returned_aware(ledger: Ledger) -> None:
    before = datetime.now(UTC)
    batch = ledger.create_batch("t", "src", PAIRS[:1], backend=B)
    row = ledger.jobs(batch_id=batch.id)[0]
    assert row.created_at.tzinfo is not None and row.created_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= row.created_at <= datetime.now(UTC)
    with ledger._engine.connect() as conn:  # noqa: SLF001 - the stored value itself
        stored = conn.execute(sa.text("SELECT created_at FROM batches")).scalar()
    stored_text = str(stored)
    assert stored_text.startswith(batch.created_at.strftime("%Y-%m-%d %H:%M:%S"))


def test_find_batch_returns_the_newest_batch_with_that_source(ledger: Ledger) -> None:
    ledger.create_batch("first", "/out/a", PAIRS[:1], backend=B)
    ledger.create_batch("other", "/out/b", PAIRS[:1], backend=B)
    newest = ledger.create_batch("second", "/out/a", PAIRS[:1], backend=B)
    assert ledger.find_batch("/out/a") == newest
    assert ledger.find_batch("/out/none") is None


def test_batches_are_listed_newest_first(ledger: Ledger) -> None:
    made = [ledger.create_batch(f"b{i}", f"s{i}", PAIRS[:1], backend=B) for i in range(3)]
    assert ledger.batches() == made[::-1]
    assert ledger.batches(limit=2) == made[::-1][:2]


def test_jobs_filter_by_state_and_list_newest_first(ledger: Ledger) -> None:
    batch = ledger.create_batch("f", "src", PAIRS, backend=B)
    rows = ledger.jobs(batch_id=batch.id)
    ledger.cancel(rows[1].id)
    assert [r.id for r in ledger.jobs(states=[JobState.CANCELED])] == [rows[1].id]
    assert [r.id for r in ledger.jobs(newest_first=True, limit=2)] == [rows[-1].id, rows[-2].id]


def test_counts_include_every_state(ledger: Ledger) -> None:
    batch = ledger.create_batch("c", "src", PAIRS, backend=B)
    ledger.cancel(ledger.jobs(batch_id=batch.id)[0].id)
    counts = ledger.counts(batch.id)
    assert set(counts) == set(JobState)
    assert counts[JobState.QUEUED] == 4 and counts[JobState.CANCELED] == 1
    assert ledger.counts(batch.id + 1000) == {state: 0 for state in JobState}


def test_a_review_is_saved_with_its_tags(ledger: Ledger) -> None:
    batch = ledger.create_batch("r", "src", PAIRS[:1], backend=B)
    row_id = ledger.jobs(batch_id=batch.id)[0].id
    ledger.record_review(row_id, "reject", ["fit", "sleeve", "sleeve", " "], "sleeve misplaced")
    row = ledger.job(row_id)
    assert row is not None
    assert (row.review_verdict, row.review_note, row.review_tags) == (
        "reject",
        "sleeve misplaced",
        ("fit", "sleeve"),
    )


def test_final_states_are_the_ones_the_runner_leaves_alone() -> None:
    assert {s for s in JobState if s.is_final} == {
        JobState.COMPLETED,
        JobState.FAILED,
        JobState.UNCERTAIN,
        JobState.CANCELED,
    }
    assert JobState("queued") is JobState.QUEUED and str(JobState.QUEUED) == "queued"


# --------------------------------------------------------------------------- transitions


def test_claim_next_takes_the_oldest_queued_row_once(ledger: Ledger) -> None:
    batch = ledger.create_batch("claim", "src", PAIRS[:2], backend=B)
    first = ledger.claim_next("runner-a", backend=B)
    second = ledger.claim_next("runner-b", backend=B)
    assert first is not None and second is not None
    assert (first.row_index, second.row_index) == (0, 1)
    assert first.state is JobState.SUBMITTING
    assert ledger.claim_next("runner-a", backend=B) is None
    assert ledger.counts(batch.id)[JobState.SUBMITTING] == 2


def test_claim_next_can_be_limited_to_some_batches(ledger: Ledger) -> None:
    ledger.create_batch("app", "app", PAIRS[:1], backend=B)
    cli = ledger.create_batch("cli", "/out", PAIRS[:1], backend=B)
    claimed = ledger.claim_next("runner-a", batch_ids=[cli.id], backend=B)
    assert claimed is not None and claimed.batch_id == cli.id
    assert ledger.claim_next("runner-a", batch_ids=[cli.id], backend=B) is None
    assert ledger.has_queued(backend=B) and not ledger.has_queued([cli.id], backend=B)


def test_record_submission_stores_the_job_and_a_credit_reading(ledger: Ledger) -> None:
    row_id = _submitted(ledger, job_id="job-77")
    row = ledger.job(row_id)
    assert row is not None
    assert (row.state, row.job_id, row.credits_before, row.server_status) == (
        JobState.SUBMITTED,
        "job-77",
        42,
        "pending",
    )
    assert row.submitted_at is not None and row.cloth_id == "business/demo/clothes/c.png"
    [reading] = ledger.credit_readings()
    assert (reading.credits_before, reading.job_id) == (42, "job-77")
    assert reading.at.tzinfo is not None


def test_a_row_only_moves_for_the_runner_that_claimed_it(ledger: Ledger) -> None:
    row_id = _submitted(ledger, runner="runner-a")
    assert not ledger.complete(
        row_id,
        "runner-b",
        server_status="completed",
        result_url=None,
        result_path=None,
        thumbnail_path=None,
    )
    assert not ledger.fail_submission(row_id, "runner-a", "too late")  # not submitting any more
    assert ledger.fail_job(row_id, "runner-a", "garment not found", "failed")
    row = ledger.job(row_id)
    assert row is not None and (row.state, row.error) == (JobState.FAILED, "garment not found")
    assert row.finished_at is not None


def test_release_puts_a_claimed_row_back_in_the_queue(ledger: Ledger) -> None:
    ledger.create_batch("rel", "src", PAIRS[:1], backend=B)
    row = ledger.claim_next("runner-a", backend=B)
    assert row is not None
    assert not ledger.release(row.id, "runner-b")
    assert ledger.release(row.id, "runner-a")
    again = ledger.claim_next("runner-b", backend=B)
    assert again is not None and again.id == row.id


def test_cancel_moves_only_queued_rows(ledger: Ledger) -> None:
    batch = ledger.create_batch("cancel", "src", PAIRS[:2], backend=B)
    claimed = ledger.claim_next("runner-a", backend=B)
    queued = ledger.jobs(batch_id=batch.id)[1]
    assert claimed is not None
    assert not ledger.cancel(claimed.id)
    assert ledger.cancel(queued.id)
    assert not ledger.cancel(queued.id)
    row = ledger.job(queued.id)
    assert row is not None and row.state is JobState.CANCELED and row.state.is_final


def test_retry_queues_a_failed_row_as_a_new_attempt_and_records_the_old_one(
    ledger: Ledger,
) -> None:
    row_id = _submitted(ledger, job_id="job-old")
    ledger.fail_job(row_id, "runner-a", "model crashed", "failed")
    assert ledger.retry(row_id)
    row = ledger.job(row_id)
    assert row is not None
    assert (row.state, row.attempts, row.job_id, row.error) == (JobState.QUEUED, 2, None, None)
    [event] = ledger.events(row_id)
    assert event.kind == "retried"
    assert event.detail == {
        "attempt": 1,
        "state": "failed",
        "job_id": "job-old",
        "error": "model crashed",
    }


def test_retry_refuses_rows_that_are_not_failed_or_uncertain(ledger: Ledger) -> None:
    row_id = _submitted(ledger)
    assert not ledger.retry(row_id)  # submitted: still in progress
    ledger.complete(
        row_id,
        "runner-a",
        server_status="completed",
        result_url="http://x/r.png",
        result_path=None,
        thumbnail_path=None,
    )
    assert not ledger.retry(row_id)
    assert not ledger.retry(10_000)


def test_a_late_answer_for_a_retried_row_is_kept_as_an_event(ledger: Ledger) -> None:
    ledger.register_runner("runner-a")
    batch = ledger.create_batch("late", "src", PAIRS[:1], backend=B)
    row = ledger.claim_next("runner-a", backend=B)
    assert row is not None
    assert ledger.mark_uncertain(row.id, "runner-a", "no answer")
    ledger.retry(row.id)
    assert not ledger.record_submission(row.id, "runner-a", _submission("job-late"))
    assert [e.kind for e in ledger.events(row.id)] == ["retried", "late_submission"]
    assert ledger.events(row.id)[-1].detail == {"job_id": "job-late"}
    assert ledger.counts(batch.id)[JobState.QUEUED] == 1


# --------------------------------------------------------------------------- recovery


def test_recovery_marks_a_stopped_runners_submitting_rows_uncertain(ledger: Ledger) -> None:
    ledger.register_runner("runner-a")
    ledger.create_batch("crash", "src", PAIRS[:2], backend=B)
    caught = ledger.claim_next("runner-a", backend=B)
    in_flight = _submitted_after_claim(ledger, "runner-a")
    ledger.unregister_runner("runner-a")

    result = ledger.recover("runner-b", backend=B)
    assert caught is not None and result.uncertain == [caught.id]
    row = ledger.job(caught.id)
    assert row is not None and row.state is JobState.UNCERTAIN
    assert row.error is not None and "may or may not have created" in row.error
    assert [r.id for r in result.adopted] == [in_flight]
    assert ledger.owned("runner-b", JobState.SUBMITTED)[0].id == in_flight


def _submitted_after_claim(ledger: Ledger, runner: str) -> int:
    row = ledger.claim_next(runner, backend=B)
    assert row is not None
    ledger.record_submission(row.id, runner, _submission(f"job-{row.id}"))
    return row.id


def test_recovery_leaves_a_live_runners_rows_alone(ledger: Ledger) -> None:
    ledger.register_runner("runner-a")
    ledger.create_batch("live", "src", PAIRS[:2], backend=B)
    claimed = ledger.claim_next("runner-a", backend=B)
    submitted = _submitted_after_claim(ledger, "runner-a")
    ledger.register_runner("runner-b")
    result = ledger.recover("runner-b", backend=B)
    assert result.uncertain == [] and result.adopted == []
    assert claimed is not None
    assert ledger.job(claimed.id).state is JobState.SUBMITTING  # type: ignore[union-attr]
    assert ledger.owned("runner-a", JobState.SUBMITTED)[0].id == submitted


def test_recovery_treats_a_stale_heartbeat_as_gone(ledger: Ledger) -> None:
    ledger.register_runner("runner-a")
    ledger.create_batch("stale", "src", PAIRS[:1], backend=B)
    claimed = ledger.claim_next("runner-a", backend=B)
    assert claimed is not None
    with ledger._write() as conn:  # noqa: SLF001 - age the heartbeat as a hung host would
        conn.execute(
            ledger_module.runners.update().values(
                heartbeat_at=datetime.now(UTC) - timedelta(seconds=60)
            )
        )
    assert ledger.recover("runner-b", stale_after=15, backend=B).uncertain == [claimed.id]


def test_recovery_adopts_only_the_batches_asked_for(ledger: Ledger) -> None:
    ledger.register_runner("runner-a")
    app = ledger.create_batch("app", "app", PAIRS[:1], backend=B)
    cli = ledger.create_batch("cli", "/out", PAIRS[:1], backend=B)
    app_row = _submitted_after_claim(ledger, "runner-a")
    cli_row = _submitted_after_claim(ledger, "runner-a")
    ledger.unregister_runner("runner-a")
    result = ledger.recover("runner-b", batch_ids=[cli.id], backend=B)
    assert [row.id for row in result.adopted] == [cli_row]
    assert ledger.job(app_row).batch_id == app.id  # type: ignore[union-attr]
    assert ledger.recover("runner-c", backend=B).adopted[0].id == app_row


_CLAIM_AND_DIE = """
import os, sys
from mirrago.ledger import Ledger
ledger = Ledger(sys.argv[1])
B = sys.argv[2]
me = f"dead-{os.getpid()}"
ledger.register_runner(me)
row = ledger.claim_next(me, backend=B)
print(row.id, flush=True)
os._exit(0)  # no unregister: as if killed
"""


@pytest.mark.slow
def test_recovery_sees_at_once_that_a_runner_on_this_host_died(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    try:
        ledger.create_batch("dead", "src", PAIRS[:1], backend=B)
        done = subprocess.run(
            [sys.executable, "-c", _CLAIM_AND_DIE, ledger_url, B],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        row_id = int(done.stdout.split()[0])
        # the dead runner's heartbeat is fresh: only its missing pid gives it away
        assert ledger.recover("runner-b", stale_after=3600, backend=B).uncertain == [row_id]
    finally:
        ledger.close()


# --------------------------------------------------------------------------- concurrency


def test_threads_on_two_ledgers_never_claim_the_same_row(ledger_url: str) -> None:
    first, second = Ledger(ledger_url), Ledger(ledger_url)
    try:
        inputs = [JobInput(f"p{i}", "g") for i in range(60)]
        batch = first.create_batch("race", "src", inputs, backend=B)
        claimed: list[int] = []
        lock = threading.Lock()

        def claim_all(ledger: Ledger, me: str) -> None:
            while (row := ledger.claim_next(me, backend=B)) is not None:
                with lock:
                    claimed.append(row.id)

        threads = [
            threading.Thread(target=claim_all, args=(ledger, f"r{i}"))
            for i, ledger in enumerate([first, second] * 3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(claimed) == sorted(r.id for r in first.jobs(batch_id=batch.id))
        assert len(claimed) == len(set(claimed)) == 60
    finally:
        first.close()
        second.close()


_CLAIM_ALL = """
import json, sys
from mirrago.ledger import Ledger
ledger = Ledger(sys.argv[1])
B = sys.argv[3]
mine = []
while (row := ledger.claim_next(sys.argv[2], backend=B)) is not None:
    mine.append(row.id)
print(json.dumps(mine))
"""


@pytest.mark.slow
def test_processes_sharing_a_ledger_never_claim_the_same_row(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    try:
        ledger.create_batch("race", "src", [JobInput(f"p{i}", "g") for i in range(90)], backend=B)
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", _CLAIM_ALL, ledger_url, f"proc-{i}", B],
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(3)
        ]
        claimed = [row for worker in workers for row in json.loads(worker.communicate(120)[0])]
        assert all(worker.returncode == 0 for worker in workers)
        assert len(claimed) == len(set(claimed)) == 90
    finally:
        ledger.close()


def test_the_sqlite_file_holds_no_secret_like_fields(tmp_path: Path) -> None:
    opened = Ledger(f"sqlite:///{tmp_path / 'l.sqlite3'}")
    opened.close()
    with sqlite3.connect(tmp_path / "l.sqlite3") as conn:
        columns = {
            row[1]
            for table in ("batches", "jobs", "credit_readings", "runners", "job_events")
            for row in conn.execute(f"PRAGMA table_info({table})")
        }
    assert not {c for c in columns if "secret" in c or "token" in c or "password" in c}


def test_private_batches_are_claimed_only_by_runners_that_name_them(ledger: Ledger) -> None:
    cli = ledger.create_batch("cli", "/out", PAIRS[:1], private=True, backend=B)
    app = ledger.create_batch("app", "try-on", PAIRS[:1], backend=B)
    claimed = ledger.claim_next("app-runner", backend=B)
    assert claimed is not None and claimed.batch_id == app.id
    assert ledger.claim_next("app-runner", backend=B) is None
    assert not ledger.has_queued(backend=B) and ledger.has_queued([cli.id], backend=B)
    mine = ledger.claim_next("cli-runner", batch_ids=[cli.id], backend=B)
    assert mine is not None and mine.batch_id == cli.id
