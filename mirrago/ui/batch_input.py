"""The Batch page's input: the table of pairs (typed, pasted, imported, sample rows, Combine),
checked as it is edited, Check links, and the Run button with its cost.

The table lives in session state as plain rows; the editor shows it with a preview of both
images and each row's check. An edit is merged into the rows on the run it arrives in, and the
editor's key is bumped so the previews and checks redraw.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime

import pandas as pd
import streamlit as st

from mirrago import batchtable, linkcheck, samples
from mirrago.batchprogress import CREDITS_PER_TRYON, PAGE_SOURCE
from mirrago.batchtable import COLUMNS, RowCheck, Table
from mirrago.errors import ImageError
from mirrago.images import prepare_image
from mirrago.services import Services
from mirrago.ui import identity
from mirrago.ui.batch_images import input_thumb
from mirrago.ui.picker import save_input

TABLE_KEY = "batch-table"
VERSION_KEY = "batch-editor-version"
LINKS_KEY = "batch-links"
NOTES_KEY = "batch-notes"
IMPORTED_KEY = "batch-imported"
UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp"]


def table() -> Table:
    return st.session_state.setdefault(TABLE_KEY, [])


def _set_table(rows: Table, *notes: str) -> None:
    st.session_state[TABLE_KEY] = [r for r in rows if not batchtable.is_blank(r)]
    st.session_state[VERSION_KEY] = st.session_state.get(VERSION_KEY, 0) + 1
    st.session_state[NOTES_KEY] = list(notes)


def add_rows(rows: Table, *notes: str) -> None:
    _set_table(table() + rows, *notes)


def _editor_key() -> str:
    return f"batch-editor-{st.session_state.get(VERSION_KEY, 0)}"


def _merge_edits() -> None:
    """Apply the editor's edits, additions and deletions to the rows."""
    edits = st.session_state.get(_editor_key()) or {}
    rows = [dict(r) for r in table()]
    for position, change in (edits.get("edited_rows") or {}).items():
        if int(position) < len(rows):
            rows[int(position)] = batchtable.clean_row({**rows[int(position)], **change})
    rows += [batchtable.clean_row(added) for added in edits.get("added_rows") or []]
    deleted = {int(p) for p in edits.get("deleted_rows") or []}
    _set_table([row for index, row in enumerate(rows) if index not in deleted])


def checks(services: Services) -> list[RowCheck]:
    """The rows' checks, redone only when the rows or the link findings changed."""
    links = st.session_state.get(LINKS_KEY) or {}
    stamp = (st.session_state.get(VERSION_KEY, 0), id(table()), len(links))
    cached = st.session_state.get("batch-checks")
    if cached is None or cached[0] != stamp:
        cached = (stamp, batchtable.check_table(table(), services.settings.data_dir, links))
        st.session_state["batch-checks"] = cached
    return cached[1]


def _frame(services: Services, checked: list[RowCheck]) -> pd.DataFrame:
    backend = services.backend
    rows = table()
    frame = pd.DataFrame(
        {
            "check": ["✓ ready" if c.job else f"⚠ {c.problem}" for c in checked],
            "target_image_url": [r["target_image_url"] for r in rows],
            "person": [input_thumb(r["target_image_url"], backend) for r in rows],
            "garment_image_url": [r["garment_image_url"] for r in rows],
            "garment": [input_thumb(r["garment_image_url"], backend) for r in rows],
            "background": [r["background"] for r in rows],
            "username": [r["username"] for r in rows],
        },
        columns=["check", "target_image_url", "person", "garment_image_url", "garment",
                 "background", "username"],
    )
    # Typed, so an empty table is editable as text (an empty column would be float).
    text = ["check", *COLUMNS]
    frame.index = range(1, len(frame) + 1)  # row numbers as the checks name them
    return frame.astype({name: "string" for name in text})


