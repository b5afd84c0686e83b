"""Exports of a batch that outlive the API's result URLs: the Results CSV, the Images ZIP (with
manifest.csv) and one self-contained HTML report; and the comparison of two runs as a CSV.

Everything is read from the ledger and the data dir (result files the runner copied): nothing
here makes a network request. The ZIP and the HTML are written to files as they are built
(never the whole report in memory): `*_file` functions return a temporary file's path.
"""

from __future__ import annotations

import csv
import html
import io
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from mirrago import review
from mirrago.errors import MirragoError
from mirrago.ledger import BatchRecord, JobRecord, JobState, Ledger, ReviewRecord

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
)
# Free text a spreadsheet could take for a formula (CSV injection): prefixed with a quote.
_TEXT_COLUMNS = {"target_image_url", "garment_image_url", "username", "error", "note", "reviewer"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportError(MirragoError):
    """An export cannot be made (an unknown batch, say): one line saying what to do."""


@dataclass(frozen=True)
class BatchData:
    """What every export reads: the batch, its rows in input order, the review history."""

    batch: BatchRecord
    jobs: list[JobRecord]
    current: dict[int, ReviewRecord]
    history: list[ReviewRecord]


def load(ledger: Ledger, batch_id: int) -> BatchData:
    batch = ledger.batch(batch_id)
    if batch is None:
        raise ExportError(f"There is no batch {batch_id}: pick one from the list of batches.")
    jobs = sorted(ledger.jobs(batch_id=batch_id), key=lambda job: job.row_index)
    history = ledger.reviews(batch_id=batch_id)
    return BatchData(batch, jobs, review.current_reviews(history, jobs), history)


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


def defuse_formula(text: str) -> str:
    """`text` as a spreadsheet shows it but never runs it: a cell that starts like a formula
    gets a leading quote (also used for `mirrago batch`'s results.csv)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _cell(column: str, value: object) -> str:
    text = "" if value is None else str(value)
    return defuse_formula(text) if column in _TEXT_COLUMNS else text


def result_rows(data: BatchData) -> Iterable[list[str]]:
    """The Results CSV's data rows: every row of the batch in input order."""
    for job in data.jobs:
        current = data.current.get(job.id)
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
            "verdict": job.review_verdict if job.review_verdict in review.VERDICTS else "",
            "reasons": ";".join(job.review_tags),
            "note": job.review_note,
            "reviewer": current.reviewer if current else "",
            "reviewed_at": _iso(current.at) if current else "",
            "review_seconds": "" if not current or current.seconds is None else current.seconds,
        }
        yield [_cell(column, values[column]) for column in RESULTS_COLUMNS]


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def results_csv(ledger: Ledger, batch_id: int) -> bytes:
    """The Results CSV (UTF-8 with a byte-order mark, so Excel reads accents right)."""
    return _csv_text(RESULTS_COLUMNS, result_rows(load(ledger, batch_id))).encode("utf-8-sig")


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
        manifest = _csv_text(RESULTS_COLUMNS, result_rows(data)).encode("utf-8-sig")
        archive.writestr("manifest.csv", manifest, compress_type=zipfile.ZIP_DEFLATED)
    return count


def zip_file(ledger: Ledger, batch_id: int) -> Path:
    """The Images ZIP in a new temporary file (the caller removes it)."""
    return _to_temporary(lambda handle: write_zip(ledger, batch_id, handle), ".zip")


def _to_temporary(write: Callable[[IO[bytes]], object], suffix: str) -> Path:
    handle = tempfile.NamedTemporaryFile(prefix="mirrago-export-", suffix=suffix, delete=False)
    try:
        with handle:
            write(handle)
    except BaseException:
        os.unlink(handle.name)
        raise
    return Path(handle.name)


def read_and_remove(path: Path) -> bytes:
    """A temporary export's bytes, the file removed (for a download button)."""
    try:
        return path.read_bytes()
    finally:
        path.unlink(missing_ok=True)


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
    for pair in review.compare_runs(ledger, left_batch_id, right_batch_id):
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
    return _csv_text(COMPARISON_COLUMNS, rows).encode("utf-8-sig")


# --------------------------------------------------------------------------- HTML report

VERDICT_COLOURS = {review.PASS: "#1f9d55", review.FAIL: "#d64545", "": "#9aa3ad"}
_MATRIX_THUMBNAILS_UP_TO = 150  # cells; beyond that the matrix shows colour swatches only


def _esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


