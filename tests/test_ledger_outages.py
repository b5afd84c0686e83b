"""The ledger may fail; the runner waits, never loses a job: writes that record a server's
answer are retried until they succeed, a failed claim claims nothing, and every row ends final
with no duplicate submission. Failures are injected into the real database connection (as a
locked or dropped database raises them), so the ledger's own error handling is what is tested."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from support import url_inputs

from mirrago.backend import backend_key
from mirrago.ledger import JobInput, JobState, Ledger
from mirrago.models import JobStatus, Submission
from mirrago.runner import Runner
from mirrago.sandbox.server import EmbeddedSandbox

WRITES = ("INSERT", "UPDATE", "DELETE")


class Faults:
    """Makes the ledger's database refuse statements: the next write matching a predicate
    (`fail_once`), and/or a seeded share of all writes, with SQLite's own error."""

    def __init__(self, ledger: Ledger, *, share: float = 0.0, seed: int = 0) -> None:
        self.share = share
        self.random = random.Random(seed)
        self.pending: list[Callable[[str, Any], bool]] = []
        self.injected = 0
        sa.event.listen(ledger._engine, "before_cursor_execute", self._maybe_fail)  # noqa: SLF001

    def fail_once(self, predicate: Callable[[str, Any], bool]) -> None:
        self.pending.append(predicate)

    def _maybe_fail(self, _conn, _cursor, statement: str, _params, context, _many) -> None:
        if not statement.lstrip().upper().startswith(WRITES):
            return
        params = (getattr(context, "compiled_parameters", None) or [{}])[0]
        for predicate in self.pending:
            if predicate(statement, params):
                self.pending.remove(predicate)
                break
        else:
            if not (self.share and self.random.random() < self.share):
                return
        self.injected += 1
        raise sqlite3.OperationalError("database is locked (injected)")


def sets_state(state: JobState) -> Callable[[str, Any], bool]:
    """A predicate: an UPDATE of jobs that moves a row to `state`."""

    def matches(statement: str, params: Any) -> bool:
        update = statement.lstrip().upper().startswith("UPDATE JOBS")
        return update and params.get("state") == state.value

    return matches


def all_final(ledger: Ledger, batch_id: int) -> dict[JobState, int]:
    rows = ledger.jobs(batch_id=batch_id)
    assert rows and all(row.state.is_final for row in rows), [r.state for r in rows]
    return ledger.counts(batch_id)


# --------------------------------------------------------------------------- known gaps


def test_a_ledger_error_recording_a_vanished_job_still_fails_it_and_polling_goes_on(
    sandbox: EmbeddedSandbox, make_runner: Callable[..., Runner], ledger: Ledger
) -> None:
    runner = make_runner(sandbox)
    key = backend_key(sandbox.base_url, sandbox.client_id)
    batch = ledger.create_batch("gone", "test", url_inputs(sandbox, 2), backend=key)
    dead = "elsewhere:1:dead"  # a runner that submitted a job the server no longer knows
    vanished = ledger.claim_next(dead, backend=key)
    assert vanished is not None
    ghost = Submission("no-such-job", JobStatus.IN_PROGRESS, "pending", None, None, None, 9, None)
    ledger.record_submission(vanished.id, dead, ghost)
    Faults(ledger).fail_once(sets_state(JobState.FAILED))  # the 404's write fails once

    runner.start()  # adopts the vanished job (polled first: it is the oldest), submits the other
    counts = runner.wait(batch.id, timeout=30)
    assert counts[JobState.FAILED] == 1 and counts[JobState.COMPLETED] == 1
    assert "no longer knows" in (ledger.job(vanished.id).error or "")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("case", "sandbox_config", "state"),
    [
        ("release after a rate limit", {"rate_limit": 2}, JobState.QUEUED),
        ("fail_submission of a missing file", {}, JobState.FAILED),
        ("mark_uncertain after a plain 500", {"submit_fail_rate": 1.0}, JobState.UNCERTAIN),
    ],
)
def test_a_failed_write_after_a_submission_is_retried_and_no_row_stays_submitting(
    case: str,
    sandbox_config: dict[str, Any],
    state: JobState,
    make_sandbox: Callable[..., EmbeddedSandbox],
    make_runner: Callable[..., Runner],
    ledger: Ledger,
    tmp_path: Path,
) -> None:
    sandbox = make_sandbox(**sandbox_config)
    runner = make_runner(sandbox, initial_submit_rate=100)
    inputs = url_inputs(sandbox, 3)
    if state is JobState.FAILED:
        inputs[1] = JobInput(str(tmp_path / "missing.jpg"), inputs[1].garment)
    Faults(ledger).fail_once(sets_state(state))
    runner.start()
    batch_id = runner.enqueue(inputs, name=case, source="test")[0].batch_id
    runner.wait(batch_id, timeout=30)
    counts = all_final(ledger, batch_id)
    if state is JobState.QUEUED:
        assert counts[JobState.COMPLETED] == 3
    else:
        assert counts[state] >= 1
    assert runner.ledger_problem is None  # reported while it lasted, cleared once it passed


# --------------------------------------------------------------------------- seeded failures


@pytest.mark.slow
def test_a_ledger_failing_a_seeded_share_of_writes_loses_nothing(
    make_sandbox: Callable[..., EmbeddedSandbox],
    make_runner: Callable[..., Runner],
    ledger: Ledger,
) -> None:
    sandbox = make_sandbox(read_fail_rate=0.1, job_fail_rate=0.05, seed=7)
    runner = make_runner(sandbox)
    runner.start()
    rows = runner.enqueue(url_inputs(sandbox, 30), name="flaky", source="test")
    faults = Faults(ledger, share=0.25, seed=11)
    runner.wait(rows[0].batch_id, timeout=90)
    counts = all_final(ledger, rows[0].batch_id)
    assert faults.injected > 0
    assert counts[JobState.COMPLETED] + counts[JobState.FAILED] == 30
    created = sandbox.engine.stats()["jobs_created"]
    assert created == 30  # each row submitted exactly once: none lost, none twice
    job_ids = [row.job_id for row in ledger.jobs(batch_id=rows[0].batch_id)]
    assert None not in job_ids and len(set(job_ids)) == 30


def test_opening_waits_for_a_file_another_process_holds_past_the_busy_timeout(
    tmp_path: Path,
) -> None:
    """Two processes starting at once: one creates the ledger file while the other opens it.
    A lock held past the busy timeout is waited for (bounded), not an "unexpected" exit 3."""
    import threading

    path = tmp_path / "ledger.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("CREATE TABLE unrelated (x)")  # the file is fresh and locked
    released = threading.Event()

    def release() -> None:
        opened_at.wait(30)  # once opening has begun
        threading.Event().wait(1.0)  # five busy timeouts of 0.2 s
        holder.execute("COMMIT")
        released.set()

    opened_at = threading.Event()
    threading.Thread(target=release, daemon=True).start()
    opened_at.set()
    ledger = Ledger(f"sqlite:///{path}?timeout=0.2")
    try:
        assert released.is_set()  # it could only open once the lock was gone
        assert ledger.schema_version() > 0
    finally:
        ledger.close()
        holder.close()
