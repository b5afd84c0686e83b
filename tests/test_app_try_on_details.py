"""The Try-on page through AppTest: the username limit, the sidebar's balance, the locked
backend and deleting a try-on, on the embedded sandbox with a real ledger in a temporary data
dir."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from support import APP, RUN_TIMEOUT, default_services, run_until, try_on_rows

from mirrago.ledger import JobInput, JobState

pytestmark = pytest.mark.app


def test_a_5000_character_username_is_never_shown_or_sent_whole(app: AppTest):
    # Typed: the field takes 200 characters at most.
    app.text_input(key="tryon-username").input("x" * 5000).run()
    assert len(app.text_input(key="tryon-username").value or "") <= 200
    # Made elsewhere (a batch, the CLI): the details show 200 characters, not a 5,000 px table.
    services = default_services()
    base = services.backend.base_url
    (row,) = services.runner.enqueue(
        [
            JobInput(
                f"{base}/samples/persons/astronaut.jpg",
                f"{base}/samples/garments/striped-tee.png",
                username="y" * 5000,
            )
        ],
        name="Try-on",
        source="try-on",
    )
    fresh = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT)
    fresh.query_params["job"] = str(row.id)
    run_until(fresh, lambda at: len(at.download_button) == 1)
    details = "\n".join(h.proto.body for h in fresh.html)
    assert "y" * 199 in details and "y" * 201 not in details


def test_the_sidebar_shows_the_balance_after_the_last_try_on(app: AppTest):
    app.button(key="tryon-generate").click().run()
    run_until(app, lambda at: len(at.download_button) == 1)
    app.run()
    (row,) = try_on_rows(default_services())
    assert row.credits_before is not None
    credits = next(metric for metric in app.sidebar.metric if metric.label == "Credits")
    assert credits.value == f"{row.credits_before - 1:,}"


def test_lock_backend_hides_the_connection_form(data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MIRRAGO_LOCK_BACKEND", "1")
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT)
    at.run()
    assert not at.exception
    assert not [e for e in at.sidebar.expander if "live endpoint" in e.label]
    assert not [t for t in at.sidebar.text_input if t.key == "connect-secret"]


def test_deleting_a_try_on_removes_its_result_and_keeps_an_anonymous_row(app: AppTest):
    app.text_input(key="tryon-username").input("to-delete")
    app.button(key="tryon-generate").click().run()
    run_until(app, lambda at: len(at.download_button) == 1)
    (row,) = try_on_rows(default_services())
    result = Path(row.result_path or "")
    assert result.is_file()
    app.button(key=f"tryon-delete-{row.id}").click().run()
    after = default_services().ledger.job(row.id)
    assert after is not None and after.deleted_at is not None
    assert after.state is JobState.COMPLETED and after.username is None
    assert not result.exists()
    assert "job" not in app.query_params
    assert not [b for b in app.button if b.key == f"tryon-reopen-{row.id}"]