class _Thumbnails:
    """Data URIs of thumbnails, made once per file (a batch repeats its inputs)."""

    def __init__(self) -> None:
        self._inputs: dict[str, str | None] = {}

    def result(self, job: JobRecord) -> str | None:
        if job.state is not JobState.COMPLETED:
            return None
        for candidate, ready in ((job.thumbnail_path, True), (job.result_path, False)):
            if candidate and Path(candidate).is_file():
                uri = _thumbnail_uri(Path(candidate), 320, ready)
                if uri:
                    return uri
        return None

    def input(self, value: str) -> str | None:
        if value not in self._inputs:
            path = review.sample_file(value)
            if path is None and "://" not in value and Path(value).is_file():
                path = Path(value)
            self._inputs[value] = _thumbnail_uri(path, 160, False) if path else None
        return self._inputs[value]


def _thumbnail_uri(path: Path, side: int, ready: bool) -> str | None:
    from mirrago.images import data_url, make_thumbnail, sniff_mime

    try:
        data = path.read_bytes()
        if ready and len(data) <= 96 * 1024 and sniff_mime(data) in ("image/jpeg", "image/png"):
            return data_url(data)
        return data_url(make_thumbnail(data, max_side=side))
    except (OSError, MirragoError):
        return None


_STYLE = """
:root { --ink:#1d2430; --muted:#5b6573; --line:#dfe3e8; --pass:#1f9d55; --fail:#d64545;
  --none:#9aa3ad; --bg:#f6f7f9; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
  color:var(--ink); background:var(--bg); }
header { background:#fff; border-bottom:1px solid var(--line); padding:24px 32px; }
h1 { margin:0 0 4px; font-size:22px; } h2 { font-size:16px; margin:28px 0 10px; }
.meta { color:var(--muted); }
main { padding:8px 32px 40px; }
.tiles { display:flex; flex-wrap:wrap; gap:12px; margin-top:16px; }
.tile { background:var(--bg); border:1px solid var(--line); border-radius:8px; padding:10px 14px;
  min-width:130px; }
.tile b { display:block; font-size:22px; }
.tile span { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.cols { display:flex; flex-wrap:wrap; gap:32px; }
table { border-collapse:collapse; background:#fff; }
td, th { border:1px solid var(--line); padding:4px 8px; text-align:left; vertical-align:middle; }
th { font-weight:600; background:#fafbfc; }
.num { text-align:right; font-variant-numeric:tabular-nums; }
.matrix td.cell { padding:3px; text-align:center; }
.matrix .frame { display:inline-block; border:4px solid var(--none); border-radius:6px;
  line-height:0; }
.matrix .frame img { width:88px; height:88px; object-fit:cover; border-radius:2px; }
.matrix .swatch { display:inline-block; width:28px; height:28px; border-radius:4px; }
.matrix th.in { max-width:120px; font-size:12px; word-break:break-word; }
.grid { display:grid; grid-template-columns:repeat(auto-fill,minmax(330px,1fr)); gap:14px; }
.card { background:#fff; border:1px solid var(--line); border-left:6px solid var(--none);
  border-radius:8px; padding:12px; break-inside:avoid; }
.card.pass { border-left-color:var(--pass); } .card.fail { border-left-color:var(--fail); }
.card .top { display:flex; justify-content:space-between; align-items:center; margin-bottom:8px; }
.badge { display:inline-block; border-radius:999px; padding:1px 9px; font-size:12px;
  font-weight:600; color:#fff; background:var(--none); }
.badge.pass { background:var(--pass); } .badge.fail { background:var(--fail); }
.state { color:var(--muted); font-size:12px; }
.pics { display:flex; gap:8px; align-items:flex-start; }
.pics .result { width:180px; height:240px; object-fit:contain; background:var(--bg);
  border-radius:4px; }
.pics .inputs { display:flex; flex-direction:column; gap:8px; }
.pics .inputs img, .pics .inputs .none { width:80px; height:112px; object-fit:cover;
  border-radius:4px; background:var(--bg); }
.none { display:flex; align-items:center; justify-content:center; color:var(--muted);
  font-size:11px; text-align:center; padding:4px; border:1px dashed var(--line); }
.pics .result.none { width:180px; height:240px; }
dl { margin:8px 0 0; display:grid; grid-template-columns:auto 1fr; gap:2px 8px; font-size:12px; }
dt { color:var(--muted); } dd { margin:0; word-break:break-all; }
.reasons { margin:6px 0 0; } .reason { display:inline-block; background:#fdecec; color:#9b2c2c;
  border-radius:4px; padding:0 6px; margin:0 4px 2px 0; font-size:12px; }
.note { margin-top:6px; white-space:pre-wrap; word-break:break-word; font-size:13px; }
.error { color:#9b2c2c; font-size:12px; white-space:pre-wrap; word-break:break-word; }
footer { color:var(--muted); font-size:12px; padding:0 32px 32px; }
@media print { body { background:#fff; } .card { border-color:#ccc; } }
"""


