"""The person × garment matrix: persons as rows, garments as columns, each cell the result's
thumbnail framed in its verdict's colour, the review pass rate at the end of every row and column. A
click on a cell's button opens that result (the caller decides how: `on_open(row_id)`)."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import streamlit as st
from PIL import Image, ImageDraw

from mirrago import review
from mirrago.datadir import file_version
from mirrago.ledger import JobRecord
from mirrago.ui.plain import md_text

CELL = 132  # px, square
PICTURES_UP_TO = 150  # cells; larger matrices show coloured tiles only (thumbnails cost memory)
COLOURS = {review.PASS: (31, 157, 85), review.FAIL: (214, 69, 69), None: (190, 196, 204)}


@st.cache_data(max_entries=512, show_spinner=False)
def framed_cell(path: str | None, verdict: str | None, mtime: float = 0.0) -> bytes:
    """A small square JPEG: the thumbnail (or a plain tile) inside a frame of the verdict's
    colour. `mtime` keys the cache to the file's version."""
    colour = COLOURS.get(verdict, COLOURS[None])
    canvas = Image.new("RGB", (CELL, CELL), colour)
    inner = CELL - 16
    picture = None
    if path:
        try:
            with Image.open(path) as opened:
                picture = opened.convert("RGB")
                picture.thumbnail((inner, inner))
        except OSError:
            picture = None
    if picture is None:
        picture = Image.new("RGB", (inner, inner), (245, 246, 248))
        ImageDraw.Draw(picture).line((0, 0, inner, inner), fill=(220, 223, 228), width=2)
    backdrop = Image.new("RGB", (inner, inner), (245, 246, 248))
    backdrop.paste(picture, ((inner - picture.width) // 2, (inner - picture.height) // 2))
    canvas.paste(backdrop, (8, 8))
    buffer = io.BytesIO()
    canvas.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def _cell_image(job: JobRecord, pictures: bool) -> bytes:
    verdict = job.review_verdict if job.review_verdict in review.VERDICTS else None
    path = job.thumbnail_path if pictures and review.reviewable(job) else None
    mtime = file_version(path)
    return framed_cell(path if mtime is not None else None, verdict, mtime or 0.0)


def _rate(rate: review.Rate) -> str:
    if not rate.reviewed:
        return "–"
    return f"{review.percent(rate.rate)} ({rate.passed}/{rate.reviewed})"


def matrix_view(
    jobs: Sequence[JobRecord], on_open: Callable[[int], None], key: str = "review-matrix"
) -> None:
    """Draw the matrix of `jobs` (or say why there is none)."""
    if not review.has_matrix(jobs):
        st.info("The matrix needs a batch with several persons and several garments.")
        return
    matrix = review.build_matrix(jobs)
    pictures = len(matrix.persons) * len(matrix.garments) <= PICTURES_UP_TO
    widths = [1.2] + [1.0] * len(matrix.garments) + [0.9]
    with st.container(key=key):
        header = st.columns(widths, vertical_alignment="bottom")
        header[0].caption("Person \\ garment")
        for column, garment in zip(header[1:-1], matrix.garments, strict=True):
            column.caption(md_text(review.input_label(garment)), help=md_text(garment))
        header[-1].caption("Review pass", help="Reviewed results given Pass")
        for person in matrix.persons:
            cells = st.columns(widths, vertical_alignment="center")
            cells[0].text(review.input_label(person), help=md_text(person))
            for column, garment in zip(cells[1:-1], matrix.garments, strict=True):
                job = matrix.cell(person, garment)
                if job is None:
                    continue
                with column:
                    st.image(_cell_image(job, pictures), width=CELL)
                    st.button(
                        f"Row {job.row_index + 1}",
                        key=f"{key}-open-{job.id}",
                        type="tertiary",
                        on_click=on_open,
                        args=(job.id,),
                        help=f"Open row {job.row_index + 1}",
                    )
            cells[-1].text(_rate(matrix.person_rate(person)))
        footer = st.columns(widths)
        footer[0].caption("Review pass")
        for column, garment in zip(footer[1:-1], matrix.garments, strict=True):
            column.text(_rate(matrix.garment_rate(garment)))
