"""What the Batch page sends and reads (AppTest, a real ledger): the cards' pictures are small
files behind /media/ URLs, not data inlined in every rerun; the batch's rows are read again
when the batch changed and only then (the Review view after a verdict given elsewhere)."""

from __future__ import annotations

from pathlib import Path

import pytest
from review_data import batch_page, completed, finished_batch, grid_pairs

from mirrago import review
from mirrago.ledger import BatchRecord, Ledger
from mirrago.ui.batch import rows

pytestmark = pytest.mark.app


@pytest.fixture
def batch(app_ledger: Ledger, data_dir: Path) -> BatchRecord:
    return finished_batch(app_ledger, data_dir, grid_pairs(2, 3), name="reads")


def test_card_pictures_are_files_not_data_inlined_in_thebatch_page(batch: BatchRecord) -> None:
    at = batch_page(batch, "results")
    sources = [url for image in at.get("image") for url in image.value]
    assert len(sources) >= 6 * 2  # every card: its result, and its two inputs in one picture
    assert not any(url.startswith("data:") for url in sources), sources[:3]
    assert all("/media/" in url for url in sources), sources[:3]  # AppTest's: /mock/media/


def test_the_rows_are_read_again_only_when_the_batch_changed(
    batch: BatchRecord, app_ledger: Ledger
) -> None:
    at = batch_page(batch, "review")
    first = at.session_state[rows.SNAPSHOT_KEY]
    at.run()
    assert at.session_state[rows.SNAPSHOT_KEY] is first  # nothing changed: the same read
    job = completed(app_ledger, batch.id)[-1]
    review.give_verdict(app_ledger, job, review.FAIL, ["artifacts"], reviewer="elsewhere")
    at.run()
    again = at.session_state[rows.SNAPSHOT_KEY]
    assert again is not first
    assert again.by_id[job.id].review_verdict == review.FAIL
    assert any(m.label == "Failed" and m.value == "1" for m in at.metric)


def test_a_verdict_given_here_patches_its_row_without_reading_the_batch_again(
    batch: BatchRecord,
) -> None:
    at = batch_page(batch, "review")
    first = at.session_state[rows.SNAPSHOT_KEY]
    shown = at.session_state["review.state"].current
    at.button(key="review-pass").click().run()
    assert not at.exception, at.exception
    after = at.session_state[rows.SNAPSHOT_KEY]
    assert after is first  # the same read, its one row replaced
    assert after.by_id[shown].review_verdict == review.PASS
    assert any(m.label == "Reviewed" and m.value.startswith("1 of") for m in at.metric)


def test_a_card_sends_a_stored_thumbnail_as_it_is_and_its_inputs_at_the_size_shown(
    tmp_path: Path,
) -> None:
    """No decoding or encoding for a page of new cards: a result's stored thumbnail is
    already small, and the inputs' picture is drawn at the width the card shows it (Streamlit
    resizes a wider one on every run)."""
    from io import BytesIO

    from PIL import Image

    from mirrago.backend import Backend
    from mirrago.images import make_thumbnail
    from mirrago.samples import garments, persons
    from mirrago.ui.batch import images

    photo = BytesIO()
    Image.new("RGB", (1200, 1500), (120, 80, 200)).save(photo, "JPEG")
    stored = tmp_path / "thumb.jpg"
    stored.write_bytes(make_thumbnail(photo.getvalue(), max_side=320))  # as datadir stores it
    assert images.card_picture(str(stored)) == stored.read_bytes()
    full = tmp_path / "result.jpg"
    full.write_bytes(photo.getvalue())
    with Image.open(BytesIO(images.card_picture(str(full)))) as shrunk:
        assert max(shrunk.size) == images.CARD_THUMB_SIDE
    backend = Backend("http://127.0.0.1:9", "id", "secret")
    pair = images.input_pair_picture(str(persons()[0].path), str(garments()[0].path), backend)
    with Image.open(BytesIO(pair)) as drawn:
        assert drawn.width == images.PAIR_WIDTH
