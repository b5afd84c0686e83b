"""Plain helpers shared by test modules (import them from here: `conftest` is not a unique
module name, tests/browser has its own): the environment of a `mirrago` process, and a fresh
PostgreSQL schema."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from mirrago.sandbox.server import EmbeddedSandbox

SECRET_ENV = ("MIRRAGO_BASE_URL", "MIRRAGO_CLIENT_ID", "MIRRAGO_CLIENT_SECRET")


def cli_env(
    sandbox: EmbeddedSandbox | None, workdir: Path, database_url: str | None = None
) -> dict[str, str]:
    """The environment of a `mirrago` process: this one's, without the developer's Mirrago
    configuration, with its data in `workdir/data`, on `sandbox` (None: the embedded one)
    and on `database_url` if given."""
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
    env["MIRRAGO_DATA_DIR"] = str(workdir / "data")
    if sandbox is not None:
        env.update(
            MIRRAGO_BASE_URL=sandbox.base_url,
            MIRRAGO_CLIENT_ID=sandbox.client_id,
            MIRRAGO_CLIENT_SECRET=sandbox.client_secret,
        )
    if database_url is not None:
        env["MIRRAGO_DATABASE_URL"] = database_url
    return env


@contextmanager
def postgres_schema(server_url: str) -> Iterator[str]:
    """A URL to a fresh, empty schema of its own on the PostgreSQL server at `server_url`,
    dropped afterwards (even if the server was restarted in between)."""
    base = sa.engine.make_url(server_url)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, pool_pre_ping=True)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
