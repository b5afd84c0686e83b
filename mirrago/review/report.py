"""The HTML report of a batch: one self-contained file (thumbnails embedded as data URIs, a
policy that forbids fetching anything) with the review figures, the person × garment matrix and
one card per row. Verdict words and colours are the review's badges (`VERDICT_BADGES`).

Written to a file card by card as it is built (never the whole report in memory).
"""

from __future__ import annotations

import html
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from mirrago import samples
from mirrago.errors import MirragoError
from mirrago.export import to_temporary
from mirrago.ledger import JobRecord, JobState, Ledger, ReviewRecord, TriageRecord
from mirrago.review.exports import BatchData, load
from mirrago.review.rules import REASONS, VERDICT_BADGES, VERDICTS
from mirrago.review.summary import (
    Matrix,
    Rate,
    Summary,
    build_matrix,
    has_matrix,
    input_label,
    percent,
    summarize,
)
from mirrago.triage.flags import chip

# The report's shade of each badge colour a verdict badge may name (Streamlit's badge colours).
_BADGE_HEX = {
    "green": "#1f9d55",
    "red": "#d64545",
    "orange": "#d9822b",
    "yellow": "#c9a227",
    "blue": "#2f6fdb",
    "violet": "#7b4fd6",
    "gray": "#9aa3ad",
    "grey": "#9aa3ad",
}
_NO_VERDICT = "#9aa3ad"  # not reviewed, or no result to review
_MATRIX_THUMBNAILS_UP_TO = 150  # cells; beyond that the matrix shows colour swatches only


def verdict_colour(verdict: str) -> str:
    """The colour of a verdict's badge (`VERDICT_BADGES`), grey for no verdict."""
    badge = VERDICT_BADGES.get(verdict)
    return _BADGE_HEX.get(badge[1], _NO_VERDICT) if badge else _NO_VERDICT


def verdict_word(job: JobRecord) -> str:
    """What a card's badge says: the verdict badge's word, "Not reviewed" or "No result"."""
    if job.state is not JobState.COMPLETED:
        return "No result"
    badge = VERDICT_BADGES.get(job.review_verdict or "")
    return badge[0] if badge else "Not reviewed"


