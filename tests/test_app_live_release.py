"""A live connection's credentials are kept in memory only until its runner is idle, and one
button runs old rows on the current backend, through AppTest, on real sandboxes on 127.0.0.1
and real ledger files:

- a live connection made in the sidebar is kept while a job of it is in progress, and released
  (runner stopped, client closed, secret and token dropped, entry gone) once its runner is idle
  and no page session is connected with it;
- rows of the "unknown" backend (old ledgers) are run on the current backend by the sidebar's
  "Run them on …" button.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from support import APP, RUN_TIMEOUT, connect, default_services, eventually, try_on_rows

import mirrago.samples
from mirrago.config import load_settings
from mirrago.ledger import UNKNOWN_BACKEND, JobInput, JobState, Ledger
from mirrago.sandbox.server import EmbeddedSandbox, start_embedded
from mirrago.ui import session

pytestmark = pytest.mark.app

DEADLINE = 90.0  # generous: the machine is shared; never a speed target


def test_a_live_connection_is_kept_while_its_job_runs_and_released_once_idle(
    app: AppTest, make_sandbox: Callable[..., EmbeddedSandbox], monkeypatch: pytest.MonkeyPatch
):
    live = make_sandbox(latency=600.0)  # the job stays in progress until the server restarts
    host = live.base_url.removeprefix("http://")
    connect(app, live.base_url, live.client_id, live.client_secret)
    services = session.live_connection(host)
    assert services is not None
    app.button(key="tryon-generate").click().run()
    (row,) = try_on_rows(services)
    eventually(lambda: services.ledger.job(row.id).job_id, "the server to take the job", DEADLINE)

    # The session leaves the connection while its job runs: the credentials stay in memory.
    back = next(b for b in app.sidebar.button if b.label == "Back to the default backend")
    back.click().run()
    assert not app.exception, app.exception
    assert host not in session.release_idle_connections()
    assert session.live_connection(host) is services
    assert not services.client.closed and services.runner.running
    assert not services.ledger.job(row.id).state.is_final  # read after: it was running

    # The server restarts and has forgotten the job: the runner records it failed, is idle, and
    # the connection is released by itself (no page session is connected with it any more).
    live.stop()
    restarted = start_embedded(live.engine.config, port=int(host.rsplit(":", 1)[1]))
    try:
        # Idle now, but a refreshed page may still come for the job: kept for a grace period.
        eventually(lambda: services.ledger.job(row.id).state.is_final, "the job to end", DEADLINE)
        eventually(services.runner.idle, "the runner to be idle", DEADLINE)
        assert host not in session.release_idle_connections()
        assert session.live_connection(host) is services and not services.client.closed
        monkeypatch.setattr(session, "RELEASE_GRACE", 0.0)  # the grace period is over
        eventually(
            lambda: session.live_connection(host) is None, "the connection's release", DEADLINE
        )
        assert services.closed and services.client.closed and not services.runner.running
        assert services.client._client_secret == "" and services.client._token is None
        ledger = Ledger.open(services.settings)
        try:
            assert ledger.job(row.id).state is JobState.FAILED
        finally:
            ledger.close()
        # A page opened on that job now has nothing to show it from: connect again.
        assert session.connected_earlier(host) is None
        reopened = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT)
        reopened.query_params["job"] = f"{row.id}@{host}"
        reopened.run()
        assert not reopened.exception, reopened.exception
        notes = " ".join(info.value for info in reopened.info)
        assert f"ran on {host}" in notes and "Connect again" in notes
    finally:
        restarted.stop()


def test_run_them_on_assigns_unknown_rows_to_the_current_backend(data_dir: Path):
    # A ledger from before it recorded servers: one queued row, backend "unknown".
    samples = Path(mirrago.samples.__file__).parent
    ledger = Ledger.open(load_settings())
    try:
        batch = ledger.create_batch(
            "Old try-on",
            "try-on",
            [
                JobInput(
                    str(samples / "persons" / "astronaut.jpg"),
                    str(samples / "garments" / "denim-shirt.png"),
                )
            ],
            backend=UNKNOWN_BACKEND,
        )
        (row_id,) = [job.id for job in ledger.jobs(batch_id=batch.id)]
    finally:
        ledger.close()
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    captions = "\n".join(c.value for c in at.sidebar.caption)
    assert "1 unfinished job(s)" in captions

    at.button(key="sidebar-assign-backend").click().run()
    assert not at.exception, at.exception

    services = default_services()
    assert services.ledger.job(row_id).backend == services.runner.backend
    assert not [b for b in at.sidebar.button if b.key == "sidebar-assign-backend"]
    eventually(lambda: services.ledger.job(row_id).state.is_final, "the row to be run", DEADLINE)
    assert services.ledger.job(row_id).state is JobState.COMPLETED
