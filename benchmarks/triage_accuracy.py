"""Benchmark: how well the quality checks tell good results from each kind of defect.

    .venv/bin/python benchmarks/triage_accuracy.py [--out DIR]

The test set (`mirrago.triage.testset`): the sandbox renderer's real renders of every shipped
person × garment (the good results), and from each render every defect kind: the person photo
back unchanged, the face blurred, the face replaced, the background replaced, the garment
recoloured, the garment's print flattened (printed garments only), a heavy blur, heavy JPEG
blocking, a crop. Every result is checked from its files.

Prints, per defect kind, the share flagged with its own code; the share of good renders
flagged with anything; and the ROC AUC of the suspect score (every defect vs good). Exits 1
unless every kind is >= 80 %, good renders <= 15 %, and AUC >= 0.9.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mirrago.triage import check_result  # noqa: E402
from mirrago.triage.testset import DEFECT_FLAGS, good_renders, write_cases  # noqa: E402

MIN_OWN_FLAG = 0.80
MAX_GOOD_FLAGGED = 0.15
MIN_AUC = 0.90


def roc_auc(positives: list[float], negatives: list[float]) -> float:
    """The chance that a random defect scores above a random good result (ties count half)."""
    if not positives or not negatives:
        return float("nan")
    wins = 0.0
    for p in positives:
        for n in negatives:
            wins += 1.0 if p > n else 0.5 if p == n else 0.0
    return wins / (len(positives) * len(negatives))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="keep the test set's files in this folder")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.out or Path(scratch)
        cases = write_cases(good_renders(), folder)
        checked = [(case, check_result(case.person, case.garment, case.result)) for case in cases]
    by_kind: dict[str, list] = defaultdict(list)
    for case, found in checked:
        by_kind[case.kind].append(found)
    good = by_kind.pop("good")
    passed = True
    print(f"{'kind':<22}{'cases':>6}  own flag")
    for kind, flag in DEFECT_FLAGS.items():
        found = by_kind.get(kind, [])
        share = sum(flag in f.flags for f in found) / max(1, len(found))
        ok = share >= MIN_OWN_FLAG
        passed &= ok
        print(f"{kind:<22}{len(found):>6}  {share:6.1%} {flag}{'' if ok else '  MISS'}")
    good_flagged = sum(bool(f.flags) for f in good) / max(1, len(good))
    ok = good_flagged <= MAX_GOOD_FLAGGED
    passed &= ok
    miss = "" if ok else "  MISS"
    print(f"{'good':<22}{len(good):>6}  {good_flagged:6.1%} flagged with anything{miss}")
    defects = [f.score for found in by_kind.values() for f in found]
    auc = roc_auc(defects, [f.score for f in good])
    ok = auc >= MIN_AUC
    passed &= ok
    print(f"ROC AUC of the suspect score, defect vs good: {auc:.3f}{'' if ok else '  MISS'}")
    seconds = time.perf_counter() - started
    print(
        f"{len(checked)} results in {seconds:.0f} s; targets: own flag >= {MIN_OWN_FLAG:.0%}, "
        f"good flagged <= {MAX_GOOD_FLAGGED:.0%}, AUC >= {MIN_AUC}"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
