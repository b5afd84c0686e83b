"""Review & reports: how the flags agree with the reviewers' verdicts so far (per flag,
precision and recall with their counts), once enough results have verdicts."""

from __future__ import annotations

import streamlit as st

from mirrago.ledger import Ledger
from mirrago.triage.agreement import MIN_VERDICTS, FlagAgreement, agreement


def _share(part: int, whole: int, value: float | None) -> str:
    return "–" if value is None else f"{value:.0%} ({part} of {whole})"


def agreement_section(ledger: Ledger, batch_id: int) -> None:
    """The table, or how many verdicts are still needed before it means anything."""
    found = agreement(ledger.jobs(batch_id=batch_id), ledger.batch_triage(batch_id))
    with st.container(key="triage-agreement"):
        st.markdown("**Quality checks and verdicts**")
        if not found.enough:
            st.caption(
                f"How the checks' flags agree with reviewers' verdicts is shown once "
                f"{MIN_VERDICTS} checked results have a verdict ({found.judged} so far)."
            )
            return
        st.caption(
            f"Over {found.judged} checked results with a verdict ({found.failed} failed). "
            "Precision: of the results a flag marked, how many a reviewer failed. Recall: of "
            "the failed results, how many the flag marked. The checks never give a verdict."
        )
        rows = [
            _row(flag)
            for flag in (*found.flags, found.any_flag)
            if flag.flagged or flag.code == "any"
        ]
        st.table(rows)


def _row(flag: FlagAgreement) -> dict[str, str]:
    return {
        "Flag": flag.label,
        "Flagged": str(flag.flagged),
        "Precision": _share(flag.flagged_failed, flag.flagged, flag.precision),
        "Recall": _share(flag.failed_flagged, flag.failed, flag.recall),
    }
