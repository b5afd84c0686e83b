"""Compare two runs of the same pairs: per shared pair both results side by side with their
verdicts and a quick judgement (left better `1`, right better `2`, same `3`), a summary of
improved, regressed and unchanged pairs and of verdict changes, and the comparison as a CSV.
Judgements are saved in the ledger at once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import streamlit as st

from mirrago import review
from mirrago.ledger import BatchRecord, JobRecord, Ledger
from mirrago.review import exports
from mirrago.ui.plain import md_text
from mirrago.ui.review.panel import reviewer_name, verdict_badge

CURRENT_KEY = "compare.current"
JUDGEMENT_KEYS = {review.LEFT: "1", review.RIGHT: "2", review.SAME: "3"}
CHANGE_WORDS = {
    "fixed": "fail → pass",
    "broke": "pass → fail",
    "same": "same verdict",
    "unknown": "not both reviewed",
}


def _batch_label(batch: BatchRecord) -> str:
    return f"#{batch.id} {batch.name} ({batch.created_at:%Y-%m-%d %H:%M})"


def _judge(ledger: Ledger, left: int, right: int, judgement: str) -> None:
    """Judge the pair the session shows now (not the one the button was drawn for: keys pressed
    faster than the page redraws judge the pairs in turn), then move to the next unjudged."""
    key = st.session_state.get(CURRENT_KEY)
    pairs = review.compare_runs(ledger, left, right)
    if key not in {pair.key for pair in pairs}:
        return
    review.judge(ledger, left, right, key, judgement, reviewer=reviewer_name())
    updated = [
        review.ComparedPair(p.key, p.left, p.right, judgement) if p.key == key else p for p in pairs
    ]
    following = review.next_unjudged(updated, key)
    st.session_state[CURRENT_KEY] = following.key if following else key


def _step(keys: list[str], offset: int) -> None:
    current = st.session_state.get(CURRENT_KEY)
    index = keys.index(current) if current in keys else 0
    st.session_state[CURRENT_KEY] = keys[(index + offset) % len(keys)]


def _result(job: JobRecord, side: str) -> None:
    with st.container(border=True, key=f"compare-result-{side}"):
        top = st.container(horizontal=True, vertical_alignment="center")
        top.markdown(f"**{side.capitalize()}: row {job.row_index + 1}**")
        with top:
            verdict_badge(job)
        path = job.result_path if review.reviewable(job) else None
        if path and Path(path).is_file():
            st.image(path, width=360)  # the full result: side by side, details matter
        else:
            st.caption(f"No result ({job.state.value})")
        if job.review_tags:
            st.caption(md_text(", ".join(review.REASONS.get(t, t) for t in job.review_tags)))


def compare_view(ledger: Ledger, batch_id: int | None = None, key: str = "compare") -> None:
    """Pick two batches; judge their shared pairs with the keyboard; see the summary."""
    batches = ledger.batches(limit=200)
    if len(batches) < 2:
        st.info("Comparing needs two batches that ran the same pairs: run this set again first.")
        return
    ids = [batch.id for batch in batches]
    by_id = {batch.id: batch for batch in batches}
    right_default = ids.index(batch_id) if batch_id in by_id else 0
    columns = st.columns(2)
    left_id = columns[0].selectbox(
        "Left (before)",
        ids,
        index=min(right_default + 1, len(ids) - 1),
        format_func=lambda i: _batch_label(by_id[i]),
        key=f"{key}-batch-left",
    )
    right_id = columns[1].selectbox(
        "Right (after)",
        ids,
        index=right_default,
        format_func=lambda i: _batch_label(by_id[i]),
        key=f"{key}-batch-right",
    )
    if left_id == right_id:
        st.info("Pick two different batches.")
        return
    pairs = review.compare_runs(ledger, left_id, right_id)
    if not pairs:
        st.info("These two batches share no pair (the same person, garment and background).")
        return
    _summary(review.summarize_comparison(pairs))
    st.download_button(
        "Comparison CSV",
        data=lambda: exports.comparison_csv(ledger, left_id, right_id),
        file_name=f"compare-{left_id}-vs-{right_id}.csv",
        mime="text/csv",
        icon=":material/download:",
        key=f"{key}-csv",
        on_click="ignore",  # nothing on the page changes: no rerun racing the download
    )
    _judging(ledger, left_id, right_id, pairs)


def _summary(summary: review.ComparisonSummary) -> None:
    with st.container(horizontal=True, gap="medium", key="compare-summary"):
        st.metric("Shared pairs", summary.shared, border=True)
        st.metric("Judged", f"{summary.judged} of {summary.shared}", border=True)
        st.metric("Improved", summary.improved, border=True)
        st.metric("Regressed", summary.regressed, border=True)
        st.metric("Unchanged", summary.unchanged, border=True)
    st.caption(
        f"Verdicts: {summary.fixed} fail → pass, {summary.broke} pass → fail, "
        f"{summary.same_verdict} the same, {summary.unknown_verdict} not reviewed on both sides."
    )


def _judging(ledger: Ledger, left_id: int, right_id: int, pairs: Sequence) -> None:
    pairs = list(pairs)
    keys = [pair.key for pair in pairs]
    if st.session_state.get(CURRENT_KEY) not in keys:
        first = review.next_unjudged(pairs, None) or pairs[0]
        st.session_state[CURRENT_KEY] = first.key
    pair = pairs[keys.index(st.session_state[CURRENT_KEY])]
    position = keys.index(pair.key) + 1
    judged = review.JUDGEMENTS.get(pair.judgement or "", "not judged yet")
    st.markdown(f"**Pair {position} of {len(pairs)}**")
    st.caption(
        f"{md_text(review.input_label(pair.left.target))} × "
        f"{md_text(review.input_label(pair.left.garment))} · "
        f"{judged} · {CHANGE_WORDS[pair.verdict_change]}"
    )
    with st.container(horizontal=True, gap="small", key="compare-judgements"):
        for judgement, label in review.JUDGEMENTS.items():
            st.button(
                label,
                key=f"compare-{judgement}",
                shortcut=JUDGEMENT_KEYS[judgement],
                type="primary" if pair.judgement == judgement else "secondary",
                on_click=_judge,
                args=(ledger, left_id, right_id, judgement),
            )
        st.button(
            "Previous",
            key="compare-prev",
            icon=":material/chevron_left:",
            on_click=_step,
            args=(keys, -1),
        )
        st.button(
            "Next",
            key="compare-next",
            icon=":material/chevron_right:",
            shortcut="S",
            on_click=_step,
            args=(keys, 1),
        )
    left, right = st.columns(2)
    with left:
        _result(pair.left, "left")
    with right:
        _result(pair.right, "right")
