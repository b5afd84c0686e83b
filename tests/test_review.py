"""Review verdicts and their history, the queue, summary figures, the matrix and run comparisons,
on known data in real ledgers (SQLite, and PostgreSQL for the ledger's own moves)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from review_data import RUNNER, finished_batch, grid_pairs

from mirrago import review
from mirrago.ledger import JobInput, JobState, Ledger
from mirrago.ledger import schema as ledger_module
from mirrago.models import JobStatus, Submission

PAIRS = [JobInput(f"person-{i}.jpg", f"garment-{i}.png") for i in range(3)]


def _rows(ledger: Ledger, batch_id: int) -> list:
    return sorted(ledger.jobs(batch_id=batch_id), key=lambda job: job.row_index)


# --------------------------------------------------------------------------- verdicts


def test_a_pass_is_recorded_with_reviewer_time_and_seconds(ledger: Ledger, tmp_path: Path) -> None:
    batch = finished_batch(ledger, tmp_path, PAIRS)
    first = _rows(ledger, batch.id)[0]
    record = review.give_verdict(
        ledger, first, "pass", ["artifacts"], "  looks right ", reviewer=" Ana ", seconds=4.256
    )
    row = ledger.job(first.id)
    assert (row.review_verdict, row.review_tags, row.review_note) == ("pass", (), "looks right")
    assert (record.reviewer, record.seconds, record.attempt) == ("Ana", 4.26, 1)
    assert ledger.reviews(row_id=first.id) == [record]


def test_a_fail_without_a_reason_is_refused_and_nothing_is_recorded(
    ledger: Ledger, tmp_path: Path
) -> None:
    batch = finished_batch(ledger, tmp_path, PAIRS)
    first = _rows(ledger, batch.id)[0]
    with pytest.raises(review.ReviewError, match="needs at least one reason"):
        review.give_verdict(ledger, first, "fail", [])
    assert ledger.job(first.id).review_verdict is None
    assert ledger.reviews(batch_id=batch.id) == []


def test_a_fail_keeps_its_reasons_in_the_listed_order(ledger: Ledger, tmp_path: Path) -> None:
    batch = finished_batch(ledger, tmp_path, PAIRS)
    first = _rows(ledger, batch.id)[0]
    review.give_verdict(ledger, first, "fail", ["other", "wrong-garment", "other"], "sleeve")
    assert ledger.job(first.id).review_tags == ("wrong-garment", "other")


def test_only_a_completed_result_can_be_reviewed(ledger: Ledger, tmp_path: Path) -> None:
    batch = finished_batch(ledger, tmp_path, PAIRS, failed_rows=[1])
    failed = _rows(ledger, batch.id)[1]
    assert failed.state is JobState.FAILED
    with pytest.raises(review.ReviewError, match="finished result"):
        review.give_verdict(ledger, failed, "pass")
    with pytest.raises(review.ReviewError, match="Unknown reason"):
        review.give_verdict(ledger, _rows(ledger, batch.id)[0], "fail", ["ugly"])


@pytest.mark.every_database
def test_undo_returns_the_row_to_its_verdict_before(ledger: Ledger, tmp_path: Path) -> None:
    batch = finished_batch(ledger, tmp_path, PAIRS)
    first = _rows(ledger, batch.id)[0]
    review.give_verdict(ledger, first, "pass", reviewer="Ana")
    review.give_verdict(ledger, first, "fail", ["artifacts"], "blotch", reviewer="Ana")
    undone = ledger.undo_review(first.id, reviewer="Ana")
    assert undone is not None and undone.verdict == "fail" and undone.undone
    row = ledger.job(first.id)
    assert (row.review_verdict, row.review_tags, row.review_note) == ("pass", (), None)
    assert ledger.undo_review(first.id, reviewer="Ana").verdict == "pass"
    row = ledger.job(first.id)
    assert (row.review_verdict, row.review_tags) == (None, ())
    assert ledger.undo_review(first.id, reviewer="Ana") is None
    assert [r.undone for r in ledger.reviews(row_id=first.id)] == [True, True]


@pytest.mark.every_database
def test_a_rerun_keeps_the_old_verdict_in_history_and_asks_anew(
    ledger: Ledger, tmp_path: Path
) -> None:
    batch = finished_batch(ledger, tmp_path, PAIRS[:1])
    first = _rows(ledger, batch.id)[0]
    review.give_verdict(ledger, first, "fail", ["garment-distorted"], "melted", reviewer="Ana")
    assert ledger.retry(first.id) is False  # a completed row is re-run only when asked
    assert ledger.retry(first.id, rerun_completed=True)
    row = ledger.job(first.id)
    assert (row.state, row.attempts, row.review_verdict, row.review_tags) == (
        JobState.QUEUED,
        2,
        None,
        (),
    )
    assert ledger.events(first.id)[-1].detail["review_verdict"] == "fail"
    _complete_again(ledger, first.id)
    again = ledger.job(first.id)
    assert review.is_unreviewed(again)
    # the old attempt's verdict is not undoable
    assert ledger.undo_review(first.id, reviewer="Ana") is None
    review.give_verdict(ledger, again, "pass", reviewer="Ana")
    history = ledger.reviews(row_id=first.id)
    assert [(r.attempt, r.verdict) for r in history] == [(1, "fail"), (2, "pass")]
    current = review.current_reviews(history, [ledger.job(first.id)])
    assert current[first.id].verdict == "pass"


@pytest.mark.every_database
def test_a_verdict_on_a_stale_view_is_not_applied_and_names_who_judged_since(
    ledger: Ledger, tmp_path: Path
) -> None:
    batch = finished_batch(ledger, tmp_path, PAIRS[:1])
    first = _rows(ledger, batch.id)[0]  # both pages drew it as "To review"
    theirs = review.give_verdict(ledger, first, "pass", reviewer="Bo", expected_review_id=None)
    with pytest.raises(review.ReviewConflict) as raised:
        review.give_verdict(
            ledger, first, "fail", ["artifacts"], "seam", reviewer="Ana", expected_review_id=None
        )
    assert raised.value.theirs == theirs  # who, what and when, for the choice
    assert "Bo" in str(raised.value) and "Pass" in str(raised.value)
    row = ledger.job(first.id)
    assert (row.review_verdict, row.review_tags, row.review_note) == ("pass", (), None)
    assert [(r.reviewer, r.verdict) for r in ledger.reviews(row_id=first.id)] == [("Bo", "pass")]


@pytest.mark.every_database
def test_a_verdict_on_the_latest_view_replaces_the_verdict_it_saw(
    ledger: Ledger, tmp_path: Path
) -> None:
    batch = finished_batch(ledger, tmp_path, PAIRS[:1])
    first = _rows(ledger, batch.id)[0]
    theirs = review.give_verdict(ledger, first, "pass", reviewer="Bo", expected_review_id=None)
    mine = review.give_verdict(
        ledger, first, "fail", ["artifacts"], reviewer="Ana", expected_review_id=theirs.id
    )
    assert ledger.job(first.id).review_verdict == "fail"
    assert [r.id for r in ledger.reviews(row_id=first.id)] == [theirs.id, mine.id]
    with pytest.raises(review.ReviewConflict):  # Bo's view (his own pass) is stale now
        review.give_verdict(ledger, first, "pass", reviewer="Bo", expected_review_id=theirs.id)


@pytest.mark.every_database
def test_a_verdict_after_the_one_it_saw_was_undone_overwrites_nobody_and_is_applied(
    ledger: Ledger, tmp_path: Path
) -> None:
    batch = finished_batch(ledger, tmp_path, PAIRS[:1])
    first = _rows(ledger, batch.id)[0]
    theirs = review.give_verdict(ledger, first, "pass", reviewer="Bo")
    assert ledger.undo_review(first.id, reviewer="Bo") is not None
    review.give_verdict(
        ledger, first, "fail", ["other"], reviewer="Ana", expected_review_id=theirs.id
    )
    assert ledger.job(first.id).review_verdict == "fail"


@pytest.mark.every_database
def test_two_reviewers_judging_one_unreviewed_row_at_once_apply_one_verdict(
    ledger_url: str, tmp_path: Path
) -> None:
    setup = Ledger(ledger_url)
    batch = finished_batch(setup, tmp_path, PAIRS[:1])
    first = _rows(setup, batch.id)[0]
    reviewers = [Ledger(ledger_url) for _ in range(2)]
    start = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def judge(ledger: Ledger, name: str) -> None:
        start.wait()
        try:
            review.give_verdict(ledger, first, "pass", reviewer=name, expected_review_id=None)
            outcomes[name] = "applied"
        except review.ReviewConflict as conflict:
            outcomes[name] = f"conflict with {conflict.theirs.reviewer}"

    threads = [
        threading.Thread(target=judge, args=(ledger, name))
        for ledger, name in zip(reviewers, ("Ana", "Bo"), strict=True)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(outcomes.values()) in (
            ["applied", "conflict with Ana"],
            ["applied", "conflict with Bo"],
        )
        assert len(setup.reviews(row_id=first.id)) == 1
    finally:
        for ledger in (*reviewers, setup):
            ledger.close()


@pytest.mark.every_database
def test_undo_takes_back_only_your_own_last_verdict(ledger: Ledger, tmp_path: Path) -> None:
    batch = finished_batch(ledger, tmp_path, PAIRS[:2])
    first, second = _rows(ledger, batch.id)
    mine = review.give_verdict(ledger, first, "pass", reviewer="Ana", expected_review_id=None)
    theirs = review.give_verdict(
        ledger, first, "fail", ["artifacts"], reviewer="Bo", expected_review_id=mine.id
    )
    with pytest.raises(review.ReviewConflict) as raised:
        ledger.undo_review(first.id, reviewer="Ana")
    assert raised.value.theirs == theirs
    row = ledger.job(first.id)
    assert (row.review_verdict, row.review_tags) == ("fail", ("artifacts",))
    assert [r.undone for r in ledger.reviews(row_id=first.id)] == [False, False]
    # Bo's own undo takes back his and the row returns to Ana's pass.
    assert ledger.undo_review(first.id, reviewer="Bo").verdict == "fail"
    assert ledger.job(first.id).review_verdict == "pass"
    # A verdict given without a name is undone only by the session that names its id.
    nameless = review.give_verdict(ledger, second, "pass", expected_review_id=None)
    with pytest.raises(review.ReviewConflict):
        ledger.undo_review(second.id, reviewer=None, review_id=nameless.id + 1000)
    assert ledger.undo_review(second.id, reviewer=None, review_id=nameless.id).id == nameless.id


def _complete_again(ledger: Ledger, row_id: int) -> None:
    ledger.register_runner(RUNNER)
    row = ledger.job(row_id)
    claimed = ledger.claim_next(RUNNER, [row.batch_id], backend=row.backend)
    assert claimed is not None and claimed.id == row_id
    ledger.record_submission(
        row_id,
        RUNNER,
        Submission("again-1", JobStatus.IN_PROGRESS, "queued", None, None, None, 5, None),
    )
    job = ledger.job(row_id)
    ledger.complete(
        row_id,
        RUNNER,
        server_status="completed",
        result_url=None,
        result_path=job.result_path,
        thumbnail_path=None,
    )
    ledger.unregister_runner(RUNNER)


def test_reviews_survive_reopening_the_ledger(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    first = Ledger(url)
    batch = finished_batch(first, tmp_path, PAIRS)
    row = _rows(first, batch.id)[0]
    review.give_verdict(first, row, "fail", ["artifacts"], "seam", reviewer="Kofi", seconds=3)
    first.close()
    again = Ledger(url)
    try:
        kept = again.job(row.id)
        assert (kept.review_verdict, kept.review_tags, kept.review_note) == (
            "fail",
            ("artifacts",),
            "seam",
        )
        assert again.reviews(batch_id=batch.id)[0].reviewer == "Kofi"
    finally:
        again.close()


def test_a_ledger_from_before_reviews_gains_the_review_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    Ledger(url).close()
    before = next(
        version
        for version, step in ledger_module.MIGRATIONS.items()
        if step is ledger_module._add_reviews_and_comparisons  # noqa: SLF001
    )
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # make it what the version before wrote
        conn.execute(sa.text("DROP TABLE reviews"))
        conn.execute(sa.text("DROP TABLE comparisons"))
        conn.execute(sa.text(f"UPDATE schema_version SET version = {before}"))
    engine.dispose()
    upgraded = Ledger(url)
    try:
        batch = finished_batch(upgraded, tmp_path, PAIRS[:1])
        review.give_verdict(upgraded, _rows(upgraded, batch.id)[0], "pass")
        assert len(upgraded.reviews(batch_id=batch.id)) == 1
        upgraded.save_judgement(batch.id, batch.id, "k", "same")
        assert upgraded.judgements(batch.id, batch.id)["k"].judgement == "same"
    finally:
        upgraded.close()


# --------------------------------------------------------------------------- queue and filters


def test_the_queue_is_unreviewed_completed_results_oldest_first(
    ledger: Ledger, tmp_path: Path
) -> None:
    batch = finished_batch(ledger, tmp_path, grid_pairs(2, 3), failed_rows=[2])
    rows = _rows(ledger, batch.id)
    review.give_verdict(ledger, rows[0], "pass")
    queue = review.review_queue(_rows(ledger, batch.id))
    assert [job.row_index for job in queue] == [1, 3, 4, 5]


def test_next_unreviewed_follows_the_filter_order_and_wraps(ledger: Ledger, tmp_path: Path) -> None:
    batch = finished_batch(ledger, tmp_path, grid_pairs(2, 3), failed_rows=[2])
    rows = _rows(ledger, batch.id)
    review.give_verdict(ledger, rows[4], "pass")
    rows = _rows(ledger, batch.id)
    assert review.next_unreviewed(rows, rows[3].id).row_index == 5  # 4 is done, 2 failed
    assert review.next_unreviewed(rows, rows[5].id).row_index == 0  # wraps
    newest_first = list(reversed(rows))
    assert review.next_unreviewed(newest_first, rows[3].id).row_index == 1
    only = [rows[1]]
    assert review.next_unreviewed(only, rows[1].id) is None


def test_filters_by_verdict_and_reason(ledger: Ledger, tmp_path: Path) -> None:
    batch = finished_batch(ledger, tmp_path, grid_pairs(2, 2))
    rows = _rows(ledger, batch.id)
    review.give_verdict(ledger, rows[0], "pass")
    review.give_verdict(ledger, rows[1], "fail", ["artifacts", "other"])
    review.give_verdict(ledger, rows[2], "fail", ["other"])
    rows = _rows(ledger, batch.id)

    def pick(**filters: list[str]) -> list[int]:
        return [job.row_index for job in rows if review.matches(job, **filters)]

    assert pick(verdicts=["fail"]) == [1, 2]
    assert pick(verdicts=["unreviewed"]) == [3]
    assert pick(verdicts=["pass", "unreviewed"]) == [0, 3]
    assert pick(reasons=["other"]) == [1, 2]
    assert pick(verdicts=["fail"], reasons=["artifacts"]) == [1]


# --------------------------------------------------------------------------- summary and matrix


def test_the_summary_on_known_data(ledger: Ledger, tmp_path: Path) -> None:
    # 3 persons × 4 garments; row 11 failed at the server (not reviewable).
    batch = finished_batch(ledger, tmp_path, grid_pairs(3, 4), failed_rows=[11])
    rows = _rows(ledger, batch.id)
    verdicts = {
        0: ("pass", [], 2.0),
        1: ("fail", ["garment-distorted"], 6.0),
        2: ("pass", [], 4.0),
        4: ("pass", [], 3.0),
        5: ("fail", ["garment-distorted", "artifacts"], 10.0),
        9: ("fail", ["face-body-changed"], 5.0),
    }
    for index, (verdict, reasons, seconds) in verdicts.items():
        review.give_verdict(ledger, rows[index], verdict, reasons, reviewer="Mei", seconds=seconds)
    rows = _rows(ledger, batch.id)
    summary = review.summarize(rows, ledger.reviews(batch_id=batch.id))
    assert (summary.reviewed, summary.reviewable, summary.passed, summary.failed) == (6, 11, 3, 3)
    assert summary.pass_rate == 0.5
    assert summary.reasons == {
        "garment-distorted": 2,
        "wrong-garment": 0,
        "artifacts": 1,
        "face-body-changed": 1,
        "background-wrong": 0,
        "other": 0,
    }
    assert summary.median_seconds == 4.5
    assert summary.reviewers == ["Mei"]
    # garment 1 fails on both bodies it was reviewed on; garment 1 is rows 1, 5, 9
    garment_1 = rows[1].garment
    assert (summary.worst_garments[0].value, summary.worst_garments[0].rate) == (garment_1, 0.0)
    assert [r.reviewed for r in summary.worst_garments] == [3]
    persons = [(r.value, r.passed, r.reviewed) for r in summary.worst_persons]
    assert persons == [(rows[8].target, 0, 1), (rows[4].target, 1, 2), (rows[0].target, 2, 3)]


def test_the_matrix_places_every_pair_and_its_pass_rates(ledger: Ledger, tmp_path: Path) -> None:
    batch = finished_batch(ledger, tmp_path, grid_pairs(3, 4))
    rows = _rows(ledger, batch.id)
    for index in (0, 1, 4, 8):
        review.give_verdict(ledger, rows[index], "pass")
    for index in (5, 9):
        review.give_verdict(ledger, rows[index], "fail", ["artifacts"])
    rows = _rows(ledger, batch.id)
    assert review.has_matrix(rows)
    matrix = review.build_matrix(rows)
    assert (len(matrix.persons), len(matrix.garments)) == (3, 4)
    assert matrix.cell(rows[6].target, rows[6].garment).row_index == 6
    rates = [(r.passed, r.reviewed) for r in map(matrix.person_rate, matrix.persons)]
    assert rates == [(2, 2), (1, 2), (1, 2)]
    rates = [(r.passed, r.reviewed) for r in map(matrix.garment_rate, matrix.garments)]
    assert rates == [(3, 3), (1, 3), (0, 0), (0, 0)]
    assert not review.has_matrix(rows[:4])  # one person


# --------------------------------------------------------------------------- comparing runs


def test_a_comparison_pairs_the_shared_inputs_and_summarises(
    ledger: Ledger, tmp_path: Path
) -> None:
    pairs = grid_pairs(2, 3)
    before = finished_batch(ledger, tmp_path, pairs, name="before", prefix="a")
    after = finished_batch(ledger, tmp_path, [*pairs[1:], grid_pairs(3, 4)[11]], name="after")
    old, new = _rows(ledger, before.id), _rows(ledger, after.id)
    review.give_verdict(ledger, old[1], "fail", ["artifacts"])
    review.give_verdict(ledger, new[0], "pass")  # pair 1: fixed
    review.give_verdict(ledger, old[2], "pass")
    review.give_verdict(ledger, new[1], "fail", ["other"])  # pair 2: broke
    review.give_verdict(ledger, old[3], "pass")
    review.give_verdict(ledger, new[2], "pass")  # pair 3: same
    shared = review.compare_runs(ledger, before.id, after.id)
    assert [pair.left.row_index for pair in shared] == [1, 2, 3, 4, 5]
    assert [pair.right.row_index for pair in shared] == [0, 1, 2, 3, 4]
    for pair, judgement in zip(shared, ["right", "left", "same", "right", None], strict=True):
        if judgement:
            review.judge(ledger, before.id, after.id, pair.key, judgement, reviewer="Sam")
    shared = review.compare_runs(ledger, before.id, after.id)
    assert [pair.judgement for pair in shared] == ["right", "left", "same", "right", None]
    summary = review.summarize_comparison(shared)
    assert (summary.shared, summary.judged) == (5, 4)
    assert (summary.improved, summary.regressed, summary.unchanged) == (2, 1, 1)
    assert (summary.fixed, summary.broke, summary.same_verdict, summary.unknown_verdict) == (
        1,
        1,
        1,
        2,
    )
    assert review.next_unjudged(shared, shared[0].key).left.row_index == 5
    review.judge(ledger, before.id, after.id, shared[0].key, None)
    assert review.compare_runs(ledger, before.id, after.id)[0].judgement is None
    with pytest.raises(review.ReviewError):
        review.judge(ledger, before.id, after.id, shared[0].key, "better")


@pytest.mark.every_database
def test_current_review_ids_name_each_rows_live_verdict(ledger: Ledger, tmp_path: Path) -> None:
    batch = finished_batch(ledger, tmp_path, PAIRS)
    first, second, third = _rows(ledger, batch.id)
    review.give_verdict(ledger, first, "pass", reviewer="Ana")
    latest = review.give_verdict(ledger, first, "fail", ["other"], reviewer="Bo")
    undone = review.give_verdict(ledger, second, "pass", reviewer="Ana")
    ledger.undo_review(second.id, reviewer="Ana", review_id=undone.id)
    assert ledger.current_review_ids(batch.id) == {first.id: latest.id}
    assert third.id not in ledger.current_review_ids(batch.id)
