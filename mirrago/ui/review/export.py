"""The Export menu: Results CSV, Images ZIP and HTML report of a batch, each built only when
its button is clicked (`st.download_button(data=callable)`), never on a rerun."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from mirrago.export import read_and_remove
from mirrago.ledger import Ledger
from mirrago.review import exports, report


def _results(ledger: Ledger, batch_id: int) -> Callable[[], bytes]:
    return lambda: exports.results_csv(ledger, batch_id)


def _images(ledger: Ledger, batch_id: int) -> Callable[[], bytes]:
    return lambda: read_and_remove(exports.zip_file(ledger, batch_id))


def _report(ledger: Ledger, batch_id: int, who: str | None) -> Callable[[], bytes]:
    return lambda: read_and_remove(report.html_file(ledger, batch_id, generated_by=who))


def export_menu(
    ledger: Ledger, batch_id: int, *, reviewer: str | None = None, key: str = "review-export"
) -> None:
    """A compact Export popover with the three downloads."""
    batch = ledger.batch(batch_id)
    if batch is None:
        return
    with st.popover("Export", icon=":material/download:", key=key):
        st.download_button(
            "Results CSV",
            data=_results(ledger, batch_id),
            file_name=exports.default_name(batch, "results"),
            mime="text/csv",
            icon=":material/table:",
            key=f"{key}-csv",
            on_click="ignore",  # nothing on the page changes: no rerun racing the download
            help="Every row in input order with its verdict, reasons, note and reviewer",
        )
        st.download_button(
            "Images ZIP",
            data=_images(ledger, batch_id),
            file_name=exports.default_name(batch, "images"),
            mime="application/zip",
            icon=":material/folder_zip:",
            key=f"{key}-zip",
            on_click="ignore",
            help="The result images named row<NNNN>-<job id>, with manifest.csv",
        )
        st.download_button(
            "HTML report",
            data=_report(ledger, batch_id, reviewer),
            file_name=exports.default_name(batch, "report"),
            mime="text/html",
            icon=":material/description:",
            key=f"{key}-html",
            on_click="ignore",
            help="One file with every image embedded: opens offline, can be emailed",
        )
