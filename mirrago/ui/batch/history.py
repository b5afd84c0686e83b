"""Past batches on the Batch page (page and command-line ones): name, date, size, success
(completed jobs), review pass (results given Pass), state; open, rename, and delete (with its
stored inputs and results, after a confirmation). The two rates are named as on the Usage page."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from mirrago import batchprogress
from mirrago.batchprogress import BatchSummary
from mirrago.services import Services
from mirrago.ui import identity
from mirrago.ui.batch.run import STATE_BADGES
from mirrago.ui.plain import md_text

NOTE_KEY = "batch-history-note"


def _percent(part: int, whole: int) -> int | None:
    return round(100 * part / whole) if whole else None


def _frame(
    listed: list[BatchSummary],
    owners: bool = False,
    tallies: dict[int, tuple[int, int]] | None = None,
) -> pd.DataFrame:
    tallies = tallies or {}
    frame = pd.DataFrame(
        {
            "id": [s.batch.id for s in listed],
            "name": [s.batch.name for s in listed],
            "started": [s.batch.created_at.astimezone().strftime("%Y-%m-%d %H:%M") for s in listed],
            "size": [s.size for s in listed],
            "success": [None if s.pass_rate is None else round(100 * s.pass_rate) for s in listed],
            "review pass": [_percent(*tallies.get(s.batch.id, (0, 0))) for s in listed],
            "state": [STATE_BADGES[s.state][0] for s in listed],
            "from": [s.origin for s in listed],
        }
    )
    if owners:  # sign-in on: batches are shared with the team, with whose each is
        frame.insert(2, "by", [s.owner or "—" for s in listed])
    return frame


def history(services: Services, open_batch: Callable[[int], None]) -> None:
    listed = batchprogress.summaries(services.ledger, limit=200)
    note = st.session_state.pop(NOTE_KEY, None)
    if note:
        st.success(md_text(note), icon=":material/check:")
    if not listed:
        st.caption(
            "No batches yet: add rows under New batch and run them, or run "
            "`mirrago batch INPUT.csv` from a shell."
        )
        return
    st.dataframe(
        _frame(
            listed,
            identity.sign_in_configured(),
            services.ledger.review_tallies([s.batch.id for s in listed]),
        ),
        key="batch-history-table",
        hide_index=True,
        width="stretch",
        column_config={
            "id": st.column_config.NumberColumn("Batch", format="%d", width="small"),
            "name": st.column_config.TextColumn("Name", width="large"),
            "by": st.column_config.TextColumn("Started by"),
            "started": "Started",
            "size": st.column_config.NumberColumn("Rows", format="%d"),
            "state": "State",
            "from": "Started from",
            "success": st.column_config.ProgressColumn(
                "Success",
                format="%d%%",
                min_value=0,
                max_value=100,
                help="Jobs completed, of those that ended",
            ),
            "review pass": st.column_config.NumberColumn(
                "Review pass", format="%d%%", help="Reviewed results given Pass"
            ),
        },
    )
    by_id = {s.batch.id: s for s in listed}
    chosen = st.selectbox(
        "Batch to open, rename or delete",
        list(by_id),
        key="batch-history-pick",
        format_func=lambda batch_id: f"{batch_id} · {by_id[batch_id].batch.name}",
        index=None,
        placeholder="Choose a batch",
    )
    if chosen is not None and chosen in by_id:
        _actions(services, by_id[chosen], open_batch)


def _actions(services: Services, summary: BatchSummary, open_batch: Callable[[int], None]) -> None:
    batch = summary.batch
    with st.container(horizontal=True, vertical_alignment="bottom", key="batch-history-actions"):
        # A callback: it switches the page's view before the view control is drawn.
        st.button(
            "Open",
            type="primary",
            icon=":material/open_in_new:",
            key="batch-history-open",
            on_click=open_batch,
            args=(batch.id,),
        )
        name = st.text_input("Name", value=batch.name, key=f"batch-rename-{batch.id}")
        if st.button(
            "Rename",
            key="batch-history-rename",
            icon=":material/edit:",
            disabled=not name.strip() or name.strip() == batch.name,
        ):
            services.ledger.rename_batch(batch.id, name.strip())
            st.session_state[NOTE_KEY] = f"Renamed to {name.strip()}"
            st.rerun()
        with st.popover("Delete", icon=":material/delete:", key="batch-history-delete"):
            st.markdown(
                f"Delete **{md_text(batch.name)}** ({summary.size:,} rows) and its "
                "stored inputs and results? This cannot be undone."
            )
            if st.button("Yes, delete it", type="primary", key="batch-history-confirm"):
                removed = batchprogress.delete_batch(
                    services.ledger, services.settings.data_dir, batch.id
                )
                if removed is None:
                    st.error(
                        "Some rows are still in progress: pause the batch and wait for "
                        "them, then delete it."
                    )
                    return
                st.session_state[NOTE_KEY] = (
                    f"Deleted {batch.name} and {removed} stored file{'s' * (removed != 1)}"
                )
                st.rerun()
