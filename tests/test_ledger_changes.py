"""The ledger's change counter (a batch changed since a point, asked cheaply) and its history
of job durations per backend (a new runner starts informed), on real SQLite files (and
PostgreSQL for the tests marked `every_database`)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mirrago.ledger import SCHEMA_VERSION, JobInput, Ledger, ReviewConflict, job_durations
from mirrago.ledger.durations import KEPT_PER_BACKEND
from mirrago.models import JobStatus, Submission

B = "test:changes"
RUNNER = "changes-test:1:a"
PAIRS = [JobInput(f"/p/{i}.jpg", f"/g/{i}.png") for i in range(4)]


def _submission(job_id: str) -> Submission:
    return Submission(
        job_id=job_id,
        status=JobStatus.IN_PROGRESS,
        raw_status="pending",
        business_id=None,
        username=None,
        cloth_id=None,
        credits_before=100,
        created_at=None,
    )


# --------------------------------------------------------------------------- change counter


@pytest.mark.every_database
def test_a_batch_read_twice_with_no_write_between_has_one_version(ledger: Ledger) -> None:
    batch = ledger.create_batch("one", "src", PAIRS, backend=B)
    first = ledger.batch_version(batch.id)
    assert ledger.batch_version(batch.id) == first
    assert not ledger.batch_changed(batch.id, first)
    assert ledger.batch_changed(batch.id, None)


@pytest.mark.every_database
def test_every_kind_of_write_to_a_batch_changes_its_version(ledger: Ledger) -> None:
    batch = ledger.create_batch("one", "src", PAIRS, backend=B)
    ledger.register_runner(RUNNER)
    seen = [ledger.batch_version(batch.id)]

    def changed() -> None:
        version = ledger.batch_version(batch.id)
        assert version not in seen
        seen.append(version)

    row = ledger.claim_next(RUNNER, backend=B)
    assert row is not None
    changed()
    ledger.record_submission(row.id, RUNNER, _submission("job-1"))
    changed()
    ledger.update_server_status(row.id, RUNNER, "processing")
    changed()
    ledger.complete(
        row.id,
        RUNNER,
        server_status="completed",
        result_url=None,
        result_path=None,
        thumbnail_path=None,
    )
    changed()
    review = ledger.record_review(row.id, "pass", reviewer="ana", expected_review_id=None)
    assert review is not None
    changed()
    ledger.undo_review(row.id, reviewer="ana")
    changed()
    ledger.rename_batch(batch.id, "renamed")
    changed()
    ledger.set_batch_paused(batch.id, True)
    changed()
    last = ledger.jobs(batch_id=batch.id)[-1]
    ledger.cancel(last.id)
    changed()


@pytest.mark.every_database
def test_a_write_to_another_batch_leaves_the_version_alone(ledger: Ledger) -> None:
    mine = ledger.create_batch("mine", "src", PAIRS, backend=B)
    version = ledger.batch_version(mine.id)
    other = ledger.create_batch("other", "src", PAIRS, backend=B)
    ledger.rename_batch(other.id, "still other")
    ledger.cancel(ledger.jobs(batch_id=other.id)[0].id)
    assert not ledger.batch_changed(mine.id, version)


def test_a_refused_verdict_writes_nothing_and_changes_nothing(ledger: Ledger) -> None:
    batch = ledger.create_batch("one", "src", PAIRS[:1], backend=B)
    [row] = ledger.jobs(batch_id=batch.id)
    ledger.record_review(row.id, "pass", reviewer="ana", expected_review_id=None)
    version = ledger.batch_version(batch.id)
    with pytest.raises(ReviewConflict):
        ledger.record_review(row.id, "fail", ["artifacts"], reviewer="ben", expected_review_id=None)
    assert not ledger.batch_changed(batch.id, version)


def test_a_deleted_batch_has_changed(ledger: Ledger) -> None:
    batch = ledger.create_batch("one", "src", PAIRS, backend=B)
    version = ledger.batch_version(batch.id)
    ledger.delete_batch(batch.id)
    assert ledger.batch_changed(batch.id, version)
    assert ledger.batch_version(batch.id).rows == 0


# --------------------------------------------------------------------------- durations


@pytest.mark.every_database
def test_durations_are_kept_per_backend_with_the_parallelism_seen(ledger: Ledger) -> None:
    assert ledger.duration_history(B).seconds == []
    assert ledger.duration_history(B).parallel is None
    ledger.record_durations(B, [2.0, 2.5], parallel=20)
    ledger.record_durations(B, [3.0])
    ledger.record_durations("other:backend", [9.0], parallel=4)
    history = ledger.duration_history(B)
    assert history.seconds == [2.0, 2.5, 3.0]
    assert history.parallel == 20  # the latest seen; a record without one keeps it
    assert ledger.duration_history("other:backend").seconds == [9.0]


def test_only_the_latest_durations_are_kept(ledger: Ledger) -> None:
    ledger.record_durations(B, [1.0] * KEPT_PER_BACKEND)
    ledger.record_durations(B, [5.0] * 10)
    history = ledger.duration_history(B)
    assert len(history.seconds) == KEPT_PER_BACKEND
    assert history.seconds[-10:] == [5.0] * 10
    with ledger.read_connection() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(job_durations)).scalar()
    assert stored == KEPT_PER_BACKEND


def test_a_backend_s_history_can_start_afresh(ledger: Ledger) -> None:
    ledger.record_durations(B, [2.0], parallel=3)
    ledger.record_durations("other:backend", [9.0])
    ledger.forget_durations(B)
    assert ledger.duration_history(B).seconds == []
    assert ledger.duration_history("other:backend").seconds == [9.0]


@pytest.mark.every_database
def test_a_ledger_from_before_durations_gets_the_table_on_opening(ledger_url: str) -> None:
    old = Ledger(ledger_url)
    with old._write() as conn:  # noqa: SLF001 - the previous schema, as it was on disk
        conn.execute(sa.text("DROP TABLE job_durations"))
        conn.execute(sa.text("DELETE FROM schema_version"))
        conn.execute(sa.text(f"INSERT INTO schema_version (version) VALUES ({SCHEMA_VERSION - 1})"))
    old.close()
    upgraded = Ledger(ledger_url)
    try:
        assert upgraded.schema_version() == SCHEMA_VERSION
        upgraded.record_durations(B, [2.0])
        assert upgraded.duration_history(B).seconds == [2.0]
    finally:
        upgraded.close()
