"""`mirrago usage`: credits over the last N days (balance, burn rate, run-out date, outside use)
and the daily statement, or only the statement as CSV."""

from __future__ import annotations

import argparse
import sys

from mirrago import usage
from mirrago.backend import describe_backend
from mirrago.cli.common import EXIT_OK, print_migration_notes
from mirrago.config import load_settings
from mirrago.ledger import Ledger


def run(args: argparse.Namespace) -> int:
    period = usage.Period.last(args.days)
    ledger = Ledger.open(load_settings())
    try:
        print_migration_notes(ledger)
        if args.csv:
            sys.stdout.write(usage.statement_csv(ledger, period))
            return EXIT_OK
        found = usage.overview(ledger, period)
        unfinished = ledger.unfinished_by_backend()
    finally:
        ledger.close()
    print(f"Credits, last {args.days} days ({period.label()}, UTC; ledger: {ledger.display_url})")
    for key, count in sorted(unfinished.items()):
        print(f"  {count} unfinished job(s) for {describe_backend(key)}")
    if found.metrics.balance is None:
        print("No credit readings yet: they are recorded with every submission.")
        return EXIT_OK
    for label, value in usage.metric_lines(found.metrics):
        print(f"  {label:<21}{value}")
    if found.metrics.warning:
        print(f"  Warning: fewer than {usage.WARN_DAYS} days of credits left at this rate.")
    print()
    print("Statement by day (opening - spent - outside + top-ups = closing)")
    print(f"  {'day':<12}{'opening':>10}{'spent':>9}{'outside':>9}{'top-ups':>9}{'closing':>10}")
    for day in found.statement:
        print(
            f"  {day.day.isoformat():<12}{day.opening:>10,}{day.spent:>9,}{day.outside:>9,}"
            f"{day.topups:>9,}{day.closing:>10,}"
        )
    return EXIT_OK
