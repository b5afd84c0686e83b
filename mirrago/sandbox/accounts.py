"""The sandbox's credit accounts: one balance per client, kept in memory (a sandbox of its own)
or in a small SQLite file that every sandbox started on it shares, and `Credits`, which charges
a try-on against them and words the refusals as the API does.

The app and each `mirrago batch` or `mirrago try-on` start their own embedded sandbox on one
data dir; with one file there, they all spend from one account, as clients of the real API
do, so the balance after any mix of them is the starting credits less what was spent. Every
change is one SQLite write transaction (`BEGIN IMMEDIATE`), so sandboxes in several threads
or processes never lose a debit or charge a credit twice.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Protocol

from mirrago.sandbox.config import SandboxConfig, SandboxError

log = logging.getLogger("mirrago.sandbox")

BUSY_TIMEOUT = 30.0  # seconds a write waits for another process's transaction


class AccountError(Exception):
    """The credits file cannot be read or written (the disk, its permissions, a lock held
    past BUSY_TIMEOUT)."""


class Accounts(Protocol):
    def balance(self, client_id: str, starting: int) -> int:
        """The client's balance; a client seen for the first time has `starting` credits."""
        ...

    def set(self, client_id: str, balance: int) -> None: ...

    def debit(self, client_id: str, starting: int) -> tuple[int, bool]:
        """Charge one credit if the balance is above zero: (the balance before, charged)."""
        ...

    def refund(self, client_id: str, starting: int) -> None:
        """Give one credit back (a job that failed, or a submission that created no job)."""
        ...


class MemoryAccounts:
    """Balances of this sandbox only, lost when it stops."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._balances: dict[str, int] = {}

    def balance(self, client_id: str, starting: int) -> int:
        with self._lock:
            return self._balances.setdefault(client_id, starting)

    def set(self, client_id: str, balance: int) -> None:
        with self._lock:
            self._balances[client_id] = balance

    def debit(self, client_id: str, starting: int) -> tuple[int, bool]:
        with self._lock:
            before = self._balances.setdefault(client_id, starting)
            if before <= 0:
                return before, False
            self._balances[client_id] = before - 1
            return before, True

    def refund(self, client_id: str, starting: int) -> None:
        with self._lock:
            self._balances[client_id] = self._balances.setdefault(client_id, starting) + 1


class FileAccounts:
    """Balances in a SQLite file shared by every sandbox (and process) that opens it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise AccountError(f"cannot create {self.path.parent}: {error.strerror}") from None
        with self._transaction() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS accounts "
                "(client_id TEXT PRIMARY KEY, balance INTEGER NOT NULL)"
            )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # A connection per change: cheap next to a try-on, and safe from any thread.
        try:
            with closing(
                sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
            ) as conn:
                conn.execute("BEGIN IMMEDIATE")  # take the write lock before reading
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        except sqlite3.Error as error:
            raise AccountError(f"the sandbox's credits file {self.path.name}: {error}") from None

    @staticmethod
    def _open(conn: sqlite3.Connection, client_id: str, starting: int) -> int:
        conn.execute(
            "INSERT OR IGNORE INTO accounts (client_id, balance) VALUES (?, ?)",
            (client_id, starting),
        )
        row = conn.execute("SELECT balance FROM accounts WHERE client_id = ?", (client_id,))
        return int(row.fetchone()[0])

    def balance(self, client_id: str, starting: int) -> int:
        with self._transaction() as conn:
            return self._open(conn, client_id, starting)

    def set(self, client_id: str, balance: int) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO accounts (client_id, balance) VALUES (?, ?) "
                "ON CONFLICT (client_id) DO UPDATE SET balance = excluded.balance",
                (client_id, balance),
            )

    def debit(self, client_id: str, starting: int) -> tuple[int, bool]:
        with self._transaction() as conn:
            before = self._open(conn, client_id, starting)
            if before <= 0:
                return before, False
            conn.execute(
                "UPDATE accounts SET balance = ? WHERE client_id = ?", (before - 1, client_id)
            )
            return before, True

    def refund(self, client_id: str, starting: int) -> None:
        with self._transaction() as conn:
            self._open(conn, client_id, starting)
            conn.execute(
                "UPDATE accounts SET balance = balance + 1 WHERE client_id = ?", (client_id,)
            )


def open_accounts(path: str | Path | None) -> Accounts:
    """The accounts in the file at `path`, or in memory when `path` is None."""
    return MemoryAccounts() if path is None else FileAccounts(path)


class Credits:
    """One credit per try-on, charged and refunded against the accounts in
    `config.credits_file`; `count` counts refusals for the sandbox's stats."""

    def __init__(self, config: SandboxConfig, count: Callable[[str], None]):
        self.config = config
        self._count = count
        self._accounts = open_accounts(config.credits_file)

    def balance(self, client_id: str) -> int:
        """The client's current credit balance."""
        return self._accounts.balance(client_id, self.config.starting_credits)

    def set(self, client_id: str, balance: int) -> None:
        """Set a client's balance (demos of a low or empty account)."""
        self._accounts.set(client_id, balance)

    def debit(self, client_id: str) -> int:
        """Charge one credit; the balance before. 402 when there is none, 500 when the
        credits file cannot be written (nothing charged)."""
        try:
            credits_before, charged = self._accounts.debit(client_id, self.config.starting_credits)
        except AccountError as error:
            log.error("sandbox credits not charged: %s", error)
            raise SandboxError(500, "Internal Server Error") from None
        if not charged:
            self._count("insufficient_credits")
            raise SandboxError(
                402,
                f"Insufficient credits: the account has {credits_before} credits left, and "
                "each try-on costs 1. No job was created; top up the account to continue.",
            )
        return credits_before

    def refund(self, client_id: str) -> None:
        """Give one credit back; a credits file that cannot be written is logged, not raised."""
        try:
            self._accounts.refund(client_id, self.config.starting_credits)
        except AccountError as error:
            log.error("sandbox credit not refunded: %s", error)
