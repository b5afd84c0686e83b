"""The review tools inside the Batch page (AppTest, embedded sandbox, a real ledger): Pass and
Fail-with-a-reason on the cards, the verdict and reason filters and the to-review queue in the
gallery, and the Review & reports view."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from review_data import batch_page, finished_batch, grid_pairs
from streamlit.testing.v1 import AppTest

from mirrago import review
from mirrago.ledger import BatchRecord, Ledger
from mirrago.ui.batch import gallery

pytestmark = pytest.mark.app


@pytest.fixture
def batch(app_ledger: Ledger, data_dir: Path) -> BatchRecord:
    return finished_batch(app_ledger, data_dir, grid_pairs(2, 3), name="page batch")


def _cards(at: AppTest) -> list[str]:
    """The rows of the cards on screen, in order ("Row 2"), from each card's text."""
    return [
        found.group(0)
        for m in at.markdown
        if (found := re.search(r"(?<=:gray\[)Row \d+", m.value)) is not None
    ]


def test_cards_take_a_pass_and_a_fail_with_its_reason(
    app_ledger: Ledger, batch: BatchRecord
) -> None:
    jobs = sorted(app_ledger.jobs(batch_id=batch.id), key=lambda job: job.row_index)
    at = batch_page(batch)
    at.button(key=f"batch-card-pass-{jobs[0].id}").click().run()
    reasons = f"batch-card-fail-{jobs[1].id}-"
    assert not [b for b in at.button if (b.key or "").startswith(reasons)]  # closed: not drawn
    at.session_state[f"batch-card-fail-{jobs[1].id}"] = True  # the reviewer opens it
    at.run()
    at.button(key=f"batch-card-fail-{jobs[1].id}-background-wrong").click().run()
    assert not at.session_state[f"batch-card-fail-{jobs[1].id}"]  # closed once the reason given
    assert not at.exception
    assert app_ledger.job(jobs[0].id).review_verdict == "pass"
    second = app_ledger.job(jobs[1].id)
    assert (second.review_verdict, second.review_tags) == ("fail", ("background-wrong",))


def test_the_gallery_filters_by_verdict_reason_and_queue(
    app_ledger: Ledger, batch: BatchRecord
) -> None:
    jobs = sorted(app_ledger.jobs(batch_id=batch.id), key=lambda job: job.row_index)
    review.give_verdict(app_ledger, jobs[1], "fail", ["artifacts"])
    review.give_verdict(app_ledger, jobs[3], "fail", ["other"])
    review.give_verdict(app_ledger, jobs[4], "pass")
    at = batch_page(batch)
    at.pills(key="batch-filter-verdict").set_value(["fail"]).run()
    assert _cards(at) == ["Row 2", "Row 4"]
    at.pills(key="batch-filter-reason").set_value(["other"]).run()
    assert _cards(at) == ["Row 4"]
    at.pills(key="batch-filter-verdict").set_value([]).run()
    at.pills(key="batch-filter-reason").set_value([]).run()
    at.toggle(key="batch-filter-queue").set_value(True).run()
    assert _cards(at) == ["Row 1", "Row 3", "Row 6"]


def test_the_review_view_records_a_verdict_and_shows_the_summary(
    app_ledger: Ledger, batch: BatchRecord
) -> None:
    at = batch_page(batch, view="review")
    at.button(key="review-pass").click().run()
    assert not at.exception
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Reviewed"] == "1 of 6" and metrics["Review pass"] == "100%"
    first = min(app_ledger.jobs(batch_id=batch.id), key=lambda job: job.row_index)
    assert app_ledger.job(first.id).review_verdict == "pass"


def test_a_card_verdict_on_a_row_judged_since_is_not_applied_and_again_replaces_it(
    app_ledger: Ledger, batch: BatchRecord
) -> None:
    jobs = sorted(app_ledger.jobs(batch_id=batch.id), key=lambda job: job.row_index)
    at = batch_page(batch)  # the card of row 1 drawn as "To review"
    review.give_verdict(app_ledger, jobs[0], "fail", ["other"], reviewer="Bo")  # another tab
    at.button(key=f"batch-card-pass-{jobs[0].id}").click().run()
    assert not at.exception
    assert "Bo judged row 1 Fail" in " ".join(t.value for t in at.toast)
    assert app_ledger.job(jobs[0].id).review_verdict == "fail"  # Bo's stays
    at.button(key=f"batch-card-pass-{jobs[0].id}").click().run()  # given again: replaces
    assert app_ledger.job(jobs[0].id).review_verdict == "pass"


def test_past_batches_name_success_and_review_pass_apart(
    app_ledger: Ledger, batch: BatchRecord
) -> None:
    jobs = sorted(app_ledger.jobs(batch_id=batch.id), key=lambda job: job.row_index)
    review.give_verdict(app_ledger, jobs[0], "pass")
    review.give_verdict(app_ledger, jobs[1], "fail", ["artifacts"])
    at = batch_page(batch, view="history")
    table = at.dataframe[0]
    assert list(table.value["success"]) == [100]  # every job completed
    assert list(table.value["review pass"]) == [50]  # one of two reviewed results passed
    config = str(table.proto)
    assert "Success" in config and "Review pass" in config and "Pass rate" not in config


def test_a_cards_verdict_badge_says_pass_and_fail_as_the_review_panel_does(
    app_ledger: Ledger, batch: BatchRecord
) -> None:
    jobs = sorted(app_ledger.jobs(batch_id=batch.id), key=lambda job: job.row_index)
    review.give_verdict(app_ledger, jobs[0], review.PASS, [], reviewer="Ana")
    review.give_verdict(app_ledger, jobs[1], review.FAIL, ["artifacts"], reviewer="Ana")
    badges = [m.value for m in batch_page(batch).markdown if "-badge[" in m.value]
    assert any(re.search(r":green-badge\[[^\]]* Pass\]", b) for b in badges), badges
    assert any(re.search(r":red-badge\[[^\]]* Fail\]", b) for b in badges), badges
    assert not [b for b in badges if "[pass]" in b or "[fail]" in b]


def test_the_gallery_takes_the_review_tools_as_parameters_and_keeps_no_lists(
    app_ledger: Ledger, batch: BatchRecord
) -> None:
    first = min(app_ledger.jobs(batch_id=batch.id), key=lambda job: job.row_index)
    at = batch_page(batch)  # the Batch page ran: whatever it registers at import time is in place
    assert at.pills(key="batch-filter-verdict").options  # the review's filter, passed in
    assert at.button(key=f"batch-card-pass-{first.id}").label == "Pass"  # a card's extra
    lists = [
        name
        for name, value in vars(gallery).items()
        if isinstance(value, (list, dict, set)) and not name.startswith("__")
    ]
    assert lists == []  # nothing another module could append to
    assert {"filters", "card_extras"} <= set(inspect.signature(gallery.gallery).parameters)
    assert "detail_extras" in inspect.signature(gallery.detail).parameters