def write_html(
    ledger: Ledger, batch_id: int, out: IO[str], *, generated_by: str | None = None
) -> int:
    """Write the HTML report to `out`, card by card; returns the number of cards."""
    data = load(ledger, batch_id)
    summary = review.summarize(data.jobs, data.history)
    thumbs = _Thumbnails()
    now = datetime.now(UTC)
    title = f"QA report: {data.batch.name}"
    out.write('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">')
    # The report must never fetch anything: the policy forbids every source but inline data.
    out.write(
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">"
    )
    out.write('<meta name="viewport" content="width=device-width, initial-scale=1">')
    out.write(f"<title>{_esc(title)}</title><style>{_STYLE}</style></head><body>")
    out.write(_header_html(data, summary, now, generated_by))
    out.write("<main>")
    out.write(_summary_html(summary))
    if review.has_matrix(data.jobs):
        out.write(_matrix_html(review.build_matrix(data.jobs), thumbs))
    out.write(f'<h2>Results ({len(data.jobs)})</h2><div class="grid">')
    for job in data.jobs:
        out.write(_card_html(job, data.current.get(job.id), thumbs))
    out.write("</div></main>")
    out.write(
        f"<footer>Made by Mirrago Studio on {_esc(now.strftime('%Y-%m-%d %H:%M UTC'))}. "
        "Images are embedded: this file opens offline.</footer></body></html>\n"
    )
    return len(data.jobs)


def html_file(ledger: Ledger, batch_id: int, *, generated_by: str | None = None) -> Path:
    """The HTML report in a new temporary file (the caller removes it)."""

    def write(handle: IO[bytes]) -> None:
        text = io.TextIOWrapper(handle, encoding="utf-8", write_through=True)
        write_html(ledger, batch_id, text, generated_by=generated_by)
        text.flush()
        text.detach()

    return _to_temporary(write, ".html")


def _header_html(
    data: BatchData, summary: review.Summary, now: datetime, generated_by: str | None
) -> str:
    who = ", ".join(summary.reviewers) or "no reviewer named"
    made = data.batch.created_at.strftime("%Y-%m-%d %H:%M UTC")
    by = f" by {_esc(generated_by)}" if generated_by else ""
    return (
        f"<header><h1>{_esc('QA report: ' + data.batch.name)}</h1>"
        f'<div class="meta">Batch {data.batch.id}, created {_esc(made)} · '
        f"{len(data.jobs)} rows · reviewed by {_esc(who)} · report made "
        f"{_esc(now.strftime('%Y-%m-%d %H:%M UTC'))}{by}</div></header>"
    )


def _summary_html(summary: review.Summary) -> str:
    median = "–" if summary.median_seconds is None else f"{summary.median_seconds:.1f} s"
    tiles = [
        ("Review pass", review.percent(summary.pass_rate)),
        ("Reviewed", f"{summary.reviewed} of {summary.reviewable}"),
        ("Passed", str(summary.passed)),
        ("Failed", str(summary.failed)),
        ("Median time per review", median),
    ]
    parts = ['<section class="tiles">']
    parts += [f'<div class="tile"><span>{_esc(k)}</span><b>{_esc(v)}</b></div>' for k, v in tiles]
    parts.append('</section><div class="cols"><div><h2>Fail reasons</h2><table>')
    parts.append('<tr><th>Reason</th><th class="num">Fails</th></tr>')
    for reason, count in summary.reasons.items():
        parts.append(
            f'<tr><td>{_esc(review.REASONS[reason])}</td><td class="num">{count}</td></tr>'
        )
    parts.append("</table></div>")
    for label, rates in (
        ("Worst garments", summary.worst_garments),
        ("Worst persons", summary.worst_persons),
    ):
        parts.append(f"<div><h2>{label}</h2>")
        if not rates:
            parts.append('<p class="meta">No fails.</p></div>')
            continue
        parts.append('<table><tr><th>Input</th><th class="num">Review pass</th></tr>')
        for rate in rates:
            parts.append(
                f'<tr><td title="{_esc(rate.value)}">{_esc(review.input_label(rate.value))}</td>'
                f'<td class="num">{review.percent(rate.rate)} ({rate.passed}/{rate.reviewed})'
                "</td></tr>"
            )
        parts.append("</table></div>")
    parts.append("</div>")
    return "".join(parts)


