"""`mirrago assign-backend [--batch ID]`: give the unfinished rows of an unknown server (from
before the ledger recorded servers) to the configured one, so its runners submit or poll them."""

from __future__ import annotations

import argparse

from mirrago.backend import describe_backend, start_backend
from mirrago.cli.common import EXIT_OK, print_migration_notes
from mirrago.config import load_settings
from mirrago.ledger import Ledger


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    running = start_backend(settings)  # the key needs the backend's address and client id
    try:
        ledger = Ledger.open(settings)
        try:
            print_migration_notes(ledger)
            # Named batch: the user moves its rows from whichever server they were for.
            moved = ledger.assign_backend(
                running.backend.key,
                batch_id=args.batch,
                **({"from_backend": None} if args.batch else {}),
            )
        finally:
            ledger.close()
    finally:
        running.stop()
    where = describe_backend(running.backend.key)
    print(f"{moved} unfinished job(s) now wait for {where}.")
    return EXIT_OK
