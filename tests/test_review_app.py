"""The review widgets through AppTest, on known data in a real SQLite ledger: verdicts, a fail
needing a reason, undo, skip, the advance order, filters and the queue, summary figures, the
matrix and a comparison of two runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from review_data import finished_batch, grid_pairs
from streamlit.testing.v1 import AppTest

from mirrago import review
from mirrago.ledger import BatchRecord, JobInput, Ledger

pytestmark = pytest.mark.app

APP = "apps/review_app.py"


@pytest.fixture(autouse=True)
def review_app_reads_the_test_ledger(ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The review app opens the ledger the `ledger` fixture writes to."""
    monkeypatch.setenv("MIRRAGO_REVIEW_LEDGER", ledger_url)


@pytest.fixture
def batch(ledger: Ledger, tmp_path: Path) -> BatchRecord:
    """3 persons × 4 garments; row 3 failed at the server."""
    return finished_batch(ledger, tmp_path, grid_pairs(3, 4), name="spring", failed_rows=[2])


def _app(batch: BatchRecord) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params["batch"] = str(batch.id)
    at.run()
    assert not at.exception
    return at


def _row_on_screen(at: AppTest) -> int:
    title = next(m.value for m in at.markdown if m.value.startswith("**Row "))
    return int(title.split("**")[1].removeprefix("Row "))


