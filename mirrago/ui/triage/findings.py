"""The quality checks on the Batch page: chips on each card, the findings in the detail dialog
(with "Show where it changed" for a changed face or background), the flag filter, the sort
"Most suspect first", and the offer to score a batch again with the current checks.

The gallery takes these as parameters (`filters`, `card_extras`, `detail_extras`, `sorts`).
Checks never give a verdict: the widgets say why to look, reviewers judge.
"""

from __future__ import annotations

import time
from datetime import timedelta

import streamlit as st

from mirrago.ledger import JobRecord, JobState, TriageRecord, utcnow
from mirrago.services import Services
from mirrago.triage import CHECKS_VERSION, FLAG_CODES, chip, label
from mirrago.triage.ordering import most_suspect_first
from mirrago.ui.plain import md_text

NOT_CHECKED = "not_checked"  # the flag filter's choice for results the checks could not read
SORT_LABEL = "Most suspect first"
_CHIP_COLOUR = "orange"
RECENT = timedelta(minutes=5)  # the background checker is likely still on such results


_FRESH_FOR = 1.0  # seconds a batch's findings are read once for every card and view
_KEPT = 64
_read: dict[tuple[str, int], tuple[float, dict[int, TriageRecord]]] = {}


def findings(services: Services, batch_id: int) -> dict[int, TriageRecord]:
    """A batch's findings, read once a second for every card (not a copy per card, as
    `st.cache_data` hands out: a checked 5,000-row batch would be copied 24 times a page).
    Read-only for callers."""
    key = (services.ledger.display_url, batch_id)
    now = time.monotonic()
    found = _read.get(key)
    if found is not None and now - found[0] < _FRESH_FOR:
        return found[1]
    records = services.ledger.batch_triage(batch_id)
    if len(_read) >= _KEPT:
        _read.pop(next(iter(_read)), None)
    _read[key] = (now, records)
    return records


def forget_findings() -> None:
    """Read every batch's findings again at the next look (after scoring a batch again)."""
    _read.clear()


def _chips(found: TriageRecord, key: str) -> None:
    with st.container(horizontal=True, gap="xsmall", key=key):
        for code in found.flags:
            st.badge(chip(code, found.values.get(code)), color=_CHIP_COLOUR)


def card_note(services: Services, row: JobRecord) -> str:
    """A card's flags as chips that say why, its suspect score, or "not checked" and why, as
    Markdown for the card's one text element (the gallery's `card_notes`)."""
    if row.state is not JobState.COMPLETED:
        return ""
    found = findings(services, row.batch_id).get(row.id)
    if found is None:
        return ":small[:gray[Checks: waiting]]"
    if not found.checked:
        return f":small[:gray[{md_text(f'Not checked: {found.not_checked}'[:160])}]]"
    chips = " ".join(
        f":{_CHIP_COLOUR}-badge[{md_text(chip(code, found.values.get(code)))}]"
        for code in found.flags
    )
    score = f"Suspect score {found.score_text}" + ("" if found.flags else " · no flags")
    return (chips + "  \n" if chips else "") + f":small[:gray[{md_text(score)}]]"


def detail_findings(services: Services, row: JobRecord) -> None:
    """The checks in the detail dialog: score, chips, and for a changed face or background a
    toggle that shows where it changed."""
    if row.state is not JobState.COMPLETED:
        return
    found = findings(services, row.batch_id).get(row.id)
    with st.container(border=True, key=f"triage-detail-{row.id}"):
        if found is None:
            st.caption("The quality checks have not looked at this result yet.")
            return
        if not found.checked:
            st.markdown("**Not checked:** " + md_text((found.not_checked or "")[:200]))
            return
        st.markdown(f"**Suspect score {found.score_text}** · " + _flag_words(found))
        if found.flags:
            _chips(found, f"triage-detail-chips-{row.id}")
        for code in ("face_changed", "background_changed"):
            if code in found.flags:
                _overlay_toggle(services, row, code)
        st.caption("The checks compare the result with its own photos; they never give a verdict.")


def _flag_words(found: TriageRecord) -> str:
    count = len(found.flags)
    return "no flags" if not count else f"{count} flag{'s' if count > 1 else ''}"


def _overlay_toggle(services: Services, row: JobRecord, code: str) -> None:
    what = "face" if code == "face_changed" else "background"
    if not st.toggle(f"Show where the {what} changed", key=f"triage-overlay-{code}-{row.id}"):
        return
    from mirrago.triage.overlay import change_overlay
    from mirrago.triage.worker import input_file

    person = input_file(row.target, services.backend.base_url)
    picture = None
    if person is not None and row.result_path:
        picture = change_overlay(person, row.result_path, code)
    if picture is None:
        st.caption("The photos this result was checked with are no longer on this machine.")
        return
    st.image(picture, caption=f"Where the {what} changed (tinted)", width="stretch")


def flag_filter(rows: list[JobRecord], services: Services) -> list[JobRecord]:
    """The gallery's filter by flag (and "Not checked")."""
    if not rows:
        return rows
    found = findings(services, rows[0].batch_id)
    present = {code for f in found.values() for code in f.flags}
    options = [code for code in FLAG_CODES if code in present]
    if any(not f.checked for f in found.values()):
        options.append(NOT_CHECKED)
    if not options:
        return rows
    chosen = st.multiselect(
        "Flag",
        options,
        key="batch-filter-flag",
        placeholder="All",
        format_func=lambda code: "Not checked" if code == NOT_CHECKED else label(code),
    )
    if not chosen:
        return rows
    wanted = set(chosen)

    def keep(row: JobRecord) -> bool:
        f = found.get(row.id)
        if f is None:
            return False
        return (NOT_CHECKED in wanted and not f.checked) or bool(wanted & set(f.flags))

    return [row for row in rows if keep(row)]


def suspect_sort(rows: list[JobRecord], services: Services) -> list[JobRecord]:
    """The gallery's sort "Most suspect first"."""
    if not rows:
        return rows
    return most_suspect_first(rows, findings(services, rows[0].batch_id))


def checks_pending(services: Services, batch_id: int) -> bool:
    """Whether the background checker is likely still on some of the batch's results (stored
    in the last few minutes, not checked yet): the page keeps looking until it is done."""
    return services.ledger.waiting_for_checks(batch_id, utcnow() - RECENT) > 0


def rescore_offer(services: Services, batch_id: int) -> None:
    """For a finished batch whose results were scored by an older version of the checks (or
    never: run before there were checks), say so and offer to score them again. Results that
    finished in the last few minutes are left to the background checker."""
    found = findings(services, batch_id)
    recent = utcnow() - RECENT
    stale = [
        row
        for row in services.ledger.rows_to_triage(batch_id, older_than=CHECKS_VERSION)
        if row.id in found or (row.finished_at is not None and row.finished_at < recent)
    ]
    if not stale:
        return
    with st.container(horizontal=True, vertical_alignment="center", key="triage-rescore"):
        st.caption(
            f"{len(stale)} result(s) of this batch were not scored by the current quality checks "
            f"(version {CHECKS_VERSION})."
        )
        if st.button("Score again", key="triage-rescore-button", icon=":material/refresh:"):
            from mirrago.triage.worker import rescore

            with st.spinner(f"Checking {len(stale)} result(s)…"):
                rescore(services.ledger, batch_id, base_url=services.backend.base_url)
            forget_findings()
            st.rerun(scope="app")
