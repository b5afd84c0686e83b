"""Exports of a batch that outlive the API's result URLs: the Results CSV, the Images ZIP (with
manifest.csv) and the comparison of two runs as a CSV (the HTML report is `report.py`).

Everything is read from the ledger and the data dir (result files the runner copied): nothing
here makes a network request. The ZIP is written to a file as it is built: `zip_file` returns
a temporary file's path.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

from mirrago.errors import ExportError
from mirrago.export import csv_text, defuse_formula, to_temporary
from mirrago.ledger import BatchRecord, JobRecord, JobState, Ledger, ReviewRecord, TriageRecord
from mirrago.review.rules import VERDICTS, current_reviews
from mirrago.review.store import compare_runs

RESULTS_COLUMNS = (
    "row",
    "target_image_url",
    "garment_image_url",
    "background",
    "username",
    "state",
    "job_id",
    "error",
    "result_file",
    "result_url",
    "credits_before",
    "created_at",
    "submitted_at",
    "finished_at",
    "attempts",
    "verdict",
    "reasons",
    "note",
    "reviewer",
    "reviewed_at",
    "review_seconds",
    "suspect_score",  # the quality checks (mirrago.triage): 0…1, two decimals
    "flags",  # their flag codes, joined by ";"
)
# Free text a spreadsheet could take for a formula (CSV injection): defused.
_TEXT_COLUMNS = {"target_image_url", "garment_image_url", "username", "error", "note", "reviewer"}


@dataclass(frozen=True)
class BatchData:
    """What every export reads: the batch, its rows in input order, the review history, and
    what the quality checks found on each row's result (by row id)."""

    batch: BatchRecord
    jobs: list[JobRecord]
    current: dict[int, ReviewRecord]
    history: list[ReviewRecord]
    triage: dict[int, TriageRecord] = field(default_factory=dict)


def load(ledger: Ledger, batch_id: int) -> BatchData:
    batch = ledger.batch(batch_id)
    if batch is None:
        raise ExportError(f"There is no batch {batch_id}: pick one from the list of batches.")
    jobs = sorted(ledger.jobs(batch_id=batch_id), key=lambda job: job.row_index)
    history = ledger.reviews(batch_id=batch_id)
    found = ledger.batch_triage(batch_id)
    return BatchData(batch, jobs, current_reviews(history, jobs), history, found)


def result_file_name(job: JobRecord) -> str | None:
    """`row<NNNN>-<job_id>.<ext>` (row numbers from 1, as in the input) when there is a file."""
    if not job.result_path or not job.job_id:
        return None
    suffix = Path(job.result_path).suffix.lower() or ".bin"
    job_id = re.sub(r"[^A-Za-z0-9._-]+", "_", job.job_id).strip("._") or "job"
    return f"row{job.row_index + 1:04d}-{job_id}{suffix}"


def _stored_result(job: JobRecord) -> Path | None:
    if job.state is not JobState.COMPLETED or not job.result_path:
        return None
    path = Path(job.result_path)
    return path if path.is_file() else None


def _iso(when: datetime | None) -> str:
    return when.isoformat() if when else ""


def _cell(column: str, value: object) -> str:
    text = "" if value is None else str(value)
    return defuse_formula(text) if column in _TEXT_COLUMNS else text


def result_rows(data: BatchData) -> Iterable[list[str]]:
    """The Results CSV's data rows: every row of the batch in input order."""
    for job in data.jobs:
        current = data.current.get(job.id)
        checked = data.triage.get(job.id)
        file_name = result_file_name(job) if _stored_result(job) else None
        values = {
            "row": job.row_index + 1,
            "target_image_url": job.target,
            "garment_image_url": job.garment,
            "background": job.background,
            "username": job.username,
            "state": job.state.value,
            "job_id": job.job_id,
            "error": job.error,
            "result_file": file_name,
            "result_url": job.result_url,
            "credits_before": job.credits_before,
            "created_at": _iso(job.created_at),
            "submitted_at": _iso(job.submitted_at),
            "finished_at": _iso(job.finished_at),
            "attempts": job.attempts,
            "verdict": job.review_verdict if job.review_verdict in VERDICTS else "",
            "reasons": ";".join(job.review_tags),
            "note": job.review_note,
            "reviewer": current.reviewer if current else "",
            "reviewed_at": _iso(current.at) if current else "",
            "review_seconds": "" if not current or current.seconds is None else current.seconds,
            "suspect_score": checked.score_text if checked else "",
            "flags": checked.flags_text if checked else "",
        }
        yield [_cell(column, values[column]) for column in RESULTS_COLUMNS]


def results_csv(ledger: Ledger, batch_id: int) -> bytes:
    """The Results CSV (UTF-8 with a byte-order mark, so Excel reads accents right)."""
    return csv_text(RESULTS_COLUMNS, result_rows(load(ledger, batch_id))).encode("utf-8-sig")


# --------------------------------------------------------------------------- images ZIP


def write_zip(ledger: Ledger, batch_id: int, target: Path | IO[bytes]) -> int:
    """Write the Images ZIP to `target`: each stored result as `row<NNNN>-<job_id>.<ext>` and
    `manifest.csv` (the Results CSV, its `result_file` naming the ZIP's entries). Files are
    copied in chunks; returns the number of images."""
    data = load(ledger, batch_id)
    count = 0
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for job in data.jobs:
            source = _stored_result(job)
            name = result_file_name(job)
            if source is None or name is None:
                continue
            # Images are compressed already: stored as they are, streamed from disk.
            archive.write(source, name, compress_type=zipfile.ZIP_STORED)
            count += 1
        manifest = csv_text(RESULTS_COLUMNS, result_rows(data)).encode("utf-8-sig")
        archive.writestr("manifest.csv", manifest, compress_type=zipfile.ZIP_DEFLATED)
    return count


def zip_file(ledger: Ledger, batch_id: int) -> Path:
    """The Images ZIP in a new temporary file (the caller removes it)."""
    return to_temporary(lambda handle: write_zip(ledger, batch_id, handle), ".zip")


# --------------------------------------------------------------------------- comparison CSV

COMPARISON_COLUMNS = (
    "target_image_url",
    "garment_image_url",
    "background",
    "left_row",
    "left_state",
    "left_job_id",
    "left_verdict",
    "left_reasons",
    "right_row",
    "right_state",
    "right_job_id",
    "right_verdict",
    "right_reasons",
    "judgement",
    "verdict_change",
)


def comparison_csv(ledger: Ledger, left_batch_id: int, right_batch_id: int) -> bytes:
    """Every shared pair of two batches with both verdicts and the judgement."""
    rows = []
    for pair in compare_runs(ledger, left_batch_id, right_batch_id):
        left, right = pair.left, pair.right
        rows.append(
            [
                _cell("target_image_url", left.target),
                _cell("garment_image_url", left.garment),
                left.background or "",
                left.row_index + 1,
                left.state.value,
                left.job_id or "",
                left.review_verdict or "",
                ";".join(left.review_tags),
                right.row_index + 1,
                right.state.value,
                right.job_id or "",
                right.review_verdict or "",
                ";".join(right.review_tags),
                pair.judgement or "",
                pair.verdict_change,
            ]
        )
    return csv_text(COMPARISON_COLUMNS, rows).encode("utf-8-sig")


def default_name(batch: BatchRecord, kind: str) -> str:
    """A file name for an export: `batch-<id>-<name>-<kind>`."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", batch.name).strip("-").lower()[:40] or "batch"
    extension = {"results": "csv", "images": "zip", "report": "html"}[kind]
    return f"batch-{batch.id}-{slug}-{kind}.{extension}"
