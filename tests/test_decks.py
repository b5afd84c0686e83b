"""Stage's decks in the ledger: slides in order, notes, sharing, and the files they keep."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from support import stored_try_on, version_before

from mirrago import batchprogress
from mirrago.intents import delete_try_on
from mirrago.ledger import (
    SCHEMA_VERSION,
    VISITOR_SOURCE,
    DeckError,
    JobInput,
    Ledger,
    deck_slides,
    decks,
)
from mirrago.ledger.decks import MAX_SLIDES


def _slide(ledger: Ledger, deck_id: int, job_id: int) -> int:
    job = ledger.job(job_id)
    assert job is not None
    return ledger.add_slide(
        deck_id,
        job_id,
        person_path=job.target,
        garment_path=job.garment,
        person_label="Ana",
        garment_label="Denim shirt",
    ).id


@pytest.mark.every_database
def test_a_deck_keeps_its_slides_in_the_order_given(ledger: Ledger, tmp_path: Path) -> None:
    data = tmp_path / "data"
    deck = ledger.create_deck("  Spring   pitch ", owner="ana@example.com")
    assert deck.name == "Spring pitch"
    ids = [_slide(ledger, deck.id, stored_try_on(ledger, data, f"t{i}").id) for i in range(3)]
    assert [s.id for s in ledger.slides(deck.id)] == ids
    ledger.reorder_slides(deck.id, [ids[2], ids[0]])
    assert [s.id for s in ledger.slides(deck.id)] == [ids[2], ids[0], ids[1]]
    ledger.set_slide_notes(ids[1], "  Mention the return rate  ")
    notes = {s.id: s.notes for s in ledger.slides(deck.id)}
    assert notes[ids[1]] == "Mention the return rate" and notes[ids[0]] is None
    ledger.rename_deck(deck.id, "Autumn")
    ledger.set_deck_shared(deck.id, True)
    (listed,) = ledger.decks()
    assert (listed.name, listed.shared, listed.owner, listed.slide_count) == (
        "Autumn",
        True,
        "ana@example.com",
        3,
    )


def test_a_deck_needs_a_name(ledger: Ledger) -> None:
    with pytest.raises(DeckError, match="name"):
        ledger.create_deck("   ")


def test_only_a_stored_finished_result_becomes_a_slide(ledger: Ledger, tmp_path: Path) -> None:
    deck = ledger.create_deck("Demo")
    batch = ledger.create_batch("q", "try-on", [JobInput("p.jpg", "g.png")], backend="x")
    (queued,) = ledger.jobs(batch_id=batch.id)
    with pytest.raises(DeckError, match="finished result"):
        ledger.add_slide(deck.id, queued.id)
    visitor = stored_try_on(ledger, tmp_path / "data", "v", source=VISITOR_SOURCE)
    with pytest.raises(DeckError):
        ledger.add_slide(deck.id, visitor.id)
    assert ledger.slides(deck.id) == []


def test_a_full_deck_takes_no_more_slides(ledger: Ledger, tmp_path: Path) -> None:
    deck = ledger.create_deck("Full")
    job = stored_try_on(ledger, tmp_path / "data", "again")
    for _ in range(MAX_SLIDES):  # the same result may come back: each is a slide
        ledger.add_slide(deck.id, job.id)
    with pytest.raises(DeckError, match=f"at most {MAX_SLIDES} slides"):
        ledger.add_slide(deck.id, job.id)
    assert len(ledger.slides(deck.id)) == MAX_SLIDES


@pytest.mark.every_database
def test_deleting_a_batch_keeps_the_files_a_deck_plays_from(ledger: Ledger, tmp_path: Path) -> None:
    data = tmp_path / "data"
    job = stored_try_on(ledger, data, "kept")
    other = stored_try_on(ledger, data, "gone")
    deck = ledger.create_deck("Demo")
    slide_id = _slide(ledger, deck.id, job.id)
    for batch_id in (job.batch_id, other.batch_id):
        assert batchprogress.delete_batch(ledger, data, batch_id) is not None
    (slide,) = ledger.slides(deck.id)
    assert slide.row_id is None  # the job is gone; the slide is not
    assert all(Path(path).exists() for path in slide.paths)
    assert not Path(other.result_path or "").exists()  # a file no deck uses is removed
    # Once no deck uses them either, removing the slide frees them.
    leftover = ledger.remove_slide(slide_id)
    assert sorted(leftover) == sorted(slide.paths)


@pytest.mark.every_database
def test_the_privacy_delete_removes_the_try_on_from_every_deck(
    ledger: Ledger, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    job = stored_try_on(ledger, data, "private")
    kept = stored_try_on(ledger, data, "other")
    first, second, untouched = (ledger.create_deck(name) for name in ("Booth", "Acme", "Zeta"))
    _slide(ledger, first.id, job.id)
    _slide(ledger, second.id, job.id)
    _slide(ledger, second.id, kept.id)
    _slide(ledger, untouched.id, kept.id)
    deleted = delete_try_on(ledger, job.id, data)
    assert deleted is not None and deleted.decks == ("Acme", "Booth")
    assert ledger.slides(first.id) == []
    assert [s.row_id for s in ledger.slides(second.id)] == [kept.id]
    assert not Path(job.result_path or "").exists() and not Path(job.target).exists()


def test_deleting_a_deck_returns_only_the_files_nothing_else_uses(
    ledger: Ledger, tmp_path: Path
) -> None:
    job = stored_try_on(ledger, tmp_path / "data", "live")
    deck = ledger.create_deck("Demo")
    _slide(ledger, deck.id, job.id)
    assert ledger.delete_deck(deck.id) == []  # the job still shows them
    assert ledger.decks() == []
    with ledger._write() as conn:  # noqa: SLF001 - checking the cascade in the table itself
        assert conn.execute(sa.select(sa.func.count()).select_from(deck_slides)).scalar() == 0


def test_a_ledger_from_before_decks_gains_the_deck_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    ledger = Ledger(url)
    with ledger._write() as conn:  # noqa: SLF001 - turn it back into the previous schema
        deck_slides.drop(conn)
        decks.drop(conn)
        conn.execute(
            sa.text("UPDATE schema_version SET version = :v"), {"v": version_before("_add_decks")}
        )
    ledger.close()
    upgraded = Ledger(url)
    assert upgraded.schema_version() == SCHEMA_VERSION
    assert upgraded.create_deck("After the upgrade").id == 1
    upgraded.close()
