"""Stage without the UI: slides read from the data dir, the slideshow page, visitors' try-ons
that leave nothing behind, and `mirrago deck`."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from support import cli_env, stored_try_on

from mirrago.ledger import VISITOR_SOURCE, DeckRecord, JobState, Ledger, jobs, utcnow
from mirrago.stage.slides import deck_slides, may_change_deck, may_see_deck
from mirrago.stage.slideshow import PLACEHOLDER_TEXT, slideshow_html
from mirrago.stage.visitors import reset_visitor, start_visitor_try_on, sweep_visitors

HOSTILE = "<img src=x onerror=alert(1)>"


def _deck_of(ledger: Ledger, data: Path, count: int, notes: str = "") -> DeckRecord:
    deck = ledger.create_deck("Demo")
    for index in range(count):
        job = stored_try_on(ledger, data, f"s{index}")
        ledger.add_slide(
            deck.id,
            job.id,
            person_path=job.target,
            garment_path=job.garment,
            person_label="Ana",
            garment_label="Denim shirt",
            notes=notes or None,
        )
    return deck


def test_a_slide_whose_result_was_removed_by_hand_is_a_placeholder(
    ledger: Ledger, tmp_path: Path
) -> None:
    deck = _deck_of(ledger, tmp_path / "data", 3)
    Path(ledger.slides(deck.id)[1].result_path).unlink()
    shown = deck_slides(ledger, deck.id)
    assert [slide.placeholder for slide in shown] == [False, True, False]
    assert shown[0].person is not None and shown[0].garment is not None
    page = slideshow_html("Demo", shown)
    assert page.count("<section") == 3 and PLACEHOLDER_TEXT in page


def test_the_slideshow_is_self_contained_and_escapes_user_text(
    ledger: Ledger, tmp_path: Path
) -> None:
    deck = _deck_of(ledger, tmp_path / "data", 2, notes=HOSTILE)
    page = slideshow_html(HOSTILE, deck_slides(ledger, deck.id))
    assert HOSTILE not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", page)
    assert page.count("data:image/jpeg;base64,") == 6  # result, person, garment per slide


def test_an_empty_deck_says_so() -> None:
    assert "no slides yet" in slideshow_html("Empty", [])


def test_decks_are_private_to_their_owner_until_shared() -> None:
    now = utcnow()
    mine = DeckRecord(1, "Mine", "ana@example.com", False, now, now)
    shared = DeckRecord(2, "Team", "bo@example.com", True, now, now)
    assert may_see_deck(mine, "ana@example.com", sign_in=True)
    assert not may_see_deck(mine, "bo@example.com", sign_in=True)
    assert may_see_deck(shared, "ana@example.com", sign_in=True)
    assert not may_change_deck(shared, "ana@example.com", sign_in=True)
    assert may_see_deck(mine, None, sign_in=False) and may_change_deck(shared, None, False)


class _Runner:
    """What the stage asks of a runner: enqueue into the ledger, cancel a queued row."""

    backend = "test:stage"

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def enqueue(self, inputs, *, name, source):  # noqa: ANN001, ANN201 - the Runner's signature
        batch = self.ledger.create_batch(name, source, inputs, backend=self.backend)
        return self.ledger.jobs(batch_id=batch.id)

    def cancel(self, row_id: int) -> bool:
        return self.ledger.cancel(row_id)


def test_resetting_a_finished_visitor_removes_their_files_and_anonymises_the_row(
    ledger: Ledger, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    visitor = stored_try_on(ledger, data, "visitor", source=VISITOR_SOURCE)
    files = [Path(p) for p in (visitor.target, visitor.result_path, visitor.thumbnail_path) if p]
    assert reset_visitor(_Runner(ledger), ledger, visitor.id, data)
    assert not any(path.exists() for path in files)
    row = ledger.job(visitor.id)
    assert row is not None and row.deleted_at is not None and row.target == ""


def test_a_visitor_still_waiting_is_canceled_and_deleted_at_once(
    ledger: Ledger, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    photo = data / "inputs" / "visitor.jpg"
    photo.parent.mkdir(parents=True)
    photo.write_bytes(b"photo")
    runner = _Runner(ledger)
    job = start_visitor_try_on(runner, str(photo), "garment.png")
    assert job is not None and reset_visitor(runner, ledger, job.id, data)
    assert not photo.exists()
    row = ledger.job(job.id)
    assert row is not None and row.state is JobState.CANCELED and row.deleted_at is not None


def test_reset_never_deletes_a_try_on_that_is_not_a_visitors(
    ledger: Ledger, tmp_path: Path
) -> None:
    job = stored_try_on(ledger, tmp_path / "data", "sales")
    assert not reset_visitor(_Runner(ledger), ledger, job.id, tmp_path / "data")
    assert Path(job.result_path or "").exists()


def test_the_sweep_deletes_a_visitor_left_behind_long_after_the_idle_time(
    ledger: Ledger, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    left = stored_try_on(ledger, data, "left", source=VISITOR_SOURCE)
    fresh = stored_try_on(ledger, data, "fresh", source=VISITOR_SOURCE)
    with ledger._write() as conn:  # noqa: SLF001 - a visitor who finished 20 minutes ago
        conn.execute(
            jobs.update()
            .where(jobs.c.id == left.id)
            .values(finished_at=utcnow() - timedelta(minutes=20))
        )
    assert sweep_visitors(ledger, data, idle_minutes=3) == 1
    assert not Path(left.result_path or "").exists()
    assert Path(fresh.result_path or "").exists()
    assert [row_id for row_id, *_ in ledger.visitor_rows()] == [fresh.id]


def test_deck_export_writes_one_slideshow_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ledger = Ledger(f"sqlite:///{data / 'ledger.sqlite3'}")
    deck = _deck_of(ledger, data, 2, notes=HOSTILE)
    ledger.close()
    env = cli_env(None, tmp_path)
    listed = subprocess.run(
        [sys.executable, "-m", "mirrago", "deck", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0 and "Demo" in listed.stdout
    out = tmp_path / "show.html"
    exported = subprocess.run(
        [sys.executable, "-m", "mirrago", "deck", "export", str(deck.id), "--html", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert exported.returncode == 0, exported.stderr
    page = out.read_text(encoding="utf-8")
    assert page.count("<section") == 2 and HOSTILE not in page
    missing = subprocess.run(
        [sys.executable, "-m", "mirrago", "deck", "export", "Nope", "--html"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2 and "mirrago deck list" in missing.stderr
