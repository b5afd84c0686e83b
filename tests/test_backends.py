"""Every job belongs to one backend: the schema-1 upgrade, rows of an unknown backend waiting
until assigned, and runners of different backends sharing one ledger without ever sending a
row to the wrong server."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from support import FAST_RUNNER, url_inputs

from mirrago.backend import Backend, backend_key, describe_backend
from mirrago.cli import main
from mirrago.client import MirragoClient
from mirrago.ledger import SCHEMA_VERSION, UNKNOWN_BACKEND, JobState, Ledger
from mirrago.runner import Runner
from mirrago.sandbox.server import EmbeddedSandbox

FIXTURE = Path(__file__).parent / "fixtures" / "ledger-schema-1.sqlite3"
HERE = "http://127.0.0.1:1#here"


@pytest.fixture
def old_ledger(tmp_path: Path) -> Path:
    """A copy of a ledger written by schema-1 code (tests/fixtures/make_schema1_ledger.py)."""
    copy = tmp_path / "data" / "ledger.sqlite3"
    copy.parent.mkdir()
    shutil.copyfile(FIXTURE, copy)
    return copy


def test_a_schema_1_ledger_is_upgraded_and_keeps_its_history(old_ledger: Path) -> None:
    ledger = Ledger(f"sqlite:///{old_ledger}")
    try:
        assert ledger.schema_version() == SCHEMA_VERSION
        rows = ledger.jobs()
        assert [row.state for row in rows] == [
            JobState.COMPLETED,
            JobState.FAILED,
            JobState.SUBMITTED,
            JobState.SUBMITTING,
            JobState.UNCERTAIN,
            JobState.CANCELED,
            JobState.QUEUED,
        ]
        assert {row.backend for row in rows} == {UNKNOWN_BACKEND}
        done = rows[0]
        assert done.job_id == "job-old-0" and done.result_path == "/data/results/job-old-0.png"
        assert (done.review_verdict, done.review_note, done.review_tags) == (
            "good",
            "fits well",
            ("sleeves",),
        )
        assert rows[1].error == "garment not detected"
        assert [r.credits_before for r in ledger.credit_readings()] == [100, 99, 98]
        [note] = ledger.migration_notes
        assert "3 unfinished job(s)" in note and "assign-backend" in note
    finally:
        ledger.close()
    again = Ledger(f"sqlite:///{old_ledger}")
    assert again.migration_notes == []  # said once, when it happened
    again.close()


def test_unknown_rows_are_never_claimed_or_recovered_until_assigned(old_ledger: Path) -> None:
    ledger = Ledger(f"sqlite:///{old_ledger}")
    try:
        ledger.register_runner("me")
        assert ledger.claim_next("me", backend=HERE) is None
        assert not ledger.has_queued(backend=HERE)
        nothing = ledger.recover("me", backend=HERE)
        assert nothing.uncertain == [] and nothing.adopted == []
        assert ledger.unfinished_by_backend() == {UNKNOWN_BACKEND: 3}

        assert ledger.assign_backend(HERE) == 3
        assert ledger.unfinished_by_backend() == {HERE: 3}
        recovered = ledger.recover("me", backend=HERE)
        assert [row.job_id for row in recovered.adopted] == ["job-old-2"]
        assert len(recovered.uncertain) == 1  # the old runner's submission in flight
        claimed = ledger.claim_next("me", backend=HERE)
        assert claimed is not None and claimed.target == "/photos/person-6.jpg"
        assert ledger.events(claimed.id)[-1].kind == "assigned"
        # finished rows stay history of the unknown backend
        assert ledger.jobs()[0].backend == UNKNOWN_BACKEND
    finally:
        ledger.close()


def test_retrying_an_unknown_rows_job_gives_it_to_the_retrying_backend(old_ledger: Path) -> None:
    ledger = Ledger(f"sqlite:///{old_ledger}")
    try:
        failed = ledger.jobs(states=[JobState.FAILED])[0]
        assert ledger.retry(failed.id, backend=HERE)
        assert ledger.job(failed.id).backend == HERE  # type: ignore[union-attr]
    finally:
        ledger.close()


def test_assign_backend_command_lets_this_server_run_the_old_rows(
    old_ledger: Path, workdir: Path, sandbox: EmbeddedSandbox, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("MIRRAGO_DATA_DIR", str(old_ledger.parent))
    monkeypatch.setenv("MIRRAGO_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("MIRRAGO_CLIENT_ID", sandbox.client_id)
    monkeypatch.setenv("MIRRAGO_CLIENT_SECRET", sandbox.client_secret)
    assert main(["usage"]) == 0
    captured = capsys.readouterr()
    assert "3 unfinished job(s) for an unknown server" in captured.out
    assert "upgraded" in captured.err
    assert main(["assign-backend"]) == 0
    assert "3 unfinished job(s) now wait for 127.0.0.1:" in capsys.readouterr().out
    ledger = Ledger(f"sqlite:///{old_ledger}")
    try:
        key = backend_key(sandbox.base_url, sandbox.client_id)
        assert ledger.unfinished_by_backend() == {key: 3}
    finally:
        ledger.close()


def test_backend_keys_name_the_server_and_client_but_never_the_secret() -> None:
    live = Backend("https://API.example.com/", "acme", "s3cret")
    assert live.key == "https://api.example.com#acme"
    assert "s3cret" not in live.key
    assert describe_backend(live.key) == "api.example.com (client acme)"
    sandbox = Backend("http://127.0.0.1:5555", "demo", "x", is_sandbox=True)
    assert sandbox.key == Backend("http://127.0.0.1:6666", "demo", "y", is_sandbox=True).key
    assert describe_backend(sandbox.key) == "the local sandbox"
    assert "unknown" in describe_backend(UNKNOWN_BACKEND)


def test_two_runners_on_one_ledger_each_send_only_their_own_rows(
    make_sandbox: Callable[..., EmbeddedSandbox], tmp_path: Path
) -> None:
    first, second = make_sandbox(), make_sandbox()
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    clients = [MirragoClient.from_backend(s, max_retries=0) for s in (first, second)]
    runners = [Runner(ledger, client, tmp_path / "data", **FAST_RUNNER) for client in clients]
    try:
        # Both batches are queued before either runner starts: each could grab the other's.
        batches = {
            server.base_url: ledger.create_batch(
                "mine", "test", url_inputs(server, count), backend=runner.backend
            ).id
            for server, runner, count in ((first, runners[0], 5), (second, runners[1], 3))
        }
        for runner in runners:
            runner.start()
        for runner, server in zip(runners, (first, second), strict=True):
            counts = runner.wait(batches[server.base_url], timeout=60)
            assert counts[JobState.COMPLETED] == sum(counts.values())
        assert first.engine.stats()["jobs_created"] == 5
        assert second.engine.stats()["jobs_created"] == 3
        assert first.engine.stats()["generate_requests"] == 5
        assert second.engine.stats()["generate_requests"] == 3
    finally:
        for runner in runners:
            runner.stop(timeout=5)
        for client in clients:
            client.close()
        ledger.close()
