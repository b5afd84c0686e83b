"""The Usage page through AppTest, on a ledger seeded in a temporary data dir: the empty state,
the metrics, the history's links to the job view, its filters and paging, bad custom ranges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from support import seed

from mirrago.ledger import Ledger

pytestmark = pytest.mark.app

APP = "../app.py"
RUN_TIMEOUT = 90  # a deadline for one script run on a busy machine


def _usage_page(data_dir: Path) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT)
    at.run()
    at.switch_page("pages/usage.py").run()
    assert not at.exception, at.exception
    return at


def _open_tab(at: AppTest, name: str) -> None:
    """Pick a tab as a click does: only the open tab is drawn."""
    at.session_state["usage-tab"] = name
    at.run()
    assert not at.exception, at.exception


def _seeded(data_dir: Path) -> None:
    ledger = Ledger(f"sqlite:///{data_dir / 'ledger.sqlite3'}")
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=3)
    seed(
        ledger,
        [(start + timedelta(minutes=i), 100 - i, "completed") for i in range(24)],
        username="ana",
    )
    seed(ledger, [(now - timedelta(hours=1), 70, "failed")], username="ben")  # 6 outside
    ledger.close()


def test_an_empty_ledger_shows_what_to_do_first(data_dir: Path) -> None:
    at = _usage_page(data_dir)
    assert any("Nothing to show yet" in info.value for info in at.info)
    assert not at.main.metric


def test_metrics_statement_and_history(data_dir: Path) -> None:
    _seeded(data_dir)
    at = _usage_page(data_dir)
    metrics = {metric.label: metric.value for metric in at.main.metric}
    assert metrics["Balance"] == "70"  # the failed latest job was refunded
    assert metrics["Used outside Studio"] == "6"
    assert metrics["Spent"] == "25"
    _open_tab(at, "History")
    history = at.dataframe[-1].value
    assert len(history) == 20  # a page
    assert history["Open"].iloc[0] == "/try-on?job=25"
    assert list(history["State"].iloc[:2]) == ["Failed", "Done"]

    at.multiselect(key="usage-states").set_value(["failed"]).run()
    assert list(at.dataframe[-1].value["Username"]) == ["ben"]
    at.multiselect(key="usage-states").set_value([]).run()
    at.text_input(key="usage-search").set_value("no such thing").run()
    assert any(caption.value == "No jobs match." for caption in at.caption)
    assert not at.exception


def test_second_history_page_and_a_half_picked_custom_range(data_dir: Path) -> None:
    _seeded(data_dir)
    at = _usage_page(data_dir)
    at.session_state["usage-page"] = 2
    _open_tab(at, "History")
    assert len(at.dataframe[-1].value) == 5
    at.segmented_control(key="usage-range").set_value("Custom").run()
    today = datetime.now(UTC).date()
    at.date_input(key="usage-custom").set_value((today,)).run()  # only the start picked yet
    assert not at.exception
    assert {metric.label for metric in at.main.metric} >= {"Balance", "Runs out"}


def _balance_in(caption: str) -> str:
    return caption.split("latest known balance ")[1].split(" credits")[0]


def test_batch_page_sidebar_and_usage_show_one_balance(data_dir: Path) -> None:
    ledger = Ledger(f"sqlite:///{data_dir / 'ledger.sqlite3'}")
    now = datetime.now(UTC).replace(microsecond=0)
    seed(ledger, [(now - timedelta(minutes=3 - i), 50 - i, "completed") for i in range(3)])
    ledger.close()
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT)
    at.run()
    at.switch_page("pages/batch.py").run()
    assert not at.exception, at.exception
    (caption,) = [c.value for c in at.main.caption if "latest known balance" in c.value]
    sidebar = at.sidebar.metric[0].value
    assert _balance_in(caption) == sidebar == "47"  # 48 was read for a charged job
    at.switch_page("pages/usage.py").run()
    shown = {metric.label: metric.value for metric in at.main.metric}
    assert shown["Balance"] == at.sidebar.metric[0].value == "47"


def test_the_page_says_credits_left_not_a_field_name(data_dir: Path) -> None:
    _seeded(data_dir)
    at = _usage_page(data_dir)
    texts = [element.value for element in (*at.caption, *at.markdown)]
    assert not any("credits_before" in text for text in texts)
    assert any("credits left" in text.lower() for text in texts)


def test_minutes_of_history_give_no_run_out_date_and_say_why(data_dir: Path) -> None:
    ledger = Ledger(f"sqlite:///{data_dir / 'ledger.sqlite3'}")
    now = datetime.now(UTC).replace(microsecond=0)
    seed(ledger, [(now - timedelta(minutes=10 - i), 1000 - i, "completed") for i in range(10)])
    ledger.close()
    at = _usage_page(data_dir)
    runs_out = [metric for metric in at.main.metric if metric.label == "Runs out"][0]
    assert (runs_out.value, runs_out.delta) == ("—", "too little history")
    assert "day" in (runs_out.proto.help or "")


def test_the_page_opens_with_only_its_first_tab_drawn(data_dir: Path) -> None:
    _seeded(data_dir)
    at = _usage_page(data_dir)
    assert len(at.dataframe) == 1  # the statement: no history pictures, no breakdowns
    assert not any(caption.value.startswith("Jobs 1–") for caption in at.caption)
    _open_tab(at, "History")
    assert any(caption.value.startswith("Jobs 1–") for caption in at.caption)
    _open_tab(at, "Activity")
    assert len(at.dataframe) == 3  # by source, by person, by batch
