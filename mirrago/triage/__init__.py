"""Quality triage: every finished result checked against its own person and garment photos.

`check_result` gives a `Triage` (suspect score 0–1, flags from the fixed vocabulary in `flags`,
each check's value, or "not checked" with the reason). `worker.TriageWorker` runs it off the
runner's hot path and records it in the ledger; `testset` makes the checks' test set from real
sandbox renders. Checks never give a verdict: they sort and explain, people judge.
"""

from typing import Any

from mirrago.triage.flags import CHECKS, CHECKS_VERSION, FLAG_CODES, chip, label, suspect_score
from mirrago.triage.result import Triage


def __getattr__(name: str) -> Any:
    # The checks load scipy and scikit-image: only a process that checks pays for them.
    if name == "check_result":
        from mirrago.triage.check import check_result

        return check_result
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CHECKS",
    "CHECKS_VERSION",
    "FLAG_CODES",
    "Triage",
    "check_result",
    "chip",
    "label",
    "suspect_score",
]
