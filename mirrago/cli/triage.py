"""`mirrago triage BATCH [--all]`: score a batch's results again with the current quality checks
(those not checked yet or checked by an older version; every one with `--all`)."""

from __future__ import annotations

import argparse
import sys

from mirrago.cli.common import EXIT_OK, find_batch, print_migration_notes
from mirrago.config import load_settings
from mirrago.ledger import Ledger


def run(args: argparse.Namespace) -> int:
    from mirrago.triage import CHECKS_VERSION, label
    from mirrago.triage.worker import rescore

    ledger = Ledger.open(load_settings())
    try:
        print_migration_notes(ledger)
        batch = find_batch(ledger, args.batch, "triage")

        def show(done: int, total: int) -> None:
            print(f"\rchecked {done}/{total}", end="", file=sys.stderr, flush=True)

        count = rescore(ledger, batch.id, every=args.all, progress=show)
        if count:
            print(file=sys.stderr)
        found = ledger.batch_triage(batch.id)
        _summary(batch.id, count, found, CHECKS_VERSION, label)
    finally:
        ledger.close()
    return EXIT_OK


def _summary(batch_id: int, count: int, found: dict, version: int, label) -> None:
    checked = [record for record in found.values() if record.checked]
    flagged: dict[str, int] = {}
    for record in checked:
        for code in record.flags:
            flagged[code] = flagged.get(code, 0) + 1
    print(f"batch {batch_id}: {count} result(s) checked now (checks version {version})")
    print(f"checked: {len(checked)}  not checked: {len(found) - len(checked)}")
    for code, number in sorted(flagged.items(), key=lambda item: -item[1]):
        print(f"  {label(code)} ({code}): {number}")
