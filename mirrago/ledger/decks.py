"""Stage's decks on the ledger: named, ordered lists of finished results to present.

A slide keeps the paths of its own pictures (the result, its thumbnail, the person and garment
photos), so a deck plays from the data dir after its job's batch is deleted, and the batch's
deletion keeps the files a deck still uses. A try-on deleted on purpose (the privacy delete)
leaves every deck. A visitor's try-on on the stage (`VISITOR_SOURCE`) never becomes a slide.
What a deck looks like on screen is `mirrago.stage`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mirrago.errors import DeckError
from mirrago.ledger.records import JobState, Origin, utcnow
from mirrago.ledger.schema import batches, deck_slides, decks, jobs

# The batch source of a visitor's try-on on the stage: kept out of decks, Recent try-ons,
# past batches and galleries, and anonymised when the stage resets.
VISITOR_SOURCE = Origin.STAGE_VISITOR.value
DECK_NAME_MAX = 120
NOTES_MAX = 4000
# A deck is presented and exported as one page with every slide's pictures in it: bounded, so
# one page stays a few tens of MB however many results someone adds.
MAX_SLIDES = 100


@dataclass(frozen=True)
class DeckRecord:
    id: int
    name: str
    owner: str | None
    shared: bool
    created_at: datetime
    updated_at: datetime
    slide_count: int = 0


@dataclass(frozen=True)
class SlideRecord:
    """One slide: the pictures it plays from (local paths), their labels and the notes."""

    id: int
    deck_id: int
    position: int
    row_id: int | None  # None once the job's batch was deleted
    result_path: str
    thumbnail_path: str | None
    person_path: str | None
    garment_path: str | None
    person_label: str | None
    garment_label: str | None
    notes: str | None

    @property
    def paths(self) -> tuple[str, ...]:
        found = (self.result_path, self.thumbnail_path, self.person_path, self.garment_path)
        return tuple(path for path in found if path)


_SLIDE_FILES = ("result_path", "thumbnail_path", "person_path", "garment_path")


def deck_files(conn: Connection, paths: Collection[str]) -> set[str]:
    """Which of `paths` a slide of some deck still plays from (a batch's deletion keeps them)."""
    if not paths:
        return set()
    found: set[str] = set()
    for name in _SLIDE_FILES:
        column = deck_slides.c[name]
        found.update(conn.execute(sa.select(column).where(column.in_(list(paths)))).scalars())
    return found


def _files_in_use(conn: Connection, paths: Collection[str]) -> set[str]:
    """Of `paths`, those a job not deleted or a slide still names."""
    if not paths:
        return set()
    used = deck_files(conn, paths)
    for column in (jobs.c.target, jobs.c.garment, jobs.c.result_path, jobs.c.thumbnail_path):
        used.update(
            conn.execute(
                sa.select(column).where(column.in_(list(paths)), jobs.c.deleted_at.is_(None))
            ).scalars()
        )
    return used


def _slide(row: Any) -> SlideRecord:
    return SlideRecord(
        int(row.id),
        int(row.deck_id),
        int(row.position),
        None if row.row_id is None else int(row.row_id),
        row.result_path,
        row.thumbnail_path,
        row.person_path,
        row.garment_path,
        row.person_label,
        row.garment_label,
        row.notes,
    )


def _clean_name(name: str) -> str:
    clean = " ".join(str(name).split())[:DECK_NAME_MAX]
    if not clean:
        raise DeckError("Give the deck a name.")
    return clean


class DecksMixin:
    """`Ledger`'s methods for Stage's decks (see `mirrago.ledger.store.Ledger`)."""

    _write: Callable[[], AbstractContextManager[Connection]]
    _read: Callable[[], AbstractContextManager[Connection]]

    # ------------------------------------------------------------------ decks

    def create_deck(self, name: str, owner: str | None = None) -> DeckRecord:
        now = utcnow()
        clean = _clean_name(name)
        with self._write() as conn:
            deck_id = conn.execute(
                decks.insert().values(
                    name=clean, owner=owner, shared=False, created_at=now, updated_at=now
                )
            ).inserted_primary_key[0]
        return DeckRecord(int(deck_id), clean, owner, False, now, now)

    def decks(self) -> list[DeckRecord]:
        """Every deck, newest change first, with its number of slides."""
        count = (
            sa.select(sa.func.count())
            .where(deck_slides.c.deck_id == decks.c.id)
            .scalar_subquery()
            .label("slide_count")
        )
        query = sa.select(decks, count).order_by(decks.c.updated_at.desc(), decks.c.id.desc())
        with self._read() as conn:
            return [_deck(row) for row in conn.execute(query)]

    def deck(self, deck_id: int) -> DeckRecord | None:
        return next((deck for deck in self.decks() if deck.id == deck_id), None)

    def rename_deck(self, deck_id: int, name: str) -> None:
        self._touch(deck_id, name=_clean_name(name))

    def set_deck_shared(self, deck_id: int, shared: bool) -> None:
        """With sign-in: whether the team sees the deck too (else its owner only)."""
        self._touch(deck_id, shared=bool(shared))

    def delete_deck(self, deck_id: int) -> list[str]:
        """Delete a deck and its slides; returns the files only its slides kept (their job's
        batch is gone), for the caller to remove."""
        with self._write() as conn:
            paths = {
                path
                for row in conn.execute(
                    sa.select(*[deck_slides.c[name] for name in _SLIDE_FILES]).where(
                        deck_slides.c.deck_id == deck_id
                    )
                )
                for path in row
                if path
            }
            conn.execute(deck_slides.delete().where(deck_slides.c.deck_id == deck_id))
            conn.execute(decks.delete().where(decks.c.id == deck_id))
            return sorted(paths - _files_in_use(conn, paths))

    def _touch(self, deck_id: int, **values: Any) -> None:
        with self._write() as conn:
            conn.execute(
                decks.update().where(decks.c.id == deck_id).values(updated_at=utcnow(), **values)
            )

    # ------------------------------------------------------------------ slides

    def add_slide(
        self,
        deck_id: int,
        row_id: int,
        *,
        person_path: str | None = None,
        garment_path: str | None = None,
        person_label: str | None = None,
        garment_label: str | None = None,
        notes: str | None = None,
    ) -> SlideRecord:
        """Add a finished result as the deck's last slide. `person_path` and `garment_path` are
        the inputs' pictures on this machine (None when only a link is known). Raises
        `DeckError` for a job that has no stored result, or is a stage visitor's, and for a deck
        that is full (`MAX_SLIDES`)."""
        with self._write() as conn:
            row = conn.execute(
                sa.select(
                    jobs.c.state,
                    jobs.c.result_path,
                    jobs.c.thumbnail_path,
                    jobs.c.deleted_at,
                    batches.c.source,
                )
                .select_from(jobs.join(batches, jobs.c.batch_id == batches.c.id))
                .where(jobs.c.id == row_id)
            ).first()
            if conn.execute(sa.select(decks.c.id).where(decks.c.id == deck_id)).first() is None:
                raise DeckError("That deck no longer exists: choose another one.")
            if row is None or row.deleted_at is not None or row.source == VISITOR_SOURCE:
                raise DeckError("This result cannot go in a deck: it was deleted.")
            if row.state != JobState.COMPLETED.value or not row.result_path:
                raise DeckError("Only a finished result stored on this computer can go in a deck.")
            count, last = conn.execute(
                sa.select(sa.func.count(), sa.func.max(deck_slides.c.position)).where(
                    deck_slides.c.deck_id == deck_id
                )
            ).one()
            if count >= MAX_SLIDES:
                raise DeckError(
                    f"A deck holds at most {MAX_SLIDES} slides: start another deck for this one."
                )
            values = {
                "deck_id": deck_id,
                "position": 0 if last is None else int(last) + 1,
                "row_id": row_id,
                "result_path": row.result_path,
                "thumbnail_path": row.thumbnail_path,
                "person_path": person_path,
                "garment_path": garment_path,
                "person_label": (person_label or None) and person_label[:200],
                "garment_label": (garment_label or None) and garment_label[:200],
                "notes": (notes or None) and notes[:NOTES_MAX],
                "added_at": utcnow(),
            }
            slide_id = conn.execute(deck_slides.insert().values(**values)).inserted_primary_key[0]
            conn.execute(decks.update().where(decks.c.id == deck_id).values(updated_at=utcnow()))
        return _slide(_Values(id=slide_id, **values))

    def slides(self, deck_id: int) -> list[SlideRecord]:
        query = (
            deck_slides.select()
            .where(deck_slides.c.deck_id == deck_id)
            .order_by(deck_slides.c.position, deck_slides.c.id)
        )
        with self._read() as conn:
            return [_slide(row) for row in conn.execute(query)]

    def reorder_slides(self, deck_id: int, slide_ids: Sequence[int]) -> None:
        """Put the deck's slides in this order (slides not named keep their place after)."""
        with self._write() as conn:
            current = list(
                conn.execute(
                    sa.select(deck_slides.c.id)
                    .where(deck_slides.c.deck_id == deck_id)
                    .order_by(deck_slides.c.position, deck_slides.c.id)
                ).scalars()
            )
            wanted = [i for i in dict.fromkeys(slide_ids) if i in current]
            order = wanted + [i for i in current if i not in wanted]
            for position, slide_id in enumerate(order):
                conn.execute(
                    deck_slides.update()
                    .where(deck_slides.c.id == slide_id)
                    .values(position=position)
                )
            conn.execute(decks.update().where(decks.c.id == deck_id).values(updated_at=utcnow()))

    def set_slide_notes(self, slide_id: int, notes: str | None) -> None:
        text = (notes or "").strip()[:NOTES_MAX] or None
        with self._write() as conn:
            conn.execute(
                deck_slides.update().where(deck_slides.c.id == slide_id).values(notes=text)
            )

    def remove_slide(self, slide_id: int) -> list[str]:
        """Remove one slide; returns the files nothing else uses any more (see delete_deck)."""
        with self._write() as conn:
            row = conn.execute(deck_slides.select().where(deck_slides.c.id == slide_id)).first()
            if row is None:
                return []
            conn.execute(deck_slides.delete().where(deck_slides.c.id == slide_id))
            paths = set(_slide(row).paths)
            return sorted(paths - _files_in_use(conn, paths))

    def remove_row_from_decks(self, row_id: int) -> list[str]:
        """Take job `row_id` out of every deck (its privacy delete); returns the names of the
        decks that lost a slide."""
        with self._write() as conn:
            names = list(
                conn.execute(
                    sa.select(decks.c.name)
                    .where(
                        decks.c.id.in_(
                            sa.select(deck_slides.c.deck_id).where(deck_slides.c.row_id == row_id)
                        )
                    )
                    .order_by(decks.c.name)
                ).scalars()
            )
            conn.execute(deck_slides.delete().where(deck_slides.c.row_id == row_id))
        return names

    # ------------------------------------------------------------------ visitors

    def visitor_rows(self) -> list[tuple[int, JobState, datetime | None]]:
        """The stage visitors' try-ons not anonymised yet: (row id, state, finished at)."""
        query = (
            sa.select(jobs.c.id, jobs.c.state, jobs.c.finished_at)
            .select_from(jobs.join(batches, jobs.c.batch_id == batches.c.id))
            .where(batches.c.source == VISITOR_SOURCE, jobs.c.deleted_at.is_(None))
            .order_by(jobs.c.id)
        )
        with self._read() as conn:
            return [(int(i), JobState(state), at) for i, state, at in conn.execute(query)]


class _Values(dict[str, Any]):
    """A dict read like a row (for `_slide`)."""

    __getattr__ = dict.__getitem__


def _deck(row: Any) -> DeckRecord:
    return DeckRecord(
        int(row.id),
        row.name,
        row.owner,
        bool(row.shared),
        row.created_at,
        row.updated_at,
        int(row.slide_count or 0),
    )
