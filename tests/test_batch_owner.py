"""Batches with sign-in: shared with the team, each with whose it is. A batch run
from the page records its owner on every row; the open batch's header and Past batches say
"by <owner>" as plain text; without sign-in nothing of the sort is shown."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from mirrago import batchprogress, batchtable
from mirrago.config import load_settings
from mirrago.services import Services
from mirrago.ui import session

pytestmark = pytest.mark.app

APP = "../app.py"
RUN_TIMEOUT = 60  # a deadline for one script run on a busy machine, not a speed target
OWNER = "al_*ice*@example.com"  # Markdown characters: shown as they are, never as emphasis
ESCAPED = "al\\_\\*ice\\*\u2060@example\\.com"  # escaped, and no mail link (a word joiner)
AUTH = {
    "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
    "cookie_secret": "x" * 32,
    "client_id": "mirrago",
    "client_secret": "test-only",
    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
}


def services() -> Services:
    return session.services_for(load_settings())


def batch_page(email: str | None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT)
    if email is not None:
        at.secrets["auth"] = AUTH
        at.user = {"is_logged_in": True, "email": email}
    at.run()
    at.switch_page("pages/batch.py").run()
    assert not at.exception, at.exception
    return at


def captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


def past_batches(at: AppTest) -> pd.DataFrame:
    (table,) = [d.value for d in at.dataframe if "started" in d.value.columns]
    return table


def test_a_batch_shows_its_owner_to_the_team_only_with_sign_in(data_dir: Path) -> None:
    alice = batch_page(OWNER)
    services().runner.hold()  # nothing needs sending: the test looks at who owns the rows
    base = services().backend.base_url
    alice.session_state["batch-table"] = [
        batchtable.clean_row(r) for r in batchtable.sample_rows(base, count=2)
    ]
    alice.run()
    alice.button(key="batch-run").click().run()
    assert not alice.exception, alice.exception
    batch = batchprogress.latest_batch(services().ledger)
    assert batch is not None
    assert {job.owner for job in services().ledger.jobs(batch_id=batch.id)} == {OWNER}
    assert f"· by {ESCAPED}" in captions(alice)  # Markdown-escaped: it shows as typed

    bob = batch_page("bob@example.com")  # a teammate: sees the batch, and whose it is
    bob.session_state["batch-view"] = "history"
    bob.run()
    assert list(past_batches(bob)["by"]) == [OWNER]

    alone = batch_page(None)  # no sign-in: one person, nobody's name anywhere
    assert " · by " not in captions(alone)
    alone.session_state["batch-view"] = "history"
    alone.run()
    assert "by" not in past_batches(alone).columns
    services().runner.resume()
