"""Reviewing a batch, one feature in one folder: the rules (`rules`), the figures and matrix
(`summary`), comparing two runs (`compare`), what the ledger keeps (`store`), the CSV and ZIP
exports (`exports`) and the HTML report (`report`). No UI here: the widgets are in
`mirrago.ui.review`.

`from mirrago import review` gives the names below; the exports and the report are imported
as modules (`from mirrago.review import exports`), as they read files and the ledger.
"""

from __future__ import annotations

from mirrago.review.compare import (
    JUDGEMENTS,
    LEFT,
    RIGHT,
    SAME,
    ComparedPair,
    ComparisonSummary,
    next_unjudged,
    pair_key,
    shared_pairs,
    summarize_comparison,
)
from mirrago.review.rules import (
    FAIL,
    PASS,
    REASONS,
    UNREVIEWED,
    VERDICT_BADGES,
    VERDICT_WORDS,
    VERDICTS,
    ReviewError,
    check_verdict,
    current_reviews,
    is_unreviewed,
    matches,
    next_unreviewed,
    review_queue,
    reviewable,
)
from mirrago.review.store import ReviewConflict, compare_runs, give_verdict, judge
from mirrago.review.summary import (
    Matrix,
    Rate,
    Summary,
    build_matrix,
    has_matrix,
    input_label,
    percent,
    summarize,
)

__all__ = [
    "FAIL",
    "JUDGEMENTS",
    "LEFT",
    "PASS",
    "REASONS",
    "RIGHT",
    "SAME",
    "UNREVIEWED",
    "VERDICTS",
    "VERDICT_BADGES",
    "VERDICT_WORDS",
    "ComparedPair",
    "ComparisonSummary",
    "Matrix",
    "Rate",
    "ReviewConflict",
    "ReviewError",
    "Summary",
    "build_matrix",
    "check_verdict",
    "compare_runs",
    "current_reviews",
    "give_verdict",
    "has_matrix",
    "input_label",
    "is_unreviewed",
    "judge",
    "matches",
    "next_unjudged",
    "next_unreviewed",
    "pair_key",
    "percent",
    "review_queue",
    "reviewable",
    "shared_pairs",
    "summarize",
    "summarize_comparison",
]
