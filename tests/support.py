"""Plain helpers shared by test modules (import them from here: `conftest` is not a unique
module name, tests/browser has its own; no test module imports another): waiting for a
condition, the environment of a `mirrago` process, PostgreSQL for tests, runner inputs, a TCP
listener that records who connects, seeded usage, and driving the app through AppTest."""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from mirrago.ledger import JobInput, JobRecord, Ledger, batches, credit_readings, jobs
from mirrago.samples import garments, persons

if TYPE_CHECKING:
    from streamlit.testing.v1 import AppTest

    from mirrago.sandbox.server import EmbeddedSandbox
    from mirrago.services import Services

SECRET_ENV = ("MIRRAGO_BASE_URL", "MIRRAGO_CLIENT_ID", "MIRRAGO_CLIENT_SECRET")


def version_before(migration: str) -> int:
    """The schema version a ledger had before the migration of this name (the function in
    `mirrago.ledger.MIGRATIONS`): a test turns a ledger back into it to test the upgrade."""
    from mirrago.ledger import MIGRATIONS

    (version,) = [v for v, step in MIGRATIONS.items() if step.__name__ == migration]
    return version


def eventually(condition: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    """Wait until `condition()` is true, checking every 50 ms; fail naming `what` after
    `timeout` seconds. The timeout is a deadline on a busy machine, never a speed target."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never happened within {timeout:g} s: {what}"
        time.sleep(0.05)


def postgres_server_url() -> str:
    """The test PostgreSQL server (scripts/with-postgres.sh starts one and sets
    MIRRAGO_TEST_POSTGRES_URL). Without it a test is skipped here, and fails in CI."""
    url = os.environ.get("MIRRAGO_TEST_POSTGRES_URL")
    if url:
        return url
    reason = "MIRRAGO_TEST_POSTGRES_URL is not set (scripts/with-postgres.sh sets it)"
    if os.environ.get("CI"):
        pytest.fail(f"CI needs the PostgreSQL tests: {reason}")
    pytest.skip(reason)


def cli_env(
    sandbox: EmbeddedSandbox | None, workdir: Path, database_url: str | None = None
) -> dict[str, str]:
    """The environment of a `mirrago` process: this one's, without the developer's Mirrago
    configuration, with its data in `workdir/data`, on `sandbox` (None: the embedded one)
    and on `database_url` if given."""
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
    env["MIRRAGO_DATA_DIR"] = str(workdir / "data")
    if sandbox is not None:
        env.update(
            MIRRAGO_BASE_URL=sandbox.base_url,
            MIRRAGO_CLIENT_ID=sandbox.client_id,
            MIRRAGO_CLIENT_SECRET=sandbox.client_secret,
        )
    if database_url is not None:
        env["MIRRAGO_DATABASE_URL"] = database_url
    return env


@contextmanager
def postgres_schema(server_url: str) -> Iterator[str]:
    """A URL to a fresh, empty schema of its own on the PostgreSQL server at `server_url`,
    dropped afterwards (even if the server was restarted in between)."""
    base = sa.engine.make_url(server_url)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, pool_pre_ping=True)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# --------------------------------------------------------------------------- the runner

# A runner's tuning for tests: quick first poll, recovery and heartbeat.
FAST_RUNNER = {"first_poll_delay": 0.05, "recovery_interval": 0.2, "heartbeat_interval": 0.5}


def url_inputs(sandbox: EmbeddedSandbox, count: int) -> list[JobInput]:
    """Pairs of the shipped samples, as the sandbox's own URLs (as in a reviewer's CSV)."""
    people, clothes = persons(), garments()
    return [
        JobInput(
            f"{sandbox.base_url}/samples/persons/{people[i % len(people)].path.name}",
            f"{sandbox.base_url}/samples/garments/{clothes[i % len(clothes)].path.name}",
        )
        for i in range(count)
    ]


# --------------------------------------------------------------------------- outbound fetches

PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000105a3a1d2b40000000049454e44ae426082"
)


class Listener:
    """A TCP listener that records the peer of every connection it accepts, and answers each
    with a small PNG over HTTP (what an unguarded fetch would be glad to get)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.connections: list[str] = []
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, peer = self._sock.accept()
            except OSError:  # closed: the test is over
                return
            self.connections.append(str(peer[0]))
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: "
                        + str(len(PNG_1X1)).encode()
                        + b"\r\nConnection: close\r\n\r\n"
                        + PNG_1X1
                    )
                except OSError:
                    pass

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()


# --------------------------------------------------------------------------- usage

_seeded_job_ids = itertools.count(1)


