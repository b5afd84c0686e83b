"""A ledger that goes away, end to end: `mirrago batch` processes against a real sandbox,
while their ledger is locked by another connection (SQLite) or stopped and restarted
(PostgreSQL). Each: every row final, no job created twice, no traceback, exit 0, results.csv
written, and the one-line report while the ledger was away."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from support import cli_env, eventually, postgres_schema

from mirrago.ledger import JobState, Ledger
from mirrago.samples import garments, persons
from mirrago.sandbox.server import EmbeddedSandbox

pytestmark = pytest.mark.slow

UNREACHABLE = "the job ledger is unreachable"
WAIT = 90  # seconds: a deadline for a process to get somewhere, never a speed target


class Batch:
    """A `mirrago batch` process whose stderr is collected as it comes."""

    def __init__(self, csv_path: Path, out_dir: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mirrago", "batch", str(csv_path), "--out-dir", str(out_dir)],
            cwd=out_dir.parent,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def finish(self, timeout: float = 180) -> int:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            tail = self.stderr[-3000:]
            raise AssertionError(f"still running after {timeout} s:\n{tail}") from None
        self._reader.join(10)
        return code


def write_pairs(path: Path, sandbox: EmbeddedSandbox, count: int) -> Path:
    people, clothes = persons(), garments()
    lines = ["target_image_url,garment_image_url,background,username"]
    for i in range(count):
        person = f"{sandbox.base_url}/samples/persons/{people[i % len(people)].path.name}"
        garment = f"{sandbox.base_url}/samples/garments/{clothes[i % len(clothes)].path.name}"
        lines.append(f"{person},{garment},,qa-{i}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def assert_clean_run(batch: Batch, code: int) -> None:
    assert code == 0, batch.stderr
    assert "Traceback" not in batch.stderr
    assert UNREACHABLE in batch.stderr and "retrying — Ctrl-C to stop" in batch.stderr


def assert_every_row_completed_once(
    ledger: Ledger, sandbox: EmbeddedSandbox, rows: int, out_dir: Path
) -> None:
    jobs = ledger.jobs()
    unfinished = [(job.state, job.error) for job in jobs if job.state is not JobState.COMPLETED]
    assert len(jobs) == rows and not unfinished, unfinished
    assert len({job.job_id for job in jobs}) == rows
    assert sandbox.engine.stats()["jobs_created"] == rows  # none lost, none twice
    results = (out_dir / "results.csv").read_text(encoding="utf-8").splitlines()
    assert len(results) == rows + 1 and all(",completed," in line for line in results[1:])


# --------------------------------------------------------------------------- SQLite


def test_a_batch_waits_out_a_sqlite_ledger_locked_past_its_busy_timeout(
    make_sandbox: Callable[..., EmbeddedSandbox], tmp_path: Path
) -> None:
    sandbox = make_sandbox(latency=0.4, workers=2)
    rows = 16
    source = write_pairs(tmp_path / "pairs.csv", sandbox, rows)
    path = tmp_path / "data" / "ledger.sqlite3"
    url = f"sqlite:///{path}"
    # A busy timeout far shorter than the lock below (the default is 30 s).
    batch = Batch(source, tmp_path / "out", cli_env(sandbox, tmp_path, url + "?timeout=0.3"))
    eventually(path.exists, "the ledger file is created", WAIT)
    watcher = Ledger(url)
    try:
        eventually(lambda: watcher.counts()[JobState.COMPLETED] >= 1, "a first row completes", WAIT)
        locker = sqlite3.connect(path, isolation_level=None)
        try:
            locker.execute("BEGIN EXCLUSIVE")  # a backup tool, a DB browser, a slow disk…
            eventually(lambda: UNREACHABLE in batch.stderr, "the CLI reports the lock", WAIT)
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        code = batch.finish()
        assert_clean_run(batch, code)
        assert_every_row_completed_once(watcher, sandbox, rows, tmp_path / "out")
    finally:
        watcher.close()


# --------------------------------------------------------------------------- PostgreSQL


class PostgresServer:
    """The suite's throwaway PostgreSQL server (scripts/with-postgres.sh), stopped and started
    again as its administrator would."""

    def __init__(self) -> None:
        names = ("MIRRAGO_TEST_POSTGRES_URL", "MIRRAGO_TEST_PGDATA", "MIRRAGO_TEST_PGBIN")
        missing = [name for name in names if not os.environ.get(name)]
        if missing:
            reason = f"{', '.join(missing)} not set (scripts/with-postgres.sh sets them)"
            if os.environ.get("CI"):
                pytest.fail(f"CI needs the PostgreSQL restart test: {reason}")
            pytest.skip(reason)
        self.url = os.environ["MIRRAGO_TEST_POSTGRES_URL"]
        self.data = os.environ["MIRRAGO_TEST_PGDATA"]
        self.port = os.environ["MIRRAGO_TEST_PGPORT"]
        self.pg_ctl = [str(Path(os.environ["MIRRAGO_TEST_PGBIN"]) / "pg_ctl"), "-D", self.data]
        if os.getuid() == 0:
            self.pg_ctl = ["runuser", "-u", "postgres", "--", *self.pg_ctl]

    def stop(self) -> None:
        subprocess.run(
            [*self.pg_ctl, "-m", "immediate", "-w", "stop"],
            check=True,
            timeout=60,
            capture_output=True,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"
        subprocess.run(
            [*self.pg_ctl, "-o", options, "-l", f"{self.data}/log", "-w", "start"],
            check=True,
            timeout=60,
            capture_output=True,
        )

    def running(self) -> bool:
        return subprocess.run([*self.pg_ctl, "status"], capture_output=True).returncode == 0


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    yield server
    if not server.running():  # the rest of the suite needs it
        server.start()


@pytest.fixture
def postgres_ledger_url(postgres: PostgresServer) -> Iterator[str]:
    with postgres_schema(postgres.url) as url:
        yield url


def _pid(claimed_by: str | None) -> int | None:
    return int(claimed_by.split(":")[-2]) if claimed_by else None


def test_two_batches_on_postgresql_survive_a_restart_and_share_the_rows_exactly_once(
    make_sandbox: Callable[..., EmbeddedSandbox],
    tmp_path: Path,
    postgres: PostgresServer,
    postgres_ledger_url: str,
) -> None:
    rows = 150
    sandbox = make_sandbox(latency=(0.2, 0.4), workers=8, rate_limit=20)
    source = write_pairs(tmp_path / "pairs.csv", sandbox, rows)
    env = cli_env(sandbox, tmp_path, postgres_ledger_url)
    first = Batch(source, tmp_path / "out", env)
    watcher = None
    try:
        eventually(
            lambda: _has_rows(postgres_ledger_url), "the first process records the batch", WAIT
        )
        watcher = Ledger(postgres_ledger_url)
        second = Batch(source, tmp_path / "out", env)  # resumes the same batch, beside it
        pids = {first.process.pid, second.process.pid}

        def both_submitting() -> bool:
            return pids <= {_pid(job.claimed_by) for job in watcher.jobs()}

        eventually(both_submitting, "both processes submit rows of the batch", WAIT)
        postgres.stop()
        eventually(
            lambda: UNREACHABLE in first.stderr and UNREACHABLE in second.stderr,
            "both processes report the ledger unreachable",
            WAIT,
        )
        postgres.start()
        codes = [first.finish(), second.finish()]
        assert_every_row_completed_once(watcher, sandbox, rows, tmp_path / "out")
        for batch, code in zip((first, second), codes, strict=True):
            assert_clean_run(batch, code)
        assert {_pid(job.claimed_by) for job in watcher.jobs()} == pids  # both did part
    finally:
        for batch in [first, *([second] if "second" in locals() else [])]:
            if batch.process.poll() is None:
                batch.process.kill()
        if watcher is not None:
            watcher.close()


def _has_rows(url: str) -> bool:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(sa.text("SELECT count(*) FROM jobs")).scalar())
    except sa.exc.SQLAlchemyError:
        return False
    finally:
        engine.dispose()
