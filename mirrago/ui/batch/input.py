"""The Batch page's input: the table of pairs (typed, pasted, imported, sample rows, Combine),
the photos its rows name, checked as it is edited, Check links, and the Run button with its cost.

The table lives in session state as plain rows; the editor shows it, a page of rows at a time,
with each row's check and (for small tables) a preview of both images. An edit is merged into
the rows on the run it arrives in, and the editor's key is bumped so the previews and checks
redraw. Files reach a table only as uploads (`batchtable.Uploads`): a path in a cell is never
read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import pandas as pd
import streamlit as st

from mirrago import batchtable, linkcheck, samples
from mirrago.batchfile import CLI_MAX_ROWS
from mirrago.batchtable import COLUMNS, PAGE_MAX_ROWS, PHOTO_SUFFIXES, RowCheck, Table, Uploads
from mirrago.datadir import save_input
from mirrago.errors import ImageError
from mirrago.images import prepare_image
from mirrago.ledger import Origin
from mirrago.models import CREDITS_PER_TRY_ON
from mirrago.services import Services
from mirrago.ui import identity
from mirrago.ui.batch.images import table_thumb
from mirrago.ui.plain import md_text
from mirrago.usage import latest_balance as balance_now

TABLE_KEY = "batch-table"
VERSION_KEY = "batch-editor-version"
LINKS_KEY = "batch-links"
MAX_LINKS_PER_CHECK = 200  # distinct links one Check links click fetches
NOTES_KEY = "batch-notes"
IMPORTED_KEY = "batch-imported"
UPLOADS_KEY = "batch-uploads"  # the session's Uploads: the only files a table may name
PHOTOS_SEEN_KEY = "batch-photos-seen"
CHECKS_KEY = "batch-checks"
UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp"]
PHOTO_TYPES = [suffix.lstrip(".") for suffix in PHOTO_SUFFIXES]
PHOTOS_UPLOAD_MB = 100  # one ZIP of photos (JPEGs hardly compress: ~30 phone photos)
TABLE_PAGE_ROWS = 500  # rows the editor shows at a time
PREVIEW_MAX_ROWS = 300  # previews only in tables up to this size (each row carries two)
SKIPPED_LISTED = 100  # skipped rows listed by number; the rest are counted


@dataclass(frozen=True)
class Note:
    """A message above the table about what the last action did, shown in its colour so an
    import that failed cannot be missed."""

    text: str
    level: str = "info"  # success, info, warning or error


_NOTE_STYLE = {
    "success": (st.success, ":material/check_circle:"),
    "info": (st.info, ":material/info:"),
    "warning": (st.warning, ":material/warning:"),
    "error": (st.error, ":material/error:"),
}


def _say(*notes: Note | str) -> None:
    st.session_state[NOTES_KEY] = [n if isinstance(n, Note) else Note(n) for n in notes]


def table() -> Table:
    return st.session_state.setdefault(TABLE_KEY, [])


def uploads() -> Uploads:
    return st.session_state.get(UPLOADS_KEY) or Uploads()


def _set_table(rows: Table, *notes: Note | str) -> None:
    st.session_state[TABLE_KEY] = [r for r in rows if not batchtable.is_blank(r)]
    st.session_state[VERSION_KEY] = st.session_state.get(VERSION_KEY, 0) + 1
    _say(*notes)


def add_rows(rows: Table, *notes: Note | str) -> bool:
    """Add rows to the table, unless it would then hold more than the page takes."""
    total = len(table()) + len(rows)
    if total > PAGE_MAX_ROWS:
        _say(
            Note(
                f"Not added: the table would have {total:,} rows, and the page takes at most "
                f"{PAGE_MAX_ROWS:,}. Clear it first, or run larger files from a terminal with "
                f"mirrago batch FILE (up to {CLI_MAX_ROWS:,} rows there).",
                "error",
            )
        )
        return False
    _set_table(table() + rows, *notes)
    return True


def _editor_key(page: int) -> str:
    return f"batch-editor-{st.session_state.get(VERSION_KEY, 0)}-{page}"


def _merge_edits(edits: dict, start: int) -> None:
    """Apply the editor's edits, additions and deletions (positions on the page shown, which
    starts at row `start`) to the rows."""
    rows = [dict(r) for r in table()]
    for position, change in (edits.get("edited_rows") or {}).items():
        index = start + int(position)
        if index < len(rows):
            rows[index] = batchtable.clean_row({**rows[index], **change})
    rows += [batchtable.clean_row(added) for added in edits.get("added_rows") or []]
    deleted = {start + int(p) for p in edits.get("deleted_rows") or []}
    _set_table([row for index, row in enumerate(rows) if index not in deleted])


def checks(services: Services) -> list[RowCheck]:
    """The rows' checks, redone only when the rows, the link findings or the uploads
    changed (a rerun of a 10,000-row table does not check it again)."""
    links = st.session_state.get(LINKS_KEY) or {}
    rows = table()
    stamp = (
        hash(tuple(tuple(row.values()) for row in rows)),
        hash(frozenset(links.items())),
        uploads(),
    )
    cached = st.session_state.get(CHECKS_KEY)
    if cached is None or cached[0] != stamp:
        cached = (stamp, batchtable.check_table(rows, uploads(), links))
        st.session_state[CHECKS_KEY] = cached
    return cached[1]


def _frame(
    services: Services, checked: list[RowCheck], start: int, stop: int, previews: bool
) -> pd.DataFrame:
    backend, files = services.backend, uploads()
    rows = table()[start:stop]
    columns: dict[str, list] = {
        "check": ["✓ ready" if c.job else f"⚠ {c.problem}" for c in checked[start:stop]],
        "target_image_url": [r["target_image_url"] for r in rows],
        "garment_image_url": [r["garment_image_url"] for r in rows],
        "background": [r["background"] for r in rows],
        "username": [r["username"] for r in rows],
    }
    order = ["check", "target_image_url", "garment_image_url", "background", "username"]
    if previews:
        columns["person"] = [table_thumb(r["target_image_url"], backend, files) for r in rows]
        columns["garment"] = [table_thumb(r["garment_image_url"], backend, files) for r in rows]
        order[2:2] = ["person"]
        order[4:4] = ["garment"]
    frame = pd.DataFrame(columns, columns=order)
    # Typed, so an empty table is editable as text (an empty column would be float).
    text = ["check", *COLUMNS]
    frame.index = range(start + 1, start + len(frame) + 1)  # row numbers as the checks name them
    return frame.astype({name: "string" for name in text})


def _table_page(count: int) -> tuple[int, int, int]:
    """The page of rows to show: (page number, its first row's index, the number of pages)."""
    pages = max(1, -(-count // TABLE_PAGE_ROWS))
    slot = st.empty()  # on every run, so the editor below keeps its place (and its state)
    if pages == 1:
        return 1, 0, 1
    key = "batch-table-page"
    if not 1 <= st.session_state.get(key, 1) <= pages:  # the table shrank meanwhile
        st.session_state[key] = pages
    with slot.container(horizontal=True, vertical_alignment="center", key="batch-table-pager"):
        number = st.pagination(pages, key=key)
        start = (number - 1) * TABLE_PAGE_ROWS
        st.caption(
            f"Rows {start + 1:,}–{min(start + TABLE_PAGE_ROWS, count):,} of {count:,}. "
            "New rows go on the last page."
        )
    return number, start, pages


def table_editor(services: Services, checked: list[RowCheck]) -> None:
    count = len(checked)
    number, start, pages = _table_page(count)
    stop = min(start + TABLE_PAGE_ROWS, count)
    previews = count <= PREVIEW_MAX_ROWS
    preview_help = "Uploaded photos and samples (links are not loaded here)"
    config = {
        "check": st.column_config.TextColumn(
            "Check",
            width="medium",
            disabled=True,
            help="Why a row will be skipped; ✓ when it is fine",
        ),
        "target_image_url": st.column_config.TextColumn(
            "target_image_url",
            width="medium",
            help="The person photo: an http(s) link or an uploaded photo's file name",
        ),
        "garment_image_url": st.column_config.TextColumn(
            "garment_image_url",
            width="medium",
            help="The garment photo: an http(s) link or an uploaded photo's file name",
        ),
        "background": st.column_config.TextColumn(
            "background", help="original (or empty), white or studio"
        ),
        "username": st.column_config.TextColumn("username", help="A reference, shown on cards"),
    }
    if previews:
        config["person"] = st.column_config.ImageColumn("Person", width="small", help=preview_help)
        config["garment"] = st.column_config.ImageColumn(
            "Garment", width="small", help=preview_help
        )
    key = _editor_key(number)
    st.data_editor(
        _frame(services, checked, start, stop, previews),
        key=key,
        num_rows="dynamic" if number == pages else "delete",  # new rows go at the end
        column_config=config,
        disabled=["check", "person", "garment"] if previews else ["check"],
        hide_index=False,
        width="stretch",
        height=min(420, 38 + 35 * (stop - start + 1)),
        placeholder="",
    )
    if not previews:
        st.caption(
            f"No previews in a table over {PREVIEW_MAX_ROWS} rows: the Check column "
            "says which rows are ready."
        )
    edits = st.session_state.get(key) or {}
    if any(edits.get(part) for part in ("edited_rows", "added_rows", "deleted_rows")):
        _merge_edits(edits, start)  # then redraw with the rows' new previews and checks
        st.rerun()


def import_panel(services: Services) -> None:
    """The table from a file, and the photos its rows name, side by side."""
    table_column, photos_column = st.columns(2, gap="medium")
    with photos_column:
        _import_photos(services)
    with table_column:
        _import_table()


def _import_table() -> None:
    upload = st.file_uploader(
        "Import CSV or Excel",
        type=["csv", "xlsx"],
        key="batch-import",
        help="Columns target_image_url, garment_image_url, optional background, username "
        "(the same file as `mirrago batch`). A file with just two columns of links works too. "
        f"At most {PAGE_MAX_ROWS:,} rows.",
    )
    if upload is None or st.session_state.get(IMPORTED_KEY) == upload.file_id:
        return
    st.session_state[IMPORTED_KEY] = upload.file_id
    imported = batchtable.import_file(upload.name, upload.getvalue())
    label = batchtable.shorten(upload.name)
    if not imported.rows:
        first = imported.problems[0] if imported.problems else "the file has no rows"
        _say(Note(f"Nothing imported from {label}: {first}", "error"))
        return
    count = len(imported.rows)
    done = Note(f"Imported {count:,} row{'s' * (count != 1)} from {label}.", "success")
    if add_rows(imported.rows, done, *imported.notes):
        st.rerun()


def _import_photos(services: Services) -> None:
    files = st.file_uploader(
        "Photos the table names",
        type=["zip", *PHOTO_TYPES],
        accept_multiple_files=True,
        key="batch-photos",
        max_upload_size=PHOTOS_UPLOAD_MB,
        help="A cell that names a photo (alice.jpg, or a full path ending in alice.jpg) uses "
        "the photo of that name uploaded here. Paths on this server are never read.",
    )
    seen = st.session_state.setdefault(PHOTOS_SEEN_KEY, set())
    new = [upload for upload in files or [] if upload.file_id not in seen]
    if new:
        data_dir = services.settings.data_dir
        with st.spinner(f"Storing the photos of {len(new)} file{'s' * (len(new) != 1)}…"):
            photos = batchtable.import_photos(
                ((upload.name, upload.getvalue()) for upload in new),
                save=lambda prepared: save_input(prepared, data_dir),
            )
        seen.update(upload.file_id for upload in new)
        st.session_state[UPLOADS_KEY] = uploads().with_photos(photos)
        _say(*(photos.notes or [Note("No photos found in the upload.", "warning")]))
    names = sorted(name for name, _ in uploads().names)
    listed = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    st.caption(
        f"Stored this session: {listed}. Cells that name them use them."
        if names
        else "Photos on your computer? Put them in a ZIP with the CSV's file names, or "
        "choose the photos themselves."
    )


def _add_samples(services: Services) -> None:
    if not services.backend.is_sandbox:
        _say(
            Note(
                "Sample rows need public image links: the samples live on this machine, which a "
                "live endpoint cannot reach. Paste or import your own links instead.",
                "warning",
            )
        )
        return
    rows = batchtable.sample_rows(services.backend.base_url, table())
    add_rows(
        rows,
        Note(f"Added {len(rows)} sample rows.", "success")
        if rows
        else "Every sample pair is already in the table.",
    )


def _stored(files: list, role: str, services: Services) -> list[str]:
    paths = []
    for upload in files or []:
        try:
            prepared = prepare_image(upload.getvalue(), role=role)
        except ImageError as error:
            st.session_state.setdefault(NOTES_KEY, []).append(
                Note(f"{batchtable.shorten(upload.name)}: {error}", "error")
            )
            continue
        paths.append(str(save_input(prepared, services.settings.data_dir)))
    if paths:  # a stored upload is the one kind of file a table cell may name
        st.session_state[UPLOADS_KEY] = uploads().with_paths(paths)
    return paths


def _side_choice(role: str, services: Services) -> list[str]:
    chosen: list[str] = []
    if services.backend.is_sandbox:
        choices = {
            s.title: s for s in (samples.persons() if role == "person" else samples.garments())
        }
        picked = st.multiselect(f"Sample {role}s", list(choices), key=f"batch-combine-{role}")
        chosen += [batchtable.sample_url(services.backend.base_url, choices[t]) for t in picked]
    pasted = st.text_area(
        f"{role.capitalize()} links, one a line", key=f"batch-combine-{role}-urls", height=90
    )
    chosen += batchtable.split_lines(pasted)
    files = st.file_uploader(
        f"{role.capitalize()} photos",
        type=UPLOAD_TYPES,
        accept_multiple_files=True,
        key=f"batch-combine-{role}-files",
    )
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
        add_rows(
            rows,
            Note(
                f"Added {len(rows):,} rows ({len(persons)} persons × {len(garments)} garments).",
                "success",
            ),
        )
        st.rerun()


def _check_links() -> None:
    # A click checks a bounded number of links (each may take its timeout): a pasted table of
    # thousands must not hold the server for an hour, nor make it fetch from thousands of hosts.
    known = st.session_state.get(LINKS_KEY) or {}
    waiting = [url for url in batchtable.links_to_check(table()) if url not in known]
    urls = waiting[:MAX_LINKS_PER_CHECK]
    with st.spinner(f"Checking {len(urls)} links…"):
        found = linkcheck.check_links(urls)
    st.session_state[LINKS_KEY] = {**known, **found}
    bad = sum(1 for problem in found.values() if problem)
    more = len(waiting) - len(urls)
    rest = f" {more:,} more to check: press Check links again." if more else ""
    _say(
        Note(
            f"Checked {len(urls)} links: {bad} unreachable or not an image (the Check "
            f"column says why).{rest}",
            "warning",
        )
        if bad
        else Note(f"Checked {len(urls)} links: all fine.{rest}", "info" if more else "success")
    )


def toolbar(services: Services) -> None:
    with st.container(horizontal=True, key="batch-toolbar"):
        if st.button(
            "Add sample rows", icon=":material/add_photo_alternate:", key="batch-add-samples"
        ):
            _add_samples(services)
            st.rerun()
        with st.popover("Combine", icon=":material/grid_on:", key="batch-combine"):
            combine_panel(services)
        if st.button(
            "Check links",
            icon=":material/link:",
            key="batch-check-links",
            disabled=not batchtable.links_to_check(table()),
            help="Fetch each link once to find unreachable or non-image ones, before "
            "any credit is spent.",
        ):
            _check_links()
            st.rerun()
        if st.button(
            "Clear table", icon=":material/delete_sweep:", key="batch-clear", disabled=not table()
        ):
            _set_table([])
            st.session_state.pop(LINKS_KEY, None)
            st.rerun()


def notes() -> None:
    for note in st.session_state.get(NOTES_KEY) or []:
        note = note if isinstance(note, Note) else Note(str(note))
        show, icon = _NOTE_STYLE.get(note.level, _NOTE_STYLE["info"])
        show(md_text(note.text), icon=icon)


def skipped_rows(checked: list[RowCheck]) -> None:
    bad = [c for c in checked if c.job is None]
    if not bad:
        return
    with st.expander(
        f"{len(bad):,} row{'s' * (len(bad) != 1)} will be skipped",
        icon=":material/warning:",
        expanded=len(bad) <= 5,
    ):
        listed = [f"Row {c.number:,}: {c.problem}" for c in bad[:SKIPPED_LISTED]]
        if len(bad) > SKIPPED_LISTED:
            listed.append(
                f"… and {len(bad) - SKIPPED_LISTED:,} more (the Check column says why for each)."
            )
        st.text("\n".join(listed))


def latest_balance(services: Services) -> int | None:
    """The balance now, the same figure as the sidebar's and the Usage page's."""
    found = balance_now(services.ledger)
    return None if found is None else found.credits


def run_button(services: Services, checked: list[RowCheck], on_run) -> None:
    valid = [c.job for c in checked if c.job is not None]
    cost = len(valid) * CREDITS_PER_TRY_ON
    balance = latest_balance(services)
    name = st.text_input(
        "Batch name", key="batch-name", placeholder=datetime.now().strftime("Batch %d %b %H:%M")
    )
    skipped = len(checked) - len(valid)
    parts = [f"{len(valid):,} row{'s' * (len(valid) != 1)} to run"]
    if skipped:
        parts.append(f"{skipped:,} invalid row{'s' * (skipped != 1)} skipped, never sent")
    parts.append(
        "balance unknown until the first job"
        if balance is None
        else f"latest known balance {balance:,} credits"
    )
    st.caption(" · ".join(parts))
    if balance is not None and cost > balance:
        st.warning(
            f"This batch needs {cost:,} credits but the latest known balance is "
            f"{balance:,}: rows beyond the balance will fail.",
            icon=":material/warning:",
        )
    st.button(
        f"Run batch — {cost:,} credit{'s' * (cost != 1)}",
        type="primary",
        icon=":material/play_arrow:",
        key="batch-run",
        disabled=not valid,
        on_click=_run,
        args=(services, valid, name, on_run),
    )


def _run(services: Services, inputs: list, name: str, on_run) -> None:
    title = name.strip() or datetime.now().strftime("Batch %d %b %H:%M")
    owner = identity.current_owner()  # with sign-in, every row records who started it
    inputs = [replace(job, owner=owner) for job in inputs]
    enqueued = services.runner.enqueue(inputs, name=title, source=Origin.BATCH_PAGE)
    # The batch record, or its rows (the engine records the batch on both): either names it.
    batch_id = enqueued[0].batch_id if isinstance(enqueued, list) else enqueued.id
    _set_table([], Note(f"Started {title!r}: {len(inputs)} rows.", "success"))
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