def _metrics(at: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


def _verdicts(ledger: Ledger, batch: BatchRecord) -> dict[int, tuple]:
    return {
        job.row_index + 1: (job.review_verdict, job.review_tags)
        for job in ledger.jobs(batch_id=batch.id)
        if job.review_verdict
    }


def test_verdicts_advance_to_the_next_unreviewed_and_a_fail_needs_a_reason(
    ledger: Ledger, batch: BatchRecord
) -> None:
    at = _app(batch)
    at.text_input(key="reviewer").input("Ana").run()
    assert _row_on_screen(at) == 1
    at.button(key="review-pass").click().run()
    assert _row_on_screen(at) == 2
    at.button(key="review-fail").click().run()  # no reason: said at once, nothing saved
    assert "needs at least one reason" in at.error[0].value
    assert _row_on_screen(at) == 2 and _verdicts(ledger, batch) == {1: ("pass", ())}
    at.button(key="review-reason-artifacts").click().run()
    at.button(key="review-reason-other").click().run()
    at.text_input(key=f"review-note-{_job(ledger, batch, 2).id}").input("a seam <b>").run()
    at.button(key="review-fail").click().run()
    assert _row_on_screen(at) == 4  # row 3 failed at the server: not reviewable
    assert _verdicts(ledger, batch) == {1: ("pass", ()), 2: ("fail", ("artifacts", "other"))}
    second = _job(ledger, batch, 2)
    assert second.review_note == "a seam <b>"
    history = ledger.reviews(row_id=second.id)
    assert history[0].reviewer == "Ana" and history[0].seconds is not None
    assert _metrics(at)["Reviewed"] == "2 of 11" and _metrics(at)["Review pass"] == "50%"


def _conflict(at: AppTest) -> str:
    return " ".join(w.value for w in at.warning)


def test_a_verdict_on_a_row_judged_since_is_not_applied_and_replace_with_mine_applies_it(
    ledger: Ledger, batch: BatchRecord
) -> None:
    at = _app(batch)
    at.text_input(key="reviewer").input("Ana").run()
    assert _row_on_screen(at) == 1  # drawn as "To review"
    first = _job(ledger, batch, 1)
    review.give_verdict(ledger, first, "pass", reviewer="Bo")  # another tab, meanwhile
    at.button(key="review-reason-artifacts").click().run()
    at.button(key="review-fail").click().run()
    assert not at.exception
    assert "Bo judged row 1 Pass" in _conflict(at)
    assert _verdicts(ledger, batch) == {1: ("pass", ())}  # not overwritten
    assert _row_on_screen(at) == 1
    at.button(key="review-replace").click().run()
    assert _verdicts(ledger, batch) == {1: ("fail", ("artifacts",))}
    assert [(r.reviewer, r.verdict) for r in ledger.reviews(row_id=first.id)] == [
        ("Bo", "pass"),
        ("Ana", "fail"),
    ]
    assert _row_on_screen(at) == 2 and not _conflict(at)


def test_keep_theirs_leaves_the_other_verdict_and_moves_on(
    ledger: Ledger, batch: BatchRecord
) -> None:
    at = _app(batch)
    at.text_input(key="reviewer").input("Ana").run()
    review.give_verdict(ledger, _job(ledger, batch, 1), "fail", ["other"], reviewer="Bo")
    at.button(key="review-pass").click().run()
    assert "Bo judged row 1 Fail" in _conflict(at)
    at.button(key="review-keep-theirs").click().run()
    assert not at.exception and not _conflict(at)
    assert _verdicts(ledger, batch) == {1: ("fail", ("other",))}
    assert _row_on_screen(at) == 2
    assert len(ledger.reviews(batch_id=batch.id)) == 1


def test_the_same_verdict_given_again_after_the_warning_replaces_theirs(
    ledger: Ledger, batch: BatchRecord
) -> None:
    at = _app(batch)
    at.text_input(key="reviewer").input("Ana").run()
    review.give_verdict(ledger, _job(ledger, batch, 1), "fail", ["other"], reviewer="Bo")
    at.button(key="review-pass").click().run()
    assert "Bo judged row 1 Fail" in _conflict(at)
    at.button(key="review-pass").click().run()  # the key pressed again, having seen theirs
    assert _verdicts(ledger, batch) == {1: ("pass", ())}
    assert _row_on_screen(at) == 2


def test_undo_leaves_a_verdict_another_reviewer_gave_since(
    ledger: Ledger, batch: BatchRecord
) -> None:
    at = _app(batch)
    at.text_input(key="reviewer").input("Ana").run()
    at.button(key="review-pass").click().run()
    assert _row_on_screen(at) == 2
    first = _job(ledger, batch, 1)
    mine = ledger.reviews(row_id=first.id)[-1]
    review.give_verdict(
        ledger, first, "fail", ["artifacts"], reviewer="Bo", expected_review_id=mine.id
    )
    at.button(key="review-undo").click().run()
    assert not at.exception
    assert _verdicts(ledger, batch) == {1: ("fail", ("artifacts",))}  # Bo's stays
    assert not any(r.undone for r in ledger.reviews(row_id=first.id))
    said = " ".join(e.value for e in [*at.error, *at.warning])
    assert "Bo" in said and "stays" in said


def test_the_reviewer_name_in_the_address_goes_on_record(
    ledger: Ledger, batch: BatchRecord
) -> None:
    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params["batch"] = str(batch.id)
    at.query_params["reviewer"] = "Ana"  # kept in the URL from before a refresh
    at.run()
    assert at.text_input(key="reviewer").value == "Ana"
    at.button(key="review-pass").click().run()
    assert [r.reviewer for r in ledger.reviews(batch_id=batch.id)] == ["Ana"]


def test_with_sign_in_the_reviewer_is_the_signed_in_user_and_not_editable(
    ledger: Ledger, batch: BatchRecord
) -> None:
    at = AppTest.from_file(APP, default_timeout=30)
    at.secrets["auth"] = {
        "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
        "cookie_secret": "x" * 32,
        "client_id": "mirrago",
        "client_secret": "test-only",
        "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
    }
    at.user = {"is_logged_in": True, "email": "mei@example.com", "name": "Mei Tan"}
    at.query_params["batch"] = str(batch.id)
    at.query_params["reviewer"] = "Eve"  # a name in the address does not make one someone else
    at.run()
    assert not at.exception
    field = at.text_input(key="reviewer-signed-in")
    assert (field.value, field.disabled) == ("Mei Tan", True)
    at.button(key="review-pass").click().run()
    assert [r.reviewer for r in ledger.reviews(batch_id=batch.id)] == ["Mei Tan"]


def test_the_summary_names_the_verdict_figure_review_pass(
    ledger: Ledger, batch: BatchRecord
) -> None:
    at = _app(batch)
    at.button(key="review-pass").click().run()
    assert "Review pass" in _metrics(at) and "Pass rate" not in _metrics(at)
    at.segmented_control(key="review-view").set_value("matrix").run()
    captions = [c.value for c in at.caption]
    assert "Review pass" in captions and "Pass rate" not in captions


def _job(ledger: Ledger, batch: BatchRecord, row: int):  # noqa: ANN202
    return next(job for job in ledger.jobs(batch_id=batch.id) if job.row_index == row - 1)


def test_undo_takes_back_the_last_verdict_and_shows_that_result(
    ledger: Ledger, batch: BatchRecord
) -> None:
    at = _app(batch)
    at.button(key="review-pass").click().run()
    at.button(key="review-reason-wrong-garment").click().run()
    at.button(key="review-fail").click().run()
    assert _row_on_screen(at) == 4
    at.button(key="review-undo").click().run()
    assert _row_on_screen(at) == 2 and _verdicts(ledger, batch) == {1: ("pass", ())}
    assert at.button(key="review-reason-wrong-garment").proto.type == "primary"  # kept ticked
    at.button(key="review-undo").click().run()
    assert _row_on_screen(at) == 1 and _verdicts(ledger, batch) == {}
    assert at.button(key="review-undo").disabled


def test_skip_moves_on_without_a_verdict_and_the_next_verdict_comes_back_to_it(
    ledger: Ledger, batch: BatchRecord
) -> None:
    at = _app(batch)
    at.button(key="review-skip").click().run()
    assert _row_on_screen(at) == 2 and _verdicts(ledger, batch) == {}
    for _ in range(10):  # rows 2, 4 … 12
        at.button(key="review-pass").click().run()
    assert _row_on_screen(at) == 1  # wrapped round to the skipped one
    at.button(key="review-pass").click().run()
    assert _metrics(at)["Reviewed"] == "11 of 11"
    assert "Every result in this view is reviewed." in [c.value for c in at.caption]


def test_filters_and_the_queue_order(ledger: Ledger, batch: BatchRecord) -> None:
    jobs = sorted(ledger.jobs(batch_id=batch.id), key=lambda job: job.row_index)
    review.give_verdict(ledger, jobs[4], "fail", ["artifacts"])
    review.give_verdict(ledger, jobs[7], "fail", ["other"])
    review.give_verdict(ledger, jobs[0], "pass")
    at = _app(batch)
    at.pills(key="review-filter-verdict").set_value(["fail"]).run()
    assert _row_on_screen(at) == 5
    at.button(key="review-skip").click().run()
    assert _row_on_screen(at) == 8
    at.pills(key="review-filter-reason").set_value(["other"]).run()
    assert _row_on_screen(at) == 8
    assert "1 of 1" in next(m.value for m in at.markdown if m.value.startswith("**Row "))
    at.pills(key="review-filter-verdict").set_value([]).run()
    at.pills(key="review-filter-reason").set_value([]).run()
    at.toggle(key="review-queue").set_value(True).run()  # unreviewed, oldest first
    assert "of 8" in next(m.value for m in at.markdown if m.value.startswith("**Row "))


def test_the_summary_shows_figures_on_known_data(ledger: Ledger, batch: BatchRecord) -> None:
    jobs = sorted(ledger.jobs(batch_id=batch.id), key=lambda job: job.row_index)
    for index, seconds in ((0, 2.0), (1, 4.0), (3, 6.0)):
        review.give_verdict(ledger, jobs[index], "pass", seconds=seconds)
    review.give_verdict(ledger, jobs[5], "fail", ["garment-distorted"], seconds=10.0)
    at = _app(batch)
    assert _metrics(at) == {
        "Reviewed": "4 of 11",
        "Review pass": "75%",
        "Failed": "1",
        "Median time per review": "5.0 s",
    }
    texts = [text.value for text in at.text]
    assert "Garment distorted: 1" in texts
    assert "Red hoodie: 50% (1/2)" in texts  # garment 2: row 2 passed, row 6 failed


def test_the_matrix_shows_pass_rates_and_a_click_opens_that_result(
    ledger: Ledger, batch: BatchRecord
) -> None:
    jobs = sorted(ledger.jobs(batch_id=batch.id), key=lambda job: job.row_index)
    for index in (0, 1, 4):
        review.give_verdict(ledger, jobs[index], "pass")
    review.give_verdict(ledger, jobs[5], "fail", ["artifacts"])
    at = _app(batch)
    at.segmented_control(key="review-view").set_value("matrix").run()
    assert not at.exception
    texts = [text.value for text in at.text]
    # person 1 and garment 1: 2 of 2; person 2 and garment 2: 1 of 2
    assert (texts.count("100% (2/2)"), texts.count("50% (1/2)")) == (2, 2)
    assert texts.count("–") == 3  # person 3; garments 3 and 4
    assert len(at.get("image")) == 12
    at.button(key=f"review-matrix-open-{jobs[6].id}").click().run()
    assert at.segmented_control(key="review-view").value == "review"
    assert _row_on_screen(at) == 7


def test_a_comparison_of_two_runs_is_judged_with_keys_and_summarised(
    ledger: Ledger, tmp_path: Path
) -> None:
    pairs = grid_pairs(2, 3)
    before = finished_batch(ledger, tmp_path, pairs, name="before", prefix="a")
    after = finished_batch(ledger, tmp_path, pairs, name="after", prefix="b")
    old = sorted(ledger.jobs(batch_id=before.id), key=lambda job: job.row_index)
    new = sorted(ledger.jobs(batch_id=after.id), key=lambda job: job.row_index)
    review.give_verdict(ledger, old[0], "fail", ["artifacts"])
    review.give_verdict(ledger, new[0], "pass")
    at = _app(after)
    at.segmented_control(key="review-view").set_value("compare").run()
    assert (
        at.selectbox(key="compare-batch-left").value,
        at.selectbox(key="compare-batch-right").value,
    ) == (
        before.id,
        after.id,
    )
    for key in ("right", "left", "same", "same", "right", "right"):
        at.button(key=f"compare-{key}").click().run()
    assert not at.exception
    metrics = _metrics(at)
    assert (metrics["Shared pairs"], metrics["Judged"]) == ("6", "6 of 6")
    assert (metrics["Improved"], metrics["Regressed"], metrics["Unchanged"]) == ("3", "1", "2")
    assert any("1 fail → pass" in caption.value for caption in at.caption)
    saved = ledger.judgements(before.id, after.id)
    assert sorted(j.judgement for j in saved.values()) == ["left", *["right"] * 3, "same", "same"]


def test_run_again_queues_a_failed_result_and_keeps_its_verdict_in_history(
    ledger: Ledger, batch: BatchRecord
) -> None:
    at = _app(batch)
    at.button(key="review-reason-artifacts").click().run()
    at.button(key="review-fail").click().run()
    at.pills(key="review-filter-verdict").set_value(["fail"]).run()
    assert _row_on_screen(at) == 1
    at.button(key="review-rerun").click().run()
    first = _job(ledger, batch, 1)
    assert (first.state.value, first.attempts, first.review_verdict) == ("queued", 2, None)
    assert [(r.attempt, r.verdict) for r in ledger.reviews(row_id=first.id)] == [(1, "fail")]
    assert "No finished result matches these filters." in [i.value for i in at.info]


def test_keys_pressed_faster_than_the_page_redraws_judge_the_pairs_in_turn(
    ledger: Ledger, tmp_path: Path
) -> None:
    # Two keys in one script run (the second pressed before the page redrew): each must judge
    # its own pair; before the fix both acted on the first pair, the second undoing the first.
    pairs = grid_pairs(1, 3)
    before = finished_batch(ledger, tmp_path, pairs, name="before", prefix="a")
    after = finished_batch(ledger, tmp_path, pairs, name="after", prefix="b")
    at = _app(after)
    at.segmented_control(key="review-view").set_value("compare").run()
    at.button(key="compare-right").click()
    at.button(key="compare-left").click()
    at.run()
    judged = [pair.judgement for pair in review.compare_runs(ledger, before.id, after.id)]
    assert set(judged[:2]) == {"left", "right"} and judged[2] is None  # (callback order
    # within one run is Streamlit's, so which pair got which key is not asserted)


def test_a_verdict_then_skip_before_the_redraw_skips_the_next_result(
    ledger: Ledger, batch: BatchRecord
) -> None:
    # Before the fix, Skip acted on the row its button was drawn for (row 1, just passed), so
    # the second key was lost and row 2 stayed on screen.
    at = _app(batch)
    at.button(key="review-pass").click()
    at.button(key="review-skip").click()
    at.run()
    assert _verdicts(ledger, batch) == {1: ("pass", ())}
    assert _row_on_screen(at) == 4  # row 2 skipped; row 3 failed at the server


def test_review_never_hands_the_browser_an_input_link(ledger: Ledger, tmp_path: Path) -> None:
    # Every reviewer's browser would fetch a link's host (who looked, and when): a linked
    # input is named, never shown as an image.
    link = "https://images.example.invalid/alice.jpg"
    inputs = [JobInput(link, str(grid_pairs(1, 1)[0].garment))]
    linked = finished_batch(ledger, tmp_path, inputs, name="linked")
    at = _app(linked)
    shown = [image.url for element in at.get("image") for image in element.proto.imgs]
    assert shown and not any("example.invalid" in url for url in shown)
    assert any("a link, not loaded here" in caption.value for caption in at.caption)
