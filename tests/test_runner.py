"""The runner against a real sandbox on loopback and a real SQLite ledger: every row ends in a
final state, nothing is submitted twice, and what happened is in the ledger."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from PIL import Image
from support import FAST_RUNNER, eventually, postgres_server_url, url_inputs

from mirrago.backend import backend_key
from mirrago.client import MirragoClient
from mirrago.errors import AuthenticationError, InsufficientCreditsError, ServiceConnectionError
from mirrago.ledger import JobInput, JobState, Ledger
from mirrago.runner import Runner
from mirrago.samples import garments, persons
from mirrago.sandbox.server import EmbeddedSandbox

WAIT = 20.0  # seconds: a deadline for a row to reach a state, not a speed target


def small_inputs(folder: Path, count: int) -> list[JobInput]:
    """Small drawn images as local files: cheap for the sandbox to check and render, so a
    200-row batch stays fast."""
    person, garment = folder / "person.jpg", folder / "garment.png"
    if not person.exists():
        image = Image.new("RGB", (150, 200), (70, 110, 160))
        image.paste((224, 182, 150), (55, 15, 95, 60))
        image.paste((60, 60, 66), (35, 65, 115, 200))
        image.save(person, quality=90)
        shirt = Image.new("RGB", (120, 132), (250, 250, 250))
        shirt.paste((200, 30, 30), (25, 10, 95, 125))
        shirt.save(garment)
    return [JobInput(str(person), str(garment)) for _ in range(count)]


def file_inputs(count: int) -> list[JobInput]:
    people, clothes = persons(), garments()
    return [
        JobInput(str(people[i % len(people)].path), str(clothes[i % len(clothes)].path))
        for i in range(count)
    ]


def key_of(sandbox: EmbeddedSandbox) -> str:
    """The backend key a runner with a client for this sandbox works for."""
    return backend_key(sandbox.base_url, sandbox.client_id)


def assert_at_most_one_job_per_row(sandbox: EmbeddedSandbox, rows: int) -> None:
    assert sandbox.engine.stats()["jobs_created"] <= rows


# --------------------------------------------------------------------------- the happy path


def test_a_batch_completes_with_results_and_thumbnails_on_disk(
    sandbox: EmbeddedSandbox, make_runner: Callable[..., Runner], ledger: Ledger, tmp_path: Path
) -> None:
    runner = make_runner(sandbox)
    runner.start()
    inputs = url_inputs(sandbox, 3) + file_inputs(3)
    batch_id = runner.enqueue(inputs, name="happy", source="test")[0].batch_id
    counts = runner.wait(batch_id, timeout=60)

    assert counts[JobState.COMPLETED] == 6
    rows = ledger.jobs(batch_id=batch_id)
    assert [row.input for row in rows] == inputs
    for row in rows:
        assert row.job_id and row.submitted_at and row.finished_at and row.error is None
        assert row.result_path and Path(row.result_path).is_file()
        assert Path(row.result_path).parent == tmp_path / "data" / "results"
        assert Path(row.result_path).stem == row.job_id
        assert (
            row.thumbnail_path and Path(row.thumbnail_path).parent == tmp_path / "data" / "thumbs"
        )
        with Image.open(row.thumbnail_path) as thumb:
            assert max(thumb.size) <= 320
        assert row.credits_before is not None and row.server_status
    readings = ledger.credit_readings()
    assert sorted(r.job_id for r in readings) == sorted(row.job_id for row in rows)
    assert_at_most_one_job_per_row(sandbox, 6)


def test_start_is_idempotent_and_one_worker_thread_runs(
    sandbox: EmbeddedSandbox, make_runner: Callable[..., Runner]
) -> None:
    import threading

    runner = make_runner(sandbox)
    for _ in range(3):
        runner.start()
    drivers = [t for t in threading.enumerate() if t.name == "mirrago-runner" and t.is_alive()]
    assert len(drivers) == 1 and runner.running


def test_unknown_tuning_is_refused(ledger: Ledger, sandbox: EmbeddedSandbox) -> None:
    with pytest.raises(TypeError, match="submit_wrokers"):
        Runner(ledger, MirragoClient.from_backend(sandbox), Path("."), submit_wrokers=3)


def test_the_row_is_committed_as_submitting_before_the_post(
    sandbox: EmbeddedSandbox, make_runner: Callable[..., Runner], ledger: Ledger
) -> None:
    seen: list[list[JobState]] = []
    observer = Ledger(ledger.display_url)  # another connection: sees only committed rows

    class Observing(MirragoClient):
        def generate(self, *args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
            seen.append([row.state for row in observer.jobs()])
            return super().generate(*args, **kwargs)

    client = Observing(sandbox.base_url, sandbox.client_id, sandbox.client_secret, max_retries=0)
    runner = make_runner(sandbox, client, submit_workers=1)
    runner.start()
    batch_id = runner.enqueue(url_inputs(sandbox, 3), name="order", source="test")[0].batch_id
    runner.wait(batch_id, timeout=30)
    observer.close()
    assert len(seen) == 3
    for states in seen:
        assert states.count(JobState.SUBMITTING) == 1  # exactly the row being posted


def test_a_job_in_progress_is_recorded_with_its_job_id_before_it_finishes(
    make_sandbox: Callable[..., EmbeddedSandbox],
    make_runner: Callable[..., Runner],
    ledger: Ledger,
) -> None:
    sandbox = make_sandbox(latency=1.0)
    runner = make_runner(sandbox)
    runner.start()
    batch_id = runner.enqueue(url_inputs(sandbox, 1), name="slow", source="test")[0].batch_id
    eventually(
        lambda: ledger.jobs(batch_id=batch_id)[0].state is JobState.SUBMITTED,
        "the row is submitted",
        WAIT,
    )
    row = ledger.jobs(batch_id=batch_id)[0]
    assert row.job_id is not None and row.finished_at is None
    runner.wait(batch_id, timeout=30)
    finished = ledger.job(row.id)
    assert finished is not None and finished.state is JobState.COMPLETED
    assert finished.job_id == row.job_id


# --------------------------------------------------------------------------- faults


@pytest.mark.slow
def test_a_200_row_batch_under_faults_ends_with_every_row_final_and_no_job_twice(
    make_sandbox: Callable[..., EmbeddedSandbox],
    make_runner: Callable[..., Runner],
    ledger: Ledger,
    tmp_path: Path,
) -> None:
    sandbox = make_sandbox(
        submit_fail_rate=0.10,
        read_fail_rate=0.10,
        job_fail_rate=0.05,
        rate_limit=25,
        rate_burst=2,  # the runner's opening burst of 8 is refused in part, on any machine
        token_ttl=3,
        workers=8,
        latency=(0.05, 0.15),
        seed=3,
    )
    runner = make_runner(sandbox, initial_submit_rate=200)  # well over the limit at first
    runner.start()
    batch_id = runner.enqueue(small_inputs(tmp_path, 200), name="faults", source="test")[0].batch_id
    counts = runner.wait(batch_id, timeout=120)

    rows = ledger.jobs(batch_id=batch_id)
    assert len(rows) == 200 and all(row.state.is_final for row in rows)
    stats = sandbox.engine.stats()
    assert counts[JobState.COMPLETED] == 200 - stats["submit_faults"] - stats["jobs_failed"]
    assert stats["jobs_created"] <= 200
    assert stats["rate_limited"] > 0 and stats["read_faults"] > 0 and stats["submit_faults"] > 0
    assert stats["token_requests"] > 1  # tokens expired during the batch and were renewed
    assert runner.stats.rate_limited == stats["rate_limited"]

    # rows caught by a plain 500 on submit are uncertain: never resubmitted by the runner
    uncertain = [row for row in rows if row.state is JobState.UNCERTAIN]
    assert len(uncertain) == stats["submit_faults"]
    assert all("may or may not" in (row.error or "") for row in uncertain)

    # every failed row carries the server's own message for its job
    failed = [row for row in rows if row.state is JobState.FAILED]
    assert len(failed) == stats["jobs_failed"] > 0
    with MirragoClient.from_backend(sandbox) as client:
        for row in failed:
            assert row.job_id is not None
            assert row.error == client.job(row.job_id).error_message
    assert all(
        Path(row.result_path or "").is_file() for row in rows if row.state.value == "completed"
    )


def test_an_uncertain_submission_is_never_resubmitted(
    make_sandbox: Callable[..., EmbeddedSandbox],
    make_runner: Callable[..., Runner],
    ledger: Ledger,
) -> None:
    sandbox = make_sandbox(submit_fail_rate=1.0)
    runner = make_runner(sandbox, recovery_interval=0.05, rescan_interval=0.05)
    runner.start()
    batch_id = runner.enqueue(url_inputs(sandbox, 4), name="5xx", source="test")[0].batch_id
    counts = runner.wait(batch_id, timeout=30)
    assert counts[JobState.UNCERTAIN] == 4
    time.sleep(0.5)  # several recovery and rescan rounds: none may resubmit
    stats = sandbox.engine.stats()
    assert stats["generate_requests"] == 4 and stats["jobs_created"] == 0
    row = ledger.jobs(batch_id=batch_id)[0]
    assert row.error is not None and "500" in row.error and row.job_id is None


@pytest.mark.slow
def test_rate_limits_slow_submitting_down_without_losing_a_row(
    make_sandbox: Callable[..., EmbeddedSandbox],
    make_runner: Callable[..., Runner],
    tmp_path: Path,
) -> None:
    # A bucket of 4 submits refilled at 4/s, and a runner that starts at 80/s with 8 workers: its
    # opening burst is refused in part whatever the machine's speed. How FEW answers are refused
    # is a performance figure, measured on a simulated clock (test_runner_schedule.py) and by
    # benchmarks/batch_throughput.py; here only what must hold exactly.
    sandbox = make_sandbox(rate_limit=4, workers=8, latency=0.05)
    runner = make_runner(sandbox, initial_submit_rate=80)
    runner.start()
    rows = runner.enqueue(small_inputs(tmp_path, 24), name="limited", source="test")
    counts = runner.wait(rows[0].batch_id, timeout=60)
    assert counts[JobState.COMPLETED] == 24  # no row lost
    stats = sandbox.engine.stats()
    assert stats["rate_limited"] > 0
    assert runner.stats.rate_limited == stats["rate_limited"]  # every refusal was seen
    assert stats["generate_requests"] == 24 + stats["rate_limited"]  # each retried once admitted
    assert stats["jobs_created"] == 24  # no job twice
    assert runner.submit_rate is not None and runner.submit_rate < 80  # the rate came down


def test_a_wrong_secret_pauses_submitting_and_keeps_the_rest_queued(
    sandbox: EmbeddedSandbox, make_runner: Callable[..., Runner], ledger: Ledger
) -> None:
    client = MirragoClient(sandbox.base_url, sandbox.client_id, "not-the-secret", max_retries=0)
    runner = make_runner(sandbox, client)
    runner.start()
    batch_id = runner.enqueue(url_inputs(sandbox, 10), name="auth", source="test")[0].batch_id
    counts = runner.wait(batch_id, timeout=30)
    assert runner.paused and isinstance(runner.last_error, AuthenticationError)
    # Each submission in flight when the first refusal came back fails too; none starts after.
    in_flight = runner.tuning.submit_workers
    assert counts[JobState.FAILED] >= 1 and counts[JobState.QUEUED] >= 10 - in_flight
    assert counts[JobState.FAILED] + counts[JobState.QUEUED] == 10
    for row in ledger.jobs(batch_id=batch_id, states=[JobState.FAILED]):
        assert row.error == runner.last_error.message
        assert "not-the-secret" not in row.error
    assert sandbox.engine.stats()["jobs_created"] == 0


def test_running_out_of_credits_pauses_and_resumes_after_a_top_up(
    make_sandbox: Callable[..., EmbeddedSandbox],
    make_runner: Callable[..., Runner],
    ledger: Ledger,
) -> None:
    sandbox = make_sandbox(starting_credits=3)
    runner = make_runner(sandbox, submit_workers=1)
    runner.start()
    batch_id = runner.enqueue(url_inputs(sandbox, 6), name="credits", source="test")[0].batch_id
    counts = runner.wait(batch_id, timeout=30)
    assert isinstance(runner.last_error, InsufficientCreditsError) and runner.paused
    assert counts[JobState.COMPLETED] == 3 and counts[JobState.FAILED] == 1
    assert counts[JobState.QUEUED] == 2
    [refused] = ledger.jobs(batch_id=batch_id, states=[JobState.FAILED])
    assert refused.job_id is None and "credits" in (refused.error or "")

    sandbox.engine.set_credits(sandbox.client_id, 10)
    runner.resume()
    assert runner.retry(refused.id)
    counts = runner.wait(batch_id, timeout=30)
    assert counts[JobState.COMPLETED] == 6
    assert ledger.job(refused.id).attempts == 2  # type: ignore[union-attr]
    assert_at_most_one_job_per_row(sandbox, 6)


def test_an_unreachable_server_requeues_the_row_and_pauses_after_a_few_tries(
    ledger: Ledger, make_runner: Callable[..., Runner], sandbox: EmbeddedSandbox
) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = MirragoClient(f"http://127.0.0.1:{port}", "id", "secret", max_retries=0)
    runner = make_runner(sandbox, client, max_transient_failures=2)
    runner.start()
    batch_id = runner.enqueue(url_inputs(sandbox, 2), name="down", source="test")[0].batch_id
    counts = runner.wait(batch_id, timeout=30)
    assert runner.paused and isinstance(runner.last_error, ServiceConnectionError)
    assert counts[JobState.QUEUED] == 2  # nothing was sent: nothing is lost or uncertain


def test_a_result_that_cannot_be_downloaded_still_completes_the_row_with_a_note(
    sandbox: EmbeddedSandbox, make_runner: Callable[..., Runner], ledger: Ledger
) -> None:
    class BrokenDownloads(MirragoClient):
        def download(self, url: str, **kwargs: Any) -> bytes:
            raise ServiceConnectionError(
                "Could not reach the result host: the connection was reset."
            )

    client = BrokenDownloads(
        sandbox.base_url, sandbox.client_id, sandbox.client_secret, max_retries=0
    )
    runner = make_runner(sandbox, client, download_attempts=2)
    runner.start()
    batch_id = runner.enqueue(url_inputs(sandbox, 1), name="cdn", source="test")[0].batch_id
    assert runner.wait(batch_id, timeout=30)[JobState.COMPLETED] == 1
    row = ledger.jobs(batch_id=batch_id)[0]
    assert row.result_url and row.result_path is None
    assert row.error is not None and "could not be downloaded" in row.error


def test_a_bad_image_fails_its_row_with_the_reason_and_the_rest_go_on(
    sandbox: EmbeddedSandbox, make_runner: Callable[..., Runner], ledger: Ledger, tmp_path: Path
) -> None:
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("this is not a photo")
    good = file_inputs(1)[0]
    inputs = [
        good,
        JobInput(str(not_an_image), good.garment),
        JobInput(f"{sandbox.base_url}/samples/persons/missing.jpg", good.garment),
    ]
    runner = make_runner(sandbox)
    runner.start()
    batch_id = runner.enqueue(inputs, name="bad", source="test")[0].batch_id
    counts = runner.wait(batch_id, timeout=30)
    assert counts[JobState.COMPLETED] == 1 and counts[JobState.FAILED] == 2
    rows = ledger.jobs(batch_id=batch_id)
    assert rows[1].error and rows[1].job_id is None
    assert rows[2].error and "400" in rows[2].error
    assert not runner.paused
    assert_at_most_one_job_per_row(sandbox, 3)


# --------------------------------------------------------------------------- user actions


def test_a_canceled_row_is_never_submitted(
    sandbox: EmbeddedSandbox, make_runner: Callable[..., Runner], ledger: Ledger
) -> None:
    runner = make_runner(sandbox)
    batch_id = runner.enqueue(url_inputs(sandbox, 3), name="cancel", source="test")[0].batch_id
    middle = ledger.jobs(batch_id=batch_id)[1]
    assert runner.cancel(middle.id)
    runner.start()
    counts = runner.wait(batch_id, timeout=30)
    assert counts[JobState.COMPLETED] == 2 and counts[JobState.CANCELED] == 1
    assert sandbox.engine.stats()["jobs_created"] == 2
    assert not runner.cancel(middle.id)


def test_retrying_an_uncertain_row_submits_it_once_more_as_a_new_attempt(
    make_sandbox: Callable[..., EmbeddedSandbox],
    make_runner: Callable[..., Runner],
    ledger: Ledger,
) -> None:
    sandbox = make_sandbox(submit_fail_rate=1.0)
    runner = make_runner(sandbox)
    runner.start()
    batch_id = runner.enqueue(url_inputs(sandbox, 1), name="retry", source="test")[0].batch_id
    assert runner.wait(batch_id, timeout=30)[JobState.UNCERTAIN] == 1
    row = ledger.jobs(batch_id=batch_id)[0]

    sandbox.engine.config.submit_fail_rate = 0.0
    assert runner.retry(row.id)
    assert runner.wait(batch_id, timeout=30)[JobState.COMPLETED] == 1
    again = ledger.job(row.id)
    assert again is not None and again.attempts == 2 and again.error is None
    assert [event.kind for event in ledger.events(row.id)] == ["retried"]
    assert ledger.events(row.id)[0].detail["state"] == "uncertain"
    assert not runner.retry(row.id)  # completed rows are not retried
    assert_at_most_one_job_per_row(sandbox, 1)


# --------------------------------------------------------------------------- restarts and sharing


def test_a_new_runner_marks_a_dead_runners_submitting_rows_uncertain_and_polls_the_rest(
    sandbox: EmbeddedSandbox, make_runner: Callable[..., Runner], ledger: Ledger
) -> None:
    inputs = url_inputs(sandbox, 4)
    batch_id = ledger.create_batch("crashed", "test", inputs, backend=key_of(sandbox)).id
    dead = "other-host:1:dead"  # registered once, then silent for good
    ledger.register_runner(dead)
    ledger.unregister_runner(dead)
    caught = ledger.claim_next(dead, backend=key_of(sandbox))
    posted = ledger.claim_next(dead, backend=key_of(sandbox))
    assert caught is not None and posted is not None
    with MirragoClient.from_backend(sandbox) as client:
        submission = client.generate(posted.target, posted.garment)
    ledger.record_submission(posted.id, dead, submission)

    runner = make_runner(sandbox)
    runner.start()
    counts = runner.wait(batch_id, timeout=30)
    assert counts[JobState.UNCERTAIN] == 1 and counts[JobState.COMPLETED] == 3
    assert ledger.job(caught.id).state is JobState.UNCERTAIN  # type: ignore[union-attr]
    finished = ledger.job(posted.id)
    assert finished is not None and finished.job_id == submission.job_id
    assert finished.result_path and Path(finished.result_path).is_file()
    assert sandbox.engine.stats()["jobs_created"] == 3  # the uncertain row was not resubmitted


def test_a_stopped_runner_leaves_jobs_in_progress_for_the_next_one(
    make_sandbox: Callable[..., EmbeddedSandbox],
    make_runner: Callable[..., Runner],
    ledger: Ledger,
) -> None:
    sandbox = make_sandbox(latency=0.6, workers=4)
    first = make_runner(sandbox)
    first.start()
    batch_id = first.enqueue(url_inputs(sandbox, 4), name="handover", source="test")[0].batch_id
    eventually(lambda: ledger.counts(batch_id)[JobState.SUBMITTED] == 4, "4 rows submitted", WAIT)
    first.stop()
    assert ledger.counts(batch_id)[JobState.SUBMITTED] == 4

    second = make_runner(sandbox)
    second.start()
    assert second.wait(batch_id, timeout=30)[JobState.COMPLETED] == 4
    assert sandbox.engine.stats()["jobs_created"] == 4


def test_two_runners_sharing_a_ledger_never_submit_a_row_twice(
    make_sandbox: Callable[..., EmbeddedSandbox],
    make_runner: Callable[..., Runner],
    ledger: Ledger,
    tmp_path: Path,
) -> None:
    sandbox = make_sandbox(workers=8)
    other_ledger = Ledger(ledger.display_url)
    try:
        first = make_runner(sandbox)
        # The runner that starts first is capped at 2 submits/s, so the other one, started
        # right after it, is sure to take part of the 40 rows however busy the machine is.
        second = Runner(
            other_ledger,
            MirragoClient.from_backend(sandbox, max_retries=0),
            tmp_path / "data",
            **{**FAST_RUNNER, "initial_submit_rate": 2.0, "max_submit_rate": 2.0},
        )
        rows = first.enqueue(small_inputs(tmp_path, 40), name="shared", source="test")
        batch_id = rows[0].batch_id
        second.start()
        first.start()
        counts = first.wait(batch_id, timeout=60)
        second.stop()
    finally:
        other_ledger.close()
    assert counts[JobState.COMPLETED] == 40
    rows = ledger.jobs(batch_id=batch_id)
    assert len({row.job_id for row in rows}) == 40
    stats = sandbox.engine.stats()
    assert stats["generate_requests"] == stats["jobs_created"] == 40
    assert second.stats.submissions > 0 and first.stats.submissions > 0


def test_a_runner_limited_to_its_batches_leaves_other_rows_alone(
    sandbox: EmbeddedSandbox, make_runner: Callable[..., Runner], ledger: Ledger
) -> None:
    inputs = url_inputs(sandbox, 2)
    others = ledger.create_batch("the app's", "app", inputs, backend=key_of(sandbox))
    runner = make_runner(sandbox, batch_ids=())
    runner.start()
    mine_id = runner.enqueue(url_inputs(sandbox, 2), name="mine", source="cli")[0].batch_id
    assert runner.wait(mine_id, timeout=30)[JobState.COMPLETED] == 2
    assert ledger.counts(others.id)[JobState.QUEUED] == 2


def test_a_runner_for_every_batch_leaves_a_private_batch_alone(
    sandbox: EmbeddedSandbox, make_runner: Callable[..., Runner], ledger: Ledger
) -> None:
    cli = make_runner(sandbox, batch_ids=())
    # not started
    private_id = cli.enqueue(url_inputs(sandbox, 1), name="cli", source="/out")[0].batch_id
    app = make_runner(sandbox)
    app.start()
    public_id = app.enqueue(url_inputs(sandbox, 1), name="app", source="try-on")[0].batch_id
    assert app.wait(public_id, timeout=30)[JobState.COMPLETED] == 1
    assert ledger.counts(private_id)[JobState.QUEUED] == 1


def test_a_runner_leaves_a_live_runners_jobs_in_progress_alone(
    make_sandbox: Callable[..., EmbeddedSandbox],
    make_runner: Callable[..., Runner],
    ledger: Ledger,
) -> None:
    sandbox = make_sandbox(latency=0.8)
    owner = make_runner(sandbox)
    owner.start()
    batch_id = owner.enqueue(url_inputs(sandbox, 2), name="owned", source="app")[0].batch_id
    eventually(lambda: ledger.counts(batch_id)[JobState.SUBMITTED] == 2, "2 rows submitted", WAIT)
    bystander = make_runner(sandbox, recovery_interval=0.05)
    bystander.start()
    time.sleep(0.3)  # several recovery rounds of the bystander
    assert (
        len(ledger.owned(owner.runner_id, JobState.SUBMITTED))
        + ledger.counts(batch_id)[JobState.COMPLETED]
        == 2
    )
    assert bystander.stats.polls == 0
    assert owner.wait(batch_id, timeout=30)[JobState.COMPLETED] == 2


def test_the_ledger_file_never_holds_the_client_secret(
    make_sandbox: Callable[..., EmbeddedSandbox],
    make_runner: Callable[..., Runner],
    ledger: Ledger,
    tmp_path: Path,
) -> None:
    secret = "s3cret-7f1e9a2b-do-not-store"
    sandbox = make_sandbox(client_secret=secret)
    runner = make_runner(sandbox)
    runner.start()
    batch_id = runner.enqueue(url_inputs(sandbox, 2), name="secret", source="test")[0].batch_id
    runner.wait(batch_id, timeout=30)
    runner.stop()
    ledger.close()
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as conn:
        conn.execute("PRAGMA wal_checkpoint(FULL)")
    for path in tmp_path.glob("ledger.sqlite3*"):
        assert secret.encode() not in path.read_bytes()
    assert secret not in repr(runner) and secret not in repr(ledger)


def test_two_runners_share_a_postgresql_ledger(
    make_sandbox: Callable[..., EmbeddedSandbox], tmp_path: Path
) -> None:
    base = sa.engine.make_url(postgres_server_url())
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )
    sandbox = make_sandbox(workers=8)
    ledgers = [Ledger(url), Ledger(url)]
    runners = [
        Runner(ledger, MirragoClient.from_backend(sandbox, max_retries=0), tmp_path, **FAST_RUNNER)
        for ledger in ledgers
    ]
    try:
        rows = runners[0].enqueue(small_inputs(tmp_path, 30), name="pg", source="test")
        batch_id = rows[0].batch_id
        for runner in runners:
            runner.start()
        counts = runners[0].wait(batch_id, timeout=60)
        assert counts[JobState.COMPLETED] == 30
        assert len({row.job_id for row in ledgers[0].jobs(batch_id=batch_id)}) == 30
        assert sandbox.engine.stats()["generate_requests"] == 30
        assert sandbox.engine.stats()["jobs_created"] == 30
        assert len(ledgers[0].credit_readings()) == 30
    finally:
        for runner in runners:
            runner.stop()
            runner.client.close()
        for ledger in ledgers:
            ledger.close()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
