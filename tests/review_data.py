"""Finished batches on known data, written straight into a real ledger (no sandbox needed): the
rows go through the runner's own ledger moves (claim, submission, completion) with result
images and thumbnails on disk, as a finished run leaves them. Used by the review and export
tests and by benchmarks/review_export.py."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from mirrago.images import make_thumbnail
from mirrago.ledger import BatchRecord, JobInput, JobState, Ledger
from mirrago.models import JobStatus, Submission
from mirrago.samples import garments, persons

PERSONS = [sample.path for sample in persons()]
GARMENTS = [sample.path for sample in garments()]
RUNNER = "review-data:1:test"
SEEDED = "test:seeded"  # the backend of the seeded rows


def result_image(index: int, size: tuple[int, int] = (384, 512)) -> bytes:
    """A distinct JPEG per row: a coloured backdrop and the row number drawn large."""
    colour = ((index * 67) % 200 + 30, (index * 131) % 200 + 30, (index * 29) % 200 + 30)
    image = Image.new("RGB", size, colour)
    draw = ImageDraw.Draw(image)
    draw.rectangle((size[0] // 4, size[1] // 4, size[0] * 3 // 4, size[1]), fill=(240, 240, 240))
    draw.text((size[0] // 3, size[1] // 3), f"row {index + 1}", fill=(20, 20, 20))
    if size[0] >= 640:  # photo-sized: grain, so the JPEG weighs what a photo does
        grain = Image.effect_noise(size, 48).convert("RGB")
        image = Image.blend(image, grain, 0.25)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def grid_pairs(person_count: int, garment_count: int) -> list[JobInput]:
    """Every person × every garment (shipped samples, as local files), persons outermost."""
    return [
        JobInput(str(PERSONS[p % len(PERSONS)]), str(GARMENTS[g % len(GARMENTS)]))
        for p in range(person_count)
        for g in range(garment_count)
    ]


def finished_batch(
    ledger: Ledger,
    data_dir: Path,
    inputs: Sequence[JobInput],
    *,
    name: str = "known batch",
    failed_rows: Sequence[int] = (),
    prefix: str = "job",
    result_size: tuple[int, int] = (384, 512),
) -> BatchRecord:
    """A batch whose rows are all final: completed with a result on disk, except
    `failed_rows` (failed by the server)."""
    batch = ledger.create_batch(name, f"test:{name}", inputs, backend=SEEDED, private=True)
    ledger.register_runner(RUNNER)
    results = data_dir / "results"
    thumbs = data_dir / "thumbs"
    results.mkdir(parents=True, exist_ok=True)
    thumbs.mkdir(parents=True, exist_ok=True)
    try:
        while (row := ledger.claim_next(RUNNER, [batch.id], backend=SEEDED)) is not None:
            job_id = f"{prefix}-{batch.id}-{row.row_index + 1:04d}"
            submission = Submission(
                job_id,
                JobStatus.IN_PROGRESS,
                "queued",
                None,
                row.username,
                None,
                1000 - row.id,
                datetime.now(UTC),
            )
            ledger.record_submission(row.id, RUNNER, submission)
            if row.row_index in failed_rows:
                ledger.fail_job(row.id, RUNNER, "The server could not render this pair.")
                continue
            data = result_image(row.row_index, result_size)
            result = results / f"{job_id}.jpg"
            thumb = thumbs / f"{job_id}.jpg"
            result.write_bytes(data)
            thumb.write_bytes(make_thumbnail(data, max_side=320))
            ledger.complete(
                row.id,
                RUNNER,
                server_status="completed",
                result_url=f"https://results.example.invalid/{job_id}.jpg",
                result_path=str(result),
                thumbnail_path=str(thumb),
            )
    finally:
        ledger.unregister_runner(RUNNER)
    assert all(job.state.is_final for job in ledger.jobs(batch_id=batch.id))
    return batch


def completed(ledger: Ledger, batch_id: int) -> list:
    return [job for job in ledger.jobs(batch_id=batch_id) if job.state is JobState.COMPLETED]


def batch_page(batch: BatchRecord, view: str = "results") -> AppTest:
    """The app (AppTest) on the Batch page, showing `batch` in `view` ("results", "review")."""
    at = AppTest.from_file("../app.py", default_timeout=60)
    at.run()
    at.switch_page("pages/batch.py")
    at.query_params["batch"] = str(batch.id)
    at.session_state["batch-view"] = view
    at.run()
    assert not at.exception, at.exception
    return at
