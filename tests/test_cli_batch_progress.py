"""The terminal progress bar of a batch: `mirrago batch` and `mirrago batch --follow` draw the
same one, so they give the same counts for the same rows."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from mirrago.cli import main
from mirrago.ledger import JobState, Ledger
from mirrago.samples import garments, persons
from mirrago.sandbox.server import EmbeddedSandbox

COUNTS = re.compile(r"done=\d+ failed=\d+(?: unconfirmed=\d+)?")


def last_counts(stderr: str) -> str:
    """The counts the progress bar showed last (its final drawing)."""
    found = COUNTS.findall(stderr)
    assert found, f"no progress bar in {stderr!r}"
    return found[-1]


def test_batch_and_follow_count_an_uncertain_row_the_same_way(
    make_sandbox: Callable[..., EmbeddedSandbox],
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Every submission is answered with a plain 500: whether a job was created is unknown.
    sandbox = make_sandbox(submit_fail_rate=1.0)
    monkeypatch.setenv("MIRRAGO_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("MIRRAGO_CLIENT_ID", sandbox.client_id)
    monkeypatch.setenv("MIRRAGO_CLIENT_SECRET", sandbox.client_secret)
    source = workdir / "pairs.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["target_image_url", "garment_image_url"])
        writer.writerows([[str(persons()[i].path), str(garments()[i].path)] for i in range(2)])

    assert main(["batch", str(source), "--out-dir", str(workdir / "out")]) == 1
    ran = capsys.readouterr().err
    ledger = Ledger(f"sqlite:///{workdir / 'data' / 'ledger.sqlite3'}")
    [batch] = ledger.batches()
    assert {row.state for row in ledger.jobs(batch_id=batch.id)} == {JobState.UNCERTAIN}
    ledger.close()
    assert main(["batch", "--follow", str(batch.id)]) == 1
    followed = capsys.readouterr().err

    # An uncertain row is not a failure (its job may exist and have spent a credit): both
    # bars show it on its own, so nobody retries it as if it had failed.
    assert last_counts(ran) == last_counts(followed) == "done=0 failed=0 unconfirmed=2"