def _verdict_style() -> str:
    """The verdicts' colours as the style's variables (`--pass`, `--fail`)."""
    colours = "".join(f"--{v}:{verdict_colour(v)}; " for v in VERDICT_BADGES)
    return f":root {{ {colours}}}"


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
            sample = samples.lookup(value)
            path = sample.path if sample else None
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
:root { --ink:#1d2430; --muted:#5b6573; --line:#dfe3e8;
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
.checks { margin:6px 0 0; font-size:13px; }
.flag { display:inline-block; background:#fff4e0; color:#8a4b00; border-radius:10px;
  padding:1px 8px; margin:2px 4px 0 0; font-size:12px; }
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
    summary = summarize(data.jobs, data.history)
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
    out.write(f"<title>{_esc(title)}</title><style>{_verdict_style()}{_STYLE}</style></head><body>")
    out.write(_header_html(data, summary, now, generated_by))
    out.write("<main>")
    out.write(_summary_html(summary))
    if has_matrix(data.jobs):
        out.write(_matrix_html(build_matrix(data.jobs), thumbs))
    out.write(f'<h2>Results ({len(data.jobs)})</h2><div class="grid">')
    for job in data.jobs:
        out.write(_card_html(job, data.current.get(job.id), thumbs, data.triage.get(job.id)))
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

    return to_temporary(write, ".html")


def _header_html(data: BatchData, summary: Summary, now: datetime, generated_by: str | None) -> str:
    who = ", ".join(summary.reviewers) or "no reviewer named"
    made = data.batch.created_at.strftime("%Y-%m-%d %H:%M UTC")
    by = f" by {_esc(generated_by)}" if generated_by else ""
    return (
        f"<header><h1>{_esc('QA report: ' + data.batch.name)}</h1>"
        f'<div class="meta">Batch {data.batch.id}, created {_esc(made)} · '
        f"{len(data.jobs)} rows · reviewed by {_esc(who)} · report made "
        f"{_esc(now.strftime('%Y-%m-%d %H:%M UTC'))}{by}</div></header>"
    )


def _summary_html(summary: Summary) -> str:
    median = "–" if summary.median_seconds is None else f"{summary.median_seconds:.1f} s"
    tiles = [
        ("Review pass", percent(summary.pass_rate)),
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
        parts.append(f'<tr><td>{_esc(REASONS[reason])}</td><td class="num">{count}</td></tr>')
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
                f'<tr><td title="{_esc(rate.value)}">{_esc(input_label(rate.value))}</td>'
                f'<td class="num">{percent(rate.rate)} ({rate.passed}/{rate.reviewed})'
                "</td></tr>"
            )
        parts.append("</table></div>")
    parts.append("</div>")
    return "".join(parts)


def _matrix_html(matrix: Matrix, thumbs: _Thumbnails) -> str:
    pictures = len(matrix.persons) * len(matrix.garments) <= _MATRIX_THUMBNAILS_UP_TO
    parts = ['<h2>Matrix: persons × garments</h2><table class="matrix"><tr><th></th>']
    for garment in matrix.garments:
        parts.append(f'<th class="in" title="{_esc(garment)}">{_esc(input_label(garment))}</th>')
    parts.append('<th class="num">Review pass</th></tr>')
    for person in matrix.persons:
        parts.append(f'<tr><th class="in" title="{_esc(person)}">{_esc(input_label(person))}</th>')
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
    verdict = job.review_verdict if job.review_verdict in VERDICTS else ""
    colour = verdict_colour(verdict)
    word = VERDICT_BADGES[verdict][0] if verdict else job.state.value
    label = f"Row {job.row_index + 1}: {word}"
    uri = thumbs.result(job) if pictures else None
    if uri:
        image = f'<img src="{uri}" alt="{_esc(label)}">'
        inner = f'<span class="frame" style="border-color:{colour}">{image}</span>'
    else:
        inner = f'<span class="swatch" style="background:{colour}"></span>'
    return f'<a href="#row-{job.row_index + 1}" title="{_esc(label)}">{inner}</a>'


def _rate_text(rate: Rate) -> str:
    if not rate.reviewed:
        return "–"
    return f"{percent(rate.rate)} ({rate.passed}/{rate.reviewed})"


def _card_html(
    job: JobRecord,
    current: ReviewRecord | None,
    thumbs: _Thumbnails,
    checked: TriageRecord | None = None,
) -> str:
    verdict = job.review_verdict if job.review_verdict in VERDICTS else ""
    badge = verdict_word(job)
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
        f'<span class="reason">{_esc(REASONS.get(tag, tag))}</span>' for tag in job.review_tags
    )
    score, flags = (checked.score_text, checked.flags_text) if checked else ("", "")
    parts = [
        f'<article class="card {verdict}" id="row-{job.row_index + 1}" '
        f'data-suspect-score="{score}" data-flags="{_esc(flags)}">',
        f'<div class="top"><b>Row {job.row_index + 1}</b>'
        f'<span class="state">{_esc(job.state.value)}</span>'
        f'<span class="badge {verdict}">{_esc(badge)}</span></div>',
        f'<div class="pics">{result}<div class="inputs">{inputs}</div></div>',
    ]
    if reasons:
        parts.append(f'<div class="reasons">{reasons}</div>')
    if checked is not None:
        parts.append(_checks_html(checked))
    if job.review_note:
        parts.append(f'<div class="note">{_esc(job.review_note)}</div>')
    if job.error:
        parts.append(f'<div class="error">{_esc(job.error)}</div>')
    parts.append(f"<dl>{rows}</dl></article>")
    return "".join(parts)


def _checks_html(checked: TriageRecord) -> str:
    """The quality checks' suspect score and flags (chips that say why), or "not checked"."""
    if not checked.checked:
        return f'<div class="checks">Not checked: {_esc(checked.not_checked)}</div>'
    chips = "".join(
        f'<span class="flag" title="{_esc(code)}">{_esc(chip(code, checked.values.get(code)))}'
        "</span>"
        for code in checked.flags
    )
    words = "no flags" if not checked.flags else f"flags: {_esc(checked.flags_text)}"
    return (
        f'<div class="checks">Suspect score <b class="score">{checked.score_text}</b> '
        f'<small class="meta">({words})</small> {chips}</div>'
    )


def _input_text(value: str) -> str:
    """An input's name, and where it came from in small print (already escaped)."""
    return f'{_esc(input_label(value))}<br><small class="meta">{_esc(value)}</small>'


def _input_html(value: str, role: str, thumbs: _Thumbnails) -> str:
    uri = thumbs.input(value)
    label = f"{role}: {input_label(value)}"
    if uri:
        return f'<img src="{uri}" alt="{_esc(label)}" title="{_esc(label)}">'
    return f'<div class="none" title="{_esc(value)}">{_esc(role)}: not embedded</div>'
