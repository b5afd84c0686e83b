"""The runner times its polls from what the server has shown: the durations its jobs took are
kept in the ledger per backend (a new runner starts with them), and the sandbox's "pending"
answers tell it how many jobs the server runs at once. Real sandbox over HTTP, real SQLite
ledger; no timing asserts (benchmarks/batch_throughput.py measures the speed)."""

from __future__ import annotations

from collections.abc import Callable

from support import url_inputs

from mirrago.ledger import JobState, Ledger
from mirrago.runner import Runner
from mirrago.sandbox.server import EmbeddedSandbox


def _run_batch(runner: Runner, sandbox: EmbeddedSandbox, rows: int) -> None:
    batch_id = runner.enqueue(url_inputs(sandbox, rows), name="timed", source="test")[0].batch_id
    counts = runner.wait(batch_id, timeout=120)
    assert counts[JobState.COMPLETED] == rows


def test_the_durations_of_finished_jobs_are_kept_for_the_backend(
    sandbox: EmbeddedSandbox, make_runner: Callable[..., Runner], ledger: Ledger
) -> None:
    runner = make_runner(sandbox)
    runner.start()
    _run_batch(runner, sandbox, 4)
    runner.stop()
    history = ledger.duration_history(runner.backend)
    assert 1 <= len(history.seconds) <= 4  # those seen closely enough to say a latency
    assert all(0 < seconds < 60 for seconds in history.seconds)


def test_a_new_runner_starts_with_its_backend_s_history(
    sandbox: EmbeddedSandbox, make_runner: Callable[..., Runner], ledger: Ledger
) -> None:
    first = make_runner(sandbox)
    first.start()
    _run_batch(first, sandbox, 3)
    first.stop()
    fastest = min(ledger.duration_history(first.backend).seconds)
    second = make_runner(sandbox)
    second.start()
    assert second._schedule.latency_low == fastest  # noqa: SLF001 - before any job of its own
    assert second._schedule.latency is not None  # noqa: SLF001 - its first looks are timed
    second.stop()


def test_another_backend_starts_with_no_history(
    make_sandbox: Callable[..., EmbeddedSandbox],
    make_runner: Callable[..., Runner],
    ledger: Ledger,
) -> None:
    one, other = make_sandbox(), make_sandbox()
    first = make_runner(one)
    first.start()
    _run_batch(first, one, 2)
    first.stop()
    fresh = make_runner(other)
    assert fresh.backend != first.backend
    fresh.start()
    assert fresh._schedule.latency_low is None  # noqa: SLF001 - as before: nothing known
    fresh.stop()
    assert ledger.duration_history(first.backend).seconds  # the first one's stays its own


def test_pending_answers_tell_the_runner_how_many_jobs_the_server_runs_at_once(
    make_sandbox: Callable[..., EmbeddedSandbox],
    make_runner: Callable[..., Runner],
    ledger: Ledger,
) -> None:
    sandbox = make_sandbox(workers=2, latency=0.4)
    runner = make_runner(sandbox)
    runner.start()
    _run_batch(runner, sandbox, 12)  # six jobs deep in the server's queue at first
    runner.stop()
    parallel = ledger.duration_history(runner.backend).parallel
    assert parallel is not None and parallel >= 2  # a bound: never fewer than the server's


def test_the_sandbox_says_when_each_job_was_created_started_and_finished(
    sandbox: EmbeddedSandbox, make_runner: Callable[..., Runner]
) -> None:
    runner = make_runner(sandbox)
    runner.start()
    _run_batch(runner, sandbox, 2)
    times = sandbox.engine.job_times()
    assert len(times) == 2
    for created, started, finished in times.values():
        assert started is not None and finished is not None
        assert created <= started <= finished