def seed(
    ledger: Ledger,
    readings: Sequence[tuple[datetime, int, str]],
    *,
    source: str = "try-on",
    username: str | None = None,
    batch_name: str = "Try-on",
) -> int:
    """One batch with one job per reading: (time of the reading, credits_before, final state).
    Each job was submitted at the reading and finished 10 s later."""
    with ledger._write() as conn:  # seeding the tables directly, as the server would leave them
        batch_id = conn.execute(
            batches.insert().values(name=batch_name, source=source, created_at=readings[0][0])
        ).inserted_primary_key[0]
        for index, (at, credits, state) in enumerate(readings):
            job_id = f"job-{next(_seeded_job_ids)}"
            conn.execute(
                jobs.insert().values(
                    batch_id=batch_id,
                    row_index=index,
                    target="p.jpg",
                    garment="g.png",
                    username=username,
                    state=state,
                    job_id=job_id,
                    credits_before=credits,
                    created_at=at - timedelta(seconds=1),
                    submitted_at=at,
                    finished_at=at + timedelta(seconds=10),
                    attempts=1,
                    review_tags="[]",
                    updated_at=at,
                )
            )
            conn.execute(
                credit_readings.insert().values(at=at, credits_before=credits, job_id=job_id)
            )
    return int(batch_id)


# --------------------------------------------------------------------------- the app (AppTest)

APP = "../app.py"  # AppTest resolves it against the calling file, which is in tests/
RUN_TIMEOUT = 90  # a deadline for one script run on a busy machine, not a speed target


def default_services() -> Services:
    """The services the app opened (the same cached instance: same settings key)."""
    from mirrago.config import load_settings
    from mirrago.ui import session  # here: most tests never load Streamlit

    return session.services_for(load_settings())


def try_on_rows(services: Services) -> list[JobRecord]:
    return [
        job
        for batch in services.ledger.batches()
        if batch.source == "try-on"
        for job in services.ledger.jobs(batch_id=batch.id)
    ]


def texts(at: AppTest) -> str:
    """Every text the page shows (markdown, captions, alerts, badges), joined."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for e in at.error] + [w.value for w in at.warning]
    parts += [s.value for s in at.success] + [i.value for i in at.info]
    return "\n".join(str(part) for part in parts)


def run_until(at: AppTest, done: Callable[[AppTest], bool], timeout: float = 90.0) -> AppTest:
    """Rerun the app (as the page's timer would) until `done(at)` or the deadline."""
    deadline = time.monotonic() + timeout
    while not done(at):
        assert time.monotonic() < deadline, f"gave up waiting; the page shows:\n{texts(at)}"
        time.sleep(0.3)
        at.run()
        assert not at.exception, at.exception
    return at


def connect(at: AppTest, base_url: str, client_id: str, secret: str) -> AppTest:
    """Connect the sidebar to a backend, as a person types it in."""
    at.sidebar.text_input(key="connect-base-url").set_value(base_url)
    at.sidebar.text_input(key="connect-client-id").set_value(client_id)
    at.sidebar.text_input(key="connect-secret").set_value(secret)
    at.sidebar.button[0].click().run()
    assert not at.exception, at.exception
    return at


# --------------------------------------------------------------------------- Stage's decks


def stored_try_on(
    ledger: Ledger,
    data_dir: Path,
    tag: str,
    *,
    source: str = "try-on",
    colour: tuple[int, int, int] = (90, 60, 200),
) -> JobRecord:
    """A completed try-on as the runner leaves it: its person and garment photos in
    `data_dir/inputs`, its result and thumbnail in `results/` and `thumbs/` (real images,
    named after `tag`), in a batch of its own with that `source`."""
    from PIL import Image

    paths = {
        "person": data_dir / "inputs" / f"{tag}-person.jpg",
        "garment": data_dir / "inputs" / f"{tag}-garment.jpg",
        "result": data_dir / "results" / f"{tag}.jpg",
        "thumb": data_dir / "thumbs" / f"{tag}.jpg",
    }
    shades = {"person": (200, 170, 150), "garment": (40, 120, 60), "result": colour}
    for kind, path in paths.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        size = (240, 320) if kind == "thumb" else (600, 800)
        Image.new("RGB", size, shades.get(kind, colour)).save(path, "JPEG")
    batch = ledger.create_batch(
        "Try-on",
        source,
        [JobInput(str(paths["person"]), str(paths["garment"]))],
        backend="test:stored",
    )
    (row,) = ledger.jobs(batch_id=batch.id)
    with ledger._write() as conn:  # noqa: SLF001 - a finished row without running a job
        conn.execute(
            jobs.update()
            .where(jobs.c.id == row.id)
            .values(
                state="completed",
                job_id=f"stored-{tag}",
                finished_at=row.created_at,
                result_path=str(paths["result"]),
                thumbnail_path=str(paths["thumb"]),
                result_url=f"https://results.example.com/{tag}.jpg",
            )
        )
    stored = ledger.job(row.id)
    assert stored is not None
    return stored
