"""`mirrago export BATCH --csv/--zip/--html`: a batch's Results CSV, Images ZIP or HTML report,
from the ledger alone (nothing is fetched from the API)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mirrago.cli.common import EXIT_OK, check_out_path, find_batch
from mirrago.config import load_settings
from mirrago.datadir import atomic_target
from mirrago.errors import UsageError
from mirrago.ledger import Ledger
from mirrago.review import exports, report


def run(args: argparse.Namespace) -> int:
    wanted = [
        (kind, value)
        for kind, value in (("results", args.csv), ("images", args.zip), ("report", args.html))
        if value is not None
    ]
    if not wanted:
        raise UsageError("mirrago export: choose at least one of --csv, --zip, --html")
    ledger = Ledger.open(load_settings())
    try:
        batch = find_batch(ledger, args.batch, "export")
        for kind, value in wanted:
            target = Path(value or exports.default_name(batch, kind))
            check_out_path(target)
            with atomic_target(target) as temporary:
                if kind == "results":
                    temporary.write_bytes(exports.results_csv(ledger, batch.id))
                elif kind == "images":
                    exports.write_zip(ledger, batch.id, temporary)
                else:
                    with temporary.open("w", encoding="utf-8") as handle:
                        report.write_html(ledger, batch.id, handle)
            print(f"{kind}: {target}")
    finally:
        ledger.close()
    return EXIT_OK