def table_editor(services: Services, checked: list[RowCheck]) -> None:
    config = {
        "check": st.column_config.TextColumn("Check", width="medium", disabled=True,
                                             help="Why a row will be skipped; ✓ when it is fine"),
        "target_image_url": st.column_config.TextColumn(
            "target_image_url", width="medium", help="The person photo: an http(s) link or a "
            "stored file"),
        "person": st.column_config.ImageColumn("Person", width="small"),
        "garment_image_url": st.column_config.TextColumn(
            "garment_image_url", width="medium", help="The garment photo: an http(s) link or a "
            "stored file"),
        "garment": st.column_config.ImageColumn("Garment", width="small"),
        "background": st.column_config.TextColumn(
            "background", help="original (or empty), white or studio"),
        "username": st.column_config.TextColumn("username", help="A reference, shown on cards"),
    }
    st.data_editor(
        _frame(services, checked),
        key=_editor_key(),
        num_rows="dynamic",
        column_config=config,
        disabled=["check", "person", "garment"],
        hide_index=False,
        width="stretch",
        height=min(420, 38 + 35 * (len(checked) + 1)),
        placeholder="",
    )
    edits = st.session_state.get(_editor_key()) or {}
    if any(edits.get(part) for part in ("edited_rows", "added_rows", "deleted_rows")):
        _merge_edits()  # then redraw with the rows' new previews and checks
        st.rerun()


def import_panel(services: Services) -> None:
    upload = st.file_uploader(
        "Import CSV or Excel",
        type=["csv", "xlsx"],
        key="batch-import",
        help="Columns target_image_url, garment_image_url, optional background, username "
        "(the same file as `mirrago batch`). A file with just two columns of links works too.",
    )
    if upload is None:
        return
    data = upload.getvalue()
    signature = hashlib.sha256(data).hexdigest() + upload.name
    if st.session_state.get(IMPORTED_KEY) == signature:
        return
    st.session_state[IMPORTED_KEY] = signature
    imported = batchtable.import_file(upload.name, data, services.settings.data_dir)
    if not imported.rows:
        first = imported.problems[0] if imported.problems else "the file has no rows"
        st.session_state[NOTES_KEY] = [f"Nothing imported from {upload.name}: {first}"]
        return
    count = len(imported.rows)
    add_rows(imported.rows, f"Imported {count} row{'s' * (count != 1)} from {upload.name}.",
             *imported.notes)
    st.rerun()


def _add_samples(services: Services) -> None:
    if not services.backend.is_sandbox:
        st.session_state[NOTES_KEY] = [
            "Sample rows need public image links: the samples live on this machine, which a "
            "live endpoint cannot reach. Paste or import your own links instead."
        ]
        return
    rows = batchtable.sample_rows(services.backend.base_url, table())
    add_rows(rows, f"Added {len(rows)} sample rows." if rows else "Every sample pair is "
             "already in the table.")


def _stored(files: list, role: str, services: Services) -> list[str]:
    paths = []
    for upload in files or []:
        try:
            prepared = prepare_image(upload.getvalue(), role=role)
        except ImageError as error:
            st.session_state.setdefault(NOTES_KEY, []).append(f"{upload.name}: {error}")
            continue
        paths.append(str(save_input(prepared, services.settings.data_dir)))
    return paths


def _side_choice(role: str, services: Services) -> list[str]:
    chosen: list[str] = []
    if services.backend.is_sandbox:
        choices = {s.title: s for s in (samples.persons() if role == "person"
                                        else samples.garments())}
        picked = st.multiselect(f"Sample {role}s", list(choices), key=f"batch-combine-{role}")
        chosen += [batchtable.sample_url(services.backend.base_url, choices[t]) for t in picked]
    pasted = st.text_area(f"{role.capitalize()} links, one a line",
                          key=f"batch-combine-{role}-urls", height=90)
    chosen += batchtable.split_lines(pasted)
    files = st.file_uploader(f"{role.capitalize()} photos", type=UPLOAD_TYPES,
                             accept_multiple_files=True, key=f"batch-combine-{role}-files")
    return chosen + _stored(files, role, services)


def combine_panel(services: Services) -> None:
    """Every chosen person × every chosen garment becomes a row."""
    person_col, garment_col = st.columns(2)
    with person_col:
        persons = _side_choice("person", services)
    with garment_col:
        garments = _side_choice("garment", services)
    rows = batchtable.combine(persons, garments)
    label = f"Add {len(persons)} × {len(garments)} = {len(rows)} rows"
    if st.button(label, key="batch-combine-add", disabled=not rows, icon=":material/grid_on:"):
        add_rows(rows, f"Added {len(rows)} rows ({len(persons)} persons × {len(garments)} "
                 "garments).")
        st.rerun()


