"""One job per intent, owners and deleting a try-on, on a real SQLite ledger."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from mirrago.intents import delete_try_on, running_twin, start_try_on
from mirrago.ledger import SCHEMA_VERSION, JobInput, JobState, Ledger


class _Runner:
    """Only what `start_try_on` uses of a runner: enqueue into the ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    backend = "http://127.0.0.1:1#test"

    def enqueue(self, inputs, *, name, source):  # noqa: ANN001, ANN201 - the Runner's signature
        batch = self.ledger.create_batch(name, source, inputs, backend=self.backend)
        return self.ledger.jobs(batch_id=batch.id)


def _ledger(tmp_path: Path) -> Ledger:
    return Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")


def test_the_same_try_on_while_the_first_runs_points_to_it(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    pair = JobInput("p.jpg", "g.png", "white", None, owner="ana@example.com")
    first, new = start_try_on(_Runner(ledger), ledger, pair)
    again, again_new = start_try_on(_Runner(ledger), ledger, pair)
    assert new and not again_new and again is not None and first is not None
    assert again.id == first.id
    assert len(ledger.jobs()) == 1
    forced, forced_new = start_try_on(_Runner(ledger), ledger, pair, again=True)
    assert forced_new and forced is not None and forced.id != first.id
    ledger.close()


def test_another_owner_or_option_is_another_intent(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    start_try_on(_Runner(ledger), ledger, JobInput("p.jpg", "g.png", owner="ana"))
    assert running_twin(ledger, JobInput("p.jpg", "g.png", owner="bo")) is None
    assert running_twin(ledger, JobInput("p.jpg", "g.png", "white", owner="ana")) is None
    ledger.close()


def test_a_finished_try_on_can_be_generated_again(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    pair = JobInput("p.jpg", "g.png")
    first, _ = start_try_on(_Runner(ledger), ledger, pair)
    assert first is not None and ledger.cancel(first.id)
    second, new = start_try_on(_Runner(ledger), ledger, pair)
    assert new and second is not None and second.id != first.id
    ledger.close()


def test_deleting_removes_the_files_and_keeps_an_anonymised_row(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    data = tmp_path / "data"
    (data / "inputs").mkdir(parents=True)
    person, garment = data / "inputs" / "a.jpg", data / "inputs" / "b.png"
    result = data / "results" / "r.png"
    result.parent.mkdir()
    for path in (person, garment, result):
        path.write_bytes(b"x")
    kept_by_other = JobInput(str(person), "https://example.com/g.png", owner="bo")
    batch = ledger.create_batch(
        "Try-on",
        "try-on",
        [
            JobInput(str(person), str(garment), username="demo", owner="ana"),
            kept_by_other,
        ],
        backend=_Runner.backend,
    )
    mine, other = ledger.jobs(batch_id=batch.id)
    with ledger._write() as conn:  # noqa: SLF001 - a finished row without running a job
        conn.execute(
            sa.text(
                "UPDATE jobs SET state='completed', credits_before=9, result_path=:r WHERE id=:i"
            ),
            {"r": str(result), "i": mine.id},
        )
    assert delete_try_on(ledger, mine.id, data)
    assert not garment.exists() and not result.exists()
    assert person.exists()  # the other try-on still uses this photo
    row = ledger.job(mine.id)
    assert row is not None and row.deleted_at is not None
    assert (row.target, row.garment, row.username, row.owner, row.result_path) == (
        "",
        "",
        None,
        None,
        None,
    )
    assert row.state is JobState.COMPLETED and row.credits_before == 9  # usage stays right
    assert not delete_try_on(ledger, other.id, data)  # still queued: not deletable
    ledger.close()


def test_a_schema_1_ledger_gains_owner_and_deletion_columns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    ledger = Ledger(url)
    ledger.create_batch("old", "try-on", [JobInput("p.jpg", "g.png")], backend=_Runner.backend)
    with ledger._write() as conn:  # noqa: SLF001 - turn it back into a schema 1 ledger
        conn.execute(sa.text("DROP INDEX ix_jobs_backend_state"))
        conn.execute(sa.text("ALTER TABLE jobs DROP COLUMN backend"))
        conn.execute(sa.text("ALTER TABLE jobs DROP COLUMN owner"))
        conn.execute(sa.text("ALTER TABLE jobs DROP COLUMN deleted_at"))
        conn.execute(sa.text("ALTER TABLE batches DROP COLUMN paused"))  # schema 3's column
        conn.execute(sa.text("UPDATE schema_version SET version = 1"))
    ledger.close()
    upgraded = Ledger(url)
    assert upgraded.schema_version() == SCHEMA_VERSION
    (row,) = upgraded.jobs()
    assert row.owner is None and row.deleted_at is None and row.target == "p.jpg"
    upgraded.close()