def _matrix_html(matrix: review.Matrix, thumbs: _Thumbnails) -> str:
    pictures = len(matrix.persons) * len(matrix.garments) <= _MATRIX_THUMBNAILS_UP_TO
    parts = ['<h2>Matrix: persons × garments</h2><table class="matrix"><tr><th></th>']
    for garment in matrix.garments:
        parts.append(
            f'<th class="in" title="{_esc(garment)}">{_esc(review.input_label(garment))}</th>'
        )
    parts.append('<th class="num">Review pass</th></tr>')
    for person in matrix.persons:
        parts.append(
            f'<tr><th class="in" title="{_esc(person)}">{_esc(review.input_label(person))}</th>'
        )
        for garment in matrix.garments:
            job = matrix.cell(person, garment)
            parts.append(f'<td class="cell">{_matrix_cell(job, thumbs, pictures)}</td>')
        parts.append(f'<td class="num">{_rate_text(matrix.person_rate(person))}</td></tr>')
    parts.append('<tr><th class="num">Review pass</th>')
    for garment in matrix.garments:
        parts.append(f'<td class="num">{_rate_text(matrix.garment_rate(garment))}</td>')
    parts.append("<td></td></tr></table>")
    return "".join(parts)


def _matrix_cell(job: JobRecord | None, thumbs: _Thumbnails, pictures: bool) -> str:
    if job is None:
        return ""
    verdict = job.review_verdict if job.review_verdict in review.VERDICTS else ""
    colour = VERDICT_COLOURS[verdict]
    label = f"Row {job.row_index + 1}: {verdict or job.state.value}"
    uri = thumbs.result(job) if pictures else None
    if uri:
        image = f'<img src="{uri}" alt="{_esc(label)}">'
        inner = f'<span class="frame" style="border-color:{colour}">{image}</span>'
    else:
        inner = f'<span class="swatch" style="background:{colour}"></span>'
    return f'<a href="#row-{job.row_index + 1}" title="{_esc(label)}">{inner}</a>'


def _rate_text(rate: review.Rate) -> str:
    if not rate.reviewed:
        return "–"
    return f"{review.percent(rate.rate)} ({rate.passed}/{rate.reviewed})"


def _card_html(job: JobRecord, current: ReviewRecord | None, thumbs: _Thumbnails) -> str:
    verdict = job.review_verdict if job.review_verdict in review.VERDICTS else ""
    badge = {"pass": "Pass", "fail": "Fail"}.get(verdict, "Not reviewed")
    if job.state is not JobState.COMPLETED:
        badge = "No result"
    uri = thumbs.result(job)
    result = (
        f'<img class="result" src="{uri}" alt="Result of row {job.row_index + 1}">'
        if uri
        else f'<div class="result none">No result ({_esc(job.state.value)})</div>'
    )
    inputs = "".join(
        _input_html(value, role, thumbs)
        for value, role in ((job.target, "Person"), (job.garment, "Garment"))
    )
    details = [
        ("Person", _input_text(job.target)),
        ("Garment", _input_text(job.garment)),
        ("Background", job.background or "original"),
        ("Username", job.username),
        ("Job id", job.job_id),
    ]
    if current is not None:
        details.append(
            ("Reviewed", f"{current.reviewer or 'unnamed'}, {current.at:%Y-%m-%d %H:%M}")
        )
    rows = "".join(
        f"<dt>{_esc(k)}</dt><dd>{v if k in ('Person', 'Garment') else _esc(v)}</dd>"
        for k, v in details
        if v
    )
    reasons = "".join(
        f'<span class="reason">{_esc(review.REASONS.get(tag, tag))}</span>'
        for tag in job.review_tags
    )
    parts = [
        f'<article class="card {verdict}" id="row-{job.row_index + 1}">',
        f'<div class="top"><b>Row {job.row_index + 1}</b>'
        f'<span class="state">{_esc(job.state.value)}</span>'
        f'<span class="badge {verdict}">{badge}</span></div>',
        f'<div class="pics">{result}<div class="inputs">{inputs}</div></div>',
    ]
    if reasons:
        parts.append(f'<div class="reasons">{reasons}</div>')
    if job.review_note:
        parts.append(f'<div class="note">{_esc(job.review_note)}</div>')
    if job.error:
        parts.append(f'<div class="error">{_esc(job.error)}</div>')
    parts.append(f"<dl>{rows}</dl></article>")
    return "".join(parts)


def _input_text(value: str) -> str:
    """An input's name, and where it came from in small print (already escaped)."""
    return f'{_esc(review.input_label(value))}<br><small class="meta">{_esc(value)}</small>'


def _input_html(value: str, role: str, thumbs: _Thumbnails) -> str:
    uri = thumbs.input(value)
    label = f"{role}: {review.input_label(value)}"
    if uri:
        return f'<img src="{uri}" alt="{_esc(label)}" title="{_esc(label)}">'
    return f'<div class="none" title="{_esc(value)}">{_esc(role)}: not embedded</div>'


def default_name(batch: BatchRecord, kind: str) -> str:
    """A file name for an export: `batch-<id>-<name>-<kind>`."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", batch.name).strip("-").lower()[:40] or "batch"
    extension = {"results": "csv", "images": "zip", "report": "html"}[kind]
    return f"batch-{batch.id}-{slug}-{kind}.{extension}"