def _check_links() -> None:
    urls = batchtable.links_to_check(table())
    with st.spinner(f"Checking {len(urls)} links…"):
        found = linkcheck.check_links(urls)
    st.session_state[LINKS_KEY] = {**(st.session_state.get(LINKS_KEY) or {}), **found}
    bad = sum(1 for problem in found.values() if problem)
    st.session_state[NOTES_KEY] = [f"Checked {len(urls)} links: {bad} unreachable or not an "
                                   "image." if bad else f"Checked {len(urls)} links: all fine."]


def toolbar(services: Services) -> None:
    with st.container(horizontal=True, key="batch-toolbar"):
        if st.button("Add sample rows", icon=":material/add_photo_alternate:",
                     key="batch-add-samples"):
            _add_samples(services)
            st.rerun()
        with st.popover("Combine", icon=":material/grid_on:", key="batch-combine"):
            combine_panel(services)
        if st.button("Check links", icon=":material/link:", key="batch-check-links",
                     disabled=not batchtable.links_to_check(table()),
                     help="Fetch each link once to find unreachable or non-image ones, before "
                     "any credit is spent."):
            _check_links()
            st.rerun()
        if st.button("Clear table", icon=":material/delete_sweep:", key="batch-clear",
                     disabled=not table()):
            _set_table([])
            st.session_state.pop(LINKS_KEY, None)
            st.rerun()


def notes() -> None:
    for note in st.session_state.get(NOTES_KEY) or []:
        st.text(note)


def skipped_rows(checked: list[RowCheck]) -> None:
    bad = [c for c in checked if c.job is None]
    if not bad:
        return
    with st.expander(f"{len(bad)} row{'s' * (len(bad) != 1)} will be skipped",
                     icon=":material/warning:", expanded=len(bad) <= 5):
        st.text("\n".join(f"Row {c.number}: {c.problem}" for c in bad))


def latest_balance(services: Services) -> int | None:
    readings = services.ledger.credit_readings(limit=1)
    return readings[-1].credits_before if readings else None


def run_button(services: Services, checked: list[RowCheck], on_run) -> None:
    valid = [c.job for c in checked if c.job is not None]
    cost = len(valid) * CREDITS_PER_TRYON
    balance = latest_balance(services)
    name = st.text_input("Batch name", key="batch-name",
                         placeholder=datetime.now().strftime("Batch %d %b %H:%M"))
    skipped = len(checked) - len(valid)
    parts = [f"{len(valid)} row{'s' * (len(valid) != 1)} to run"]
    if skipped:
        parts.append(f"{skipped} invalid row{'s' * (skipped != 1)} skipped, never sent")
    parts.append("balance unknown until the first job" if balance is None
                 else f"latest known balance {balance:,} credits")
    st.caption(" · ".join(parts))
    if balance is not None and cost > balance:
        st.warning(f"This batch needs {cost:,} credits but the latest known balance is "
                   f"{balance:,}: rows beyond the balance will fail.", icon=":material/warning:")
    st.button(f"Run batch — {cost:,} credit{'s' * (cost != 1)}", type="primary",
              icon=":material/play_arrow:", key="batch-run", disabled=not valid,
              on_click=_run, args=(services, valid, name, on_run))


def _run(services: Services, inputs: list, name: str, on_run) -> None:
    title = name.strip() or datetime.now().strftime("Batch %d %b %H:%M")
    owner = identity.current_owner()  # with sign-in, every row records who started it
    inputs = [replace(job, owner=owner) for job in inputs]
    enqueued = services.runner.enqueue(inputs, name=title, source=PAGE_SOURCE)
    # The batch record, or (engine hardening, issue 7) its rows: either names the batch.
    batch_id = enqueued[0].batch_id if isinstance(enqueued, list) else enqueued.id
    _set_table([], f"Started {title!r}: {len(inputs)} rows.")
    st.session_state.pop(LINKS_KEY, None)
    st.session_state["batch-name"] = ""
    on_run(batch_id)


def input_section(services: Services, on_run) -> None:
    """The whole input side: toolbar, import, table, skipped rows, run."""
    toolbar(services)
    import_panel(services)
    notes()
    checked = checks(services)
    table_editor(services, checked)
    skipped_rows(checked)
    run_button(services, checked, on_run)
