"""The Usage figures after Studio spends on the local sandbox from several processes at once:
`mirrago batch` and `mirrago try-on` (each with its own embedded sandbox) while the app's
services make try-ons, all on one data dir. Every credit was spent by Studio, so nothing may
show as used outside Studio or as a top-up, and the balance is the starting credits less what
was spent."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from support import cli_env

from mirrago import usage
from mirrago.config import load_settings
from mirrago.intents import start_try_on
from mirrago.ledger import JobInput, JobState
from mirrago.samples import garments, persons
from mirrago.sandbox.server import Engine, SandboxConfig
from mirrago.services import open_services
from mirrago.usage import Period

pytestmark = [pytest.mark.app, pytest.mark.slow]

STARTING = SandboxConfig().starting_credits
BATCH_ROWS = 8
PAGE_TRY_ONS = 4
LATENCY = "0.05-0.3"
RUN_TIMEOUT = 90  # a deadline for one AppTest run on a busy machine


def _batch_file(path: Path) -> Path:
    people, clothes = persons(), garments()
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["target_image_url", "garment_image_url", "background", "username"])
        for i in range(BATCH_ROWS):
            person, garment = people[i % len(people)], clothes[i % len(clothes)]
            writer.writerow([str(person.path), str(garment.path), "", f"qa-{i}"])
    return path


def _mirrago(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mirrago", *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finished(process: subprocess.Popen[str]) -> None:
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0, (out, err)


def test_cli_and_page_try_ons_on_the_sandbox_add_up_to_one_balance(
    workdir: Path, monkeypatch
) -> None:
    env = {**cli_env(None, workdir), "MIRRAGO_SANDBOX_LATENCY": LATENCY}
    monkeypatch.setenv("MIRRAGO_SANDBOX_LATENCY", LATENCY)
    people, clothes = persons(), garments()
    batch = _mirrago(
        [
            "batch",
            str(_batch_file(workdir / "pairs.csv")),
            "--out-dir",
            str(workdir / "out"),
            "--name",
            "CLI batch",
        ],
        env,
        workdir,
    )
    # Meanwhile the app's services (their own embedded sandbox) make the page's try-ons.
    with open_services(load_settings()) as services:
        rows = []
        for i in range(PAGE_TRY_ONS):
            job = JobInput(str(people[i % len(people)].path), str(clothes[-1 - i].path))
            row, new = start_try_on(services.runner, services.ledger, job, again=True)
            assert new and row is not None
            rows.append(row)
        single = _mirrago(
            [
                "try-on",
                str(people[0].path),
                str(clothes[0].path),
                "--out",
                str(workdir / "one.png"),
            ],
            env,
            workdir,
        )
        for row in rows:
            counts = services.runner.wait(row.batch_id, timeout=120)
            assert counts[JobState.COMPLETED] == 1, counts
        _finished(batch)
        _finished(single)
        ledger = services.ledger
        spent = BATCH_ROWS + PAGE_TRY_ONS + 1
        assert ledger.counts()[JobState.COMPLETED] == spent
        metrics = usage.overview(ledger, Period.last(None)).metrics
        assert (metrics.outside, metrics.topups, metrics.spent) == (0, 0, spent)
        assert metrics.balance == STARTING - spent
        latest = usage.latest_balance(ledger)
        assert latest is not None and latest.credits == STARTING - spent

    account = Engine(SandboxConfig(credits_file=workdir / "data" / "sandbox-credits.sqlite3"))
    try:
        assert account.credits(SandboxConfig().client_id) == STARTING - spent
    finally:
        account.stop()

    at = AppTest.from_file("../app.py", default_timeout=RUN_TIMEOUT)
    at.run()
    at.switch_page("pages/usage.py").run()
    assert not at.exception, at.exception
    shown = {metric.label: metric.value for metric in at.main.metric}
    assert shown["Used outside Studio"] == "0", shown
    assert shown["Balance"] == f"{STARTING - spent:,}", shown
    assert shown["Spent"] == str(spent), shown
    assert at.sidebar.metric[0].value == f"{STARTING - spent:,}"
