"""A host for the review widgets in tests (until the Batch page hosts them): the review
workspace of one batch of the ledger at MIRRAGO_REVIEW_LEDGER (`?batch=<id>`, default the
newest)."""

from __future__ import annotations

import os

import streamlit as st

from mirrago.ledger import Ledger
from mirrago.ui.review.workspace import review_workspace


@st.cache_resource
def _ledger(url: str) -> Ledger:
    return Ledger(url)


st.set_page_config(page_title="Review", layout="wide")
ledger = _ledger(os.environ["MIRRAGO_REVIEW_LEDGER"])
wanted = st.query_params.get("batch")
batch = ledger.batch(int(wanted)) if wanted and wanted.isdigit() else None
batch = batch or next(iter(ledger.batches(limit=1)), None)
if batch is None:
    st.info("No batch yet.")
else:
    review_workspace(ledger, batch.id)
