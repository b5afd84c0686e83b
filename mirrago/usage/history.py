"""The Usage page's history of jobs: the filtered query, a page of it, the people it can be
filtered by, and its CSV export (every page). The SQL for the figures is in queries.py."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mirrago import export
from mirrago.export import defuse_formula
from mirrago.ledger import Ledger, batches, jobs
from mirrago.usage.queries import Period, as_time, in_period, source_label


@dataclass(frozen=True)
class HistoryFilter:
    period: Period
    search: str = ""
    states: tuple[str, ...] = ()
    username: str | None = None  # the person filter, on `person`'s column
    batch_id: int | None = None
    person: str = "username"  # "owner" when the app has sign-in
    # With sign-in a job's inputs, result and details are its owner's only: then `viewer` is
    # the signed-in owner, and other people's rows show (and are searched by) public fields.
    private: bool = False
    viewer: str | None = None


def _history_query(filters: HistoryFilter) -> sa.Select[Any]:
    mine = sa.true() if not filters.private else jobs.c.owner == filters.viewer

    def shown(column: Any, name: str) -> Any:
        return (column if not filters.private else sa.case((mine, column))).label(name)

    private = ("target", "garment", "result_path", "thumbnail_path", "error", "username")
    columns = [
        jobs.c.id,
        jobs.c.created_at,
        source_label().label("source"),
        batches.c.source.label("origin"),
        jobs.c.batch_id,
        batches.c.name.label("batch"),
        jobs.c.owner,
        jobs.c.state,
        jobs.c.job_id,
        jobs.c.submitted_at,
        jobs.c.finished_at,
        jobs.c.deleted_at,
        *(shown(jobs.c[name], name) for name in private),
    ]
    query = (
        sa.select(*columns)
        .select_from(jobs.join(batches, jobs.c.batch_id == batches.c.id))
        .where(in_period(jobs.c.created_at, filters.period))
    )
    if filters.states:
        query = query.where(jobs.c.state.in_(list(filters.states)))
    if filters.username:
        query = query.where(jobs.c[filters.person] == filters.username)
        if filters.person == "username":  # other people's usernames are theirs to see
            query = query.where(mine)
    if filters.batch_id is not None:
        query = query.where(jobs.c.batch_id == filters.batch_id)
    text = filters.search.strip().lower()
    if text:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"

        def like(column: Any) -> Any:
            return sa.func.lower(column).like(pattern, escape="\\")

        public = sa.or_(like(jobs.c.job_id), like(batches.c.name))
        own = sa.and_(mine, sa.or_(*(like(jobs.c[name]) for name in private)))
        query = query.where(sa.or_(public, own))
    return query


def history_count(ledger: Ledger, filters: HistoryFilter) -> int:
    query = sa.select(sa.func.count()).select_from(_history_query(filters).subquery())
    with ledger.read_connection() as conn:
        return int(conn.execute(query).scalar() or 0)


def history_page(ledger: Ledger, filters: HistoryFilter, page: int, size: int) -> list[dict]:
    """One page (from 1) of the filtered history, newest first."""
    query = _history_query(filters).order_by(jobs.c.id.desc()).limit(size)
    query = query.offset(max(0, page - 1) * size)
    with ledger.read_connection() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def usernames(ledger: Ledger, person: str = "username", viewer: str | None = None) -> list[str]:
    """The people the history can be filtered by: owners, or usernames (the viewer's own only
    when `viewer` is given: other people's usernames are details of their try-ons)."""
    column = jobs.c[person]
    query = sa.select(column).where(column.is_not(None)).group_by(column).order_by(column)
    if viewer is not None and person == "username":
        query = query.where(jobs.c.owner == viewer)
    with ledger.read_connection() as conn:
        return [str(name) for name in conn.execute(query).scalars()]


# --------------------------------------------------------------------------- exports


def csv_text(header: list[str], rows: Iterator[list[Any]]) -> str:
    """The usage exports' CSV: times in ISO 8601, empty cells for nothing, formulas defused."""
    cells = (["" if value is None else _cell(value) for value in row] for row in rows)
    return export.csv_text(header, cells)


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_time(value).isoformat(timespec="seconds")
    # Spreadsheets run cells that start like a formula: keep them text (the one rule).
    return defuse_formula(value) if isinstance(value, str) else value


def history_csv(ledger: Ledger, filters: HistoryFilter) -> str:
    """The filtered history (every page), newest first, as CSV."""
    header = [
        "row",
        "created_at",
        "source",
        "batch_id",
        "batch",
        "owner",
        "username",
        "state",
        "job_id",
        "target",
        "garment",
        "result_path",
        "error",
        "submitted_at",
        "finished_at",
    ]
    query = _history_query(filters).order_by(jobs.c.id.desc())

    def rows(conn: sa.Connection) -> Iterator[list[Any]]:
        for row in conn.execution_options(yield_per=1000).execute(query).mappings():
            yield [
                row["id"],
                row["created_at"],
                row["source"],
                row["batch_id"],
                row["batch"],
                row["owner"],
                row["username"],
                row["state"],
                row["job_id"],
                row["target"],
                row["garment"],
                row["result_path"],
                row["error"],
                row["submitted_at"],
                row["finished_at"],
            ]

    with ledger.read_connection() as conn:
        return csv_text(header, rows(conn))
