"""`mirrago batch` and `mirrago usage` end to end: CSV checks, results.csv, resuming, Ctrl-C
and SIGKILL, against a real sandbox on loopback and a real SQLite ledger."""

from __future__ import annotations

import csv
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import cli_env

from mirrago.cli import main
from mirrago.ledger import JobState, Ledger
from mirrago.samples import garments, persons
from mirrago.sandbox.server import EmbeddedSandbox

PERSON = persons()[0].path
GARMENT = garments()[0].path
HEADER = ["target_image_url", "garment_image_url", "background", "username"]


@pytest.fixture
def point_at(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> Iterator[Callable[..., None]]:
    """Point the CLI at a sandbox; afterwards, check it created at most one job per row."""
    used: list[EmbeddedSandbox] = []

    def configure(sandbox: EmbeddedSandbox, secret: str | None = None) -> None:
        used.append(sandbox)
        monkeypatch.setenv("MIRRAGO_BASE_URL", sandbox.base_url)
        monkeypatch.setenv("MIRRAGO_CLIENT_ID", sandbox.client_id)
        monkeypatch.setenv("MIRRAGO_CLIENT_SECRET", secret or sandbox.client_secret)

    yield configure
    rows = 0
    if (workdir / "data" / "ledger.sqlite3").exists():
        ledger = ledger_of(workdir)
        rows = len(ledger.jobs())
        ledger.close()
    for sandbox in used:  # in every test: no row was submitted twice
        assert sandbox.engine.stats()["jobs_created"] <= rows


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def sample_urls(sandbox: EmbeddedSandbox, count: int) -> list[list[str]]:
    people, clothes = persons(), garments()
    return [
        [
            f"{sandbox.base_url}/samples/persons/{people[i % len(people)].path.name}",
            f"{sandbox.base_url}/samples/garments/{clothes[i % len(clothes)].path.name}",
            "",
            f"qa-{i}",
        ]
        for i in range(count)
    ]


def read_results(out_dir: Path) -> list[dict[str, str]]:
    with (out_dir / "results.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def ledger_of(workdir: Path) -> Ledger:
    return Ledger(f"sqlite:///{workdir / 'data' / 'ledger.sqlite3'}")


# --------------------------------------------------------------------------- running a batch


def test_batch_runs_every_row_and_writes_results_in_input_order(
    make_sandbox: Callable[..., EmbeddedSandbox], point_at, workdir: Path, capsys
) -> None:
    sandbox = make_sandbox(workers=4)
    point_at(sandbox)
    photos = workdir / "photos"
    photos.mkdir()
    shutil.copy(PERSON, photos / "me.jpg")
    rows = sample_urls(sandbox, 4)
    rows.insert(2, ["photos/me.jpg", str(GARMENT), "white", ""])  # paths: relative or absolute
    source = write_csv(workdir / "pairs.csv", rows)

    code = main(["batch", str(source), "--out-dir", str(workdir / "out")])

    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.strip() == str(workdir / "out" / "results.csv")
    assert "row" in captured.err and "done=" in captured.err  # the progress bar
    results = read_results(workdir / "out")
    assert [r["target_image_url"] for r in results] == [row[0] for row in rows]
    assert [r["username"] for r in results] == [row[3] for row in rows]
    assert list(results[0]) == HEADER + [
        "job_id",
        "status",
        "error",
        "result_url",
        "result_file",
        "credits_before",
        "submitted_at",
        "finished_at",
        "suspect_score",
        "flags",
    ]
    for result in results:
        assert result["status"] == "completed" and result["job_id"] and result["result_url"]
        assert (workdir / "out" / result["result_file"]).is_file()
        assert result["credits_before"].isdigit() and result["finished_at"]
    assert sandbox.engine.stats()["jobs_created"] <= len(rows)


def test_a_failed_row_exits_1_and_carries_the_server_message(
    make_sandbox: Callable[..., EmbeddedSandbox], point_at, workdir: Path, capsys
) -> None:
    sandbox = make_sandbox(job_fail_rate=1.0)
    point_at(sandbox)
    source = write_csv(workdir / "pairs.csv", sample_urls(sandbox, 2))

    code = main(["batch", str(source), "--out-dir", str(workdir / "out")])

    assert code == 1
    results = read_results(workdir / "out")
    assert {r["status"] for r in results} == {"failed"}
    assert all("garment could not be fitted" in r["error"] for r in results)
    assert sandbox.engine.stats()["jobs_created"] <= 2


def test_running_the_same_command_again_redoes_nothing(
    make_sandbox: Callable[..., EmbeddedSandbox], point_at, workdir: Path, capsys
) -> None:
    sandbox = make_sandbox()
    point_at(sandbox)
    source = write_csv(workdir / "pairs.csv", sample_urls(sandbox, 3))
    argv = ["batch", str(source), "--out-dir", str(workdir / "out")]
    assert main(argv) == 0
    first = read_results(workdir / "out")
    requests = sandbox.engine.stats()["generate_requests"]

    assert main(argv) == 0

    assert "Resuming batch" in capsys.readouterr().err
    assert read_results(workdir / "out") == first
    assert sandbox.engine.stats()["generate_requests"] == requests
    assert sandbox.engine.stats()["jobs_created"] <= 3


def test_another_csv_into_the_same_out_dir_is_refused(
    make_sandbox: Callable[..., EmbeddedSandbox], point_at, workdir: Path, capsys
) -> None:
    sandbox = make_sandbox()
    point_at(sandbox)
    rows = sample_urls(sandbox, 2)
    assert main(["batch", str(write_csv(workdir / "a.csv", rows)), "--out-dir", "out"]) == 0
    capsys.readouterr()
    changed = write_csv(workdir / "b.csv", [rows[0], rows[0]])

    code = main(["batch", str(changed), "--out-dir", "out"])

    errors = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "different CSV" in errors[-1] and "line 3" in errors[-1]
    assert sandbox.engine.stats()["jobs_created"] == 2


def test_a_wrong_secret_exits_3_and_leaves_the_rows_for_later(
    make_sandbox: Callable[..., EmbeddedSandbox], point_at, workdir: Path, capsys
) -> None:
    sandbox = make_sandbox()
    point_at(sandbox, secret="not-the-secret-0123")
    source = write_csv(workdir / "pairs.csv", sample_urls(sandbox, 5))

    code = main(["batch", str(source), "--out-dir", str(workdir / "out")])

    captured = capsys.readouterr()
    assert code == 3
    assert "secret" in captured.err.strip().splitlines()[-1].lower()
    assert "not-the-secret-0123" not in captured.out + captured.err
    statuses = [r["status"] for r in read_results(workdir / "out")]
    assert len(statuses) == 5 and "queued" in statuses
    assert sandbox.engine.stats()["generate_requests"] == 0


def test_a_timeout_exits_3_and_the_next_run_picks_up_the_jobs_in_progress(
    make_sandbox: Callable[..., EmbeddedSandbox], point_at, workdir: Path, capsys
) -> None:
    sandbox = make_sandbox(latency=3.0)
    point_at(sandbox)
    source = write_csv(workdir / "pairs.csv", sample_urls(sandbox, 2))
    argv = ["batch", str(source), "--out-dir", str(workdir / "out")]

    code = main([*argv, "--timeout", "1"])

    errors = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and "did not finish within 1 s" in errors[-1]
    assert {r["status"] for r in read_results(workdir / "out")} == {"submitted"}
    assert main(argv) == 0
    assert {r["status"] for r in read_results(workdir / "out")} == {"completed"}
    assert sandbox.engine.stats()["jobs_created"] == 2


# --------------------------------------------------------------------------- malformed CSVs


def _malformed(workdir: Path, base_url: str) -> dict[str, tuple[bytes, list[str]]]:
    person = f"{base_url}/samples/persons/{PERSON.name}"
    garment = f"{base_url}/samples/garments/{GARMENT.name}"
    notes = workdir / "notes.jpg"
    notes.write_text("this is not a photo")
    rows = "\n".join(
        [
            ",".join(HEADER),
            f"{person},{garment},,",
            f",{garment},,",  # line 3: empty cell
            f"ftp://example.com/a.jpg,{garment},,",  # line 4: bad URL scheme
            f"{person},missing/garment.png,,",  # line 5: no such file
            f"{person},{notes},,",  # line 6: not an image
            f"{person},{garment},purple,",  # line 7: unknown background
            f"{person},{garment},,,extra",  # line 8: too many values
        ]
    )
    return {
        "bad rows": (
            rows.encode(),
            [
                "line 3: target_image_url is empty",
                "line 4: target_image_url 'ftp://example.com/a.jpg' is not an http(s) URL",
                "line 5: garment_image_url 'missing/garment.png': no such file",
                "line 6: garment_image_url",
                "line 7: background 'purple'",
                "line 8: 5 values but the header has 4 columns",
            ],
        ),
        "missing column": (
            f"target_image_url,username\n{person},x\n".encode(),
            ["line 1: missing column 'garment_image_url'"],
        ),
        "duplicate header": (
            f"target_image_url,garment_image_url,target_image_url\n{person},{garment},x\n".encode(),
            ["line 1: column 'target_image_url' appears twice"],
        ),
        "wrong encoding": (
            f"target_image_url,garment_image_url,username\n{person},{garment},José\n".encode(
                "latin-1"
            ),
            ["line 2: the file is not UTF-8"],
        ),
        "empty file": (b"", ["line 1: the file is empty"]),
        "header only": (b"target_image_url,garment_image_url\n", ["no rows"]),
        "semicolons": (
            f"target_image_url;garment_image_url\n{person};{garment}\n".encode(),
            ["separated by semicolons"],
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "bad rows",
        "missing column",
        "duplicate header",
        "wrong encoding",
        "empty file",
        "header only",
        "semicolons",
    ],
)
def test_a_malformed_csv_exits_2_listing_every_problem_and_submits_nothing(
    case: str, make_sandbox: Callable[..., EmbeddedSandbox], point_at, workdir: Path, capsys
) -> None:
    sandbox = make_sandbox()
    point_at(sandbox)
    content, expected = _malformed(workdir, sandbox.base_url)[case]
    source = workdir / "pairs.csv"
    source.write_bytes(content)

    code = main(["batch", str(source), "--out-dir", str(workdir / "out")])

    captured = capsys.readouterr()
    errors = captured.err.strip().splitlines()
    assert code == 2
    assert errors[0].startswith("mirrago: ") and "nothing was submitted" in errors[0]
    assert len(errors) == 1 + len(expected), errors
    for line, problem in zip(errors[1:], expected, strict=True):
        assert problem in line
    assert sandbox.engine.stats()["generate_requests"] == 0
    assert sandbox.engine.stats()["token_requests"] == 0
    assert not (workdir / "out" / "results.csv").exists()


def test_a_utf8_csv_with_a_byte_order_mark_is_read(
    make_sandbox: Callable[..., EmbeddedSandbox], point_at, workdir: Path
) -> None:
    sandbox = make_sandbox()
    point_at(sandbox)
    person, garment, _, _ = sample_urls(sandbox, 1)[0]
    source = workdir / "excel.csv"
    source.write_bytes(
        f"target_image_url,garment_image_url,username\n{person},{garment},José\n".encode(
            "utf-8-sig"
        )
    )

    assert main(["batch", str(source), "--out-dir", str(workdir / "out")]) == 0
    assert read_results(workdir / "out")[0]["username"] == "José"


def test_skip_invalid_runs_the_valid_rows_and_reports_the_others(
    make_sandbox: Callable[..., EmbeddedSandbox], point_at, workdir: Path, capsys
) -> None:
    sandbox = make_sandbox()
    point_at(sandbox)
    rows = sample_urls(sandbox, 2)
    rows.insert(1, ["", rows[0][1], "", ""])
    source = write_csv(workdir / "pairs.csv", rows)

    code = main(["batch", str(source), "--out-dir", str(workdir / "out"), "--skip-invalid"])

    assert code == 1
    results = read_results(workdir / "out")
    assert [r["status"] for r in results] == ["completed", "invalid", "completed"]
    assert results[1]["error"] == "target_image_url is empty"
    assert "line 3" in capsys.readouterr().err
    assert sandbox.engine.stats()["jobs_created"] == 2


FORMULAS = [
    '=HYPERLINK("http://attacker.invalid/x","click")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+2",
    "\r=1+2",
]


def test_results_csv_keeps_formula_cells_as_text(
    make_sandbox: Callable[..., EmbeddedSandbox], point_at, workdir: Path
) -> None:
    """A spreadsheet opening results.csv runs cells that start like a formula: every cell
    from the input (known and unknown columns, the header too) and the error text are
    written with a leading quote, as the page's Results CSV writes them."""
    sandbox = make_sandbox()
    point_at(sandbox)
    rows = [
        [person, garment, "", formula, formula]
        for (person, garment, _, _), formula in zip(
            sample_urls(sandbox, len(FORMULAS)), FORMULAS, strict=True
        )
    ]
    rows.append(["", rows[0][1], "", "=1+1", "ok"])  # an invalid row is written too
    source = write_csv(workdir / "pairs.csv", rows, header=[*HEADER, "=notes"])

    code = main(["batch", str(source), "--out-dir", str(workdir / "out"), "--skip-invalid"])

    assert code == 1
    results = read_results(workdir / "out")
    assert "'=notes" in results[0] and "=notes" not in results[0]
    for result, formula in zip(results, FORMULAS, strict=False):
        assert result["status"] == "completed"
        assert result["username"] == result["'=notes"] == "'" + formula
    assert results[-1]["status"] == "invalid" and results[-1]["username"] == "'=1+1"
    assert results[-1]["'=notes"] == "ok"


# --------------------------------------------------------------------------- usage
# `mirrago usage` is tested with the Usage figures, in test_usage.py.


# --------------------------------------------------------------------------- interruptions


def _start_batch(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mirrago", "batch", *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_counts(
    workdir: Path, process: subprocess.Popen[str], ready: Callable[[dict[JobState, int]], bool]
) -> dict[JobState, int]:
    deadline = time.monotonic() + 60
    ledger_file = workdir / "data" / "ledger.sqlite3"
    ledger = None
    try:
        while time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()
            if ledger is None and ledger_file.exists():
                ledger = ledger_of(workdir)
            if ledger is not None:
                counts = ledger.counts()
                if ready(counts):
                    return counts
            time.sleep(0.005)
    finally:
        if ledger is not None:
            ledger.close()
    raise AssertionError("the batch never reached the expected point")


@pytest.mark.slow
def test_a_batch_killed_with_sigkill_loses_nothing_and_submits_nothing_twice(
    make_sandbox: Callable[..., EmbeddedSandbox], workdir: Path
) -> None:
    # Each submission's answer lags 1.5 s after its job exists: a kill mid-submission is sure to
    # catch some, however busy the machine is.
    sandbox = make_sandbox(latency=(0.2, 0.6), workers=4, answer_delay=1.5)
    rows = sample_urls(sandbox, 40)
    source = write_csv(workdir / "pairs.csv", rows)
    argv = [str(source), "--out-dir", str(workdir / "out")]
    env = cli_env(sandbox, workdir)

    first = _start_batch(argv, env, workdir)
    _wait_for_counts(
        workdir,
        first,
        lambda c: c[JobState.SUBMITTED] >= 4 and c[JobState.SUBMITTING] >= 2,
    )
    first.send_signal(signal.SIGKILL)
    first.wait(10)

    ledger = ledger_of(workdir)
    caught = {row.id for row in ledger.jobs(states=[JobState.SUBMITTING])}
    in_progress = {row.id: row.job_id for row in ledger.jobs(states=[JobState.SUBMITTED])}
    assert caught, "no row was caught mid-submission"

    second = subprocess.run(
        [sys.executable, "-m", "mirrago", "batch", *argv],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert second.returncode == 1, second.stderr  # the caught rows are uncertain
    results = read_results(workdir / "out")
    assert [r["target_image_url"] for r in results] == [row[0] for row in rows]
    final = {row.id: row for row in ledger.jobs()}
    ledger.close()
    assert all(row.state.is_final for row in final.values())
    assert {i for i, row in final.items() if row.state is JobState.UNCERTAIN} == caught
    for row_id in caught:
        assert final[row_id].job_id is None and final[row_id].attempts == 1
    for row_id, job_id in in_progress.items():  # polled again, not resubmitted
        assert final[row_id].job_id == job_id and final[row_id].state is JobState.COMPLETED
    job_ids = [row.job_id for row in final.values() if row.job_id]
    assert len(job_ids) == len(set(job_ids))
    stats = sandbox.engine.stats()
    assert stats["jobs_created"] <= len(rows)
    assert stats["jobs_created"] <= len(job_ids) + len(caught)
    assert sum(r["status"] == "completed" for r in results) == len(rows) - len(caught)


@pytest.mark.slow
def test_ctrl_c_stops_submitting_writes_results_and_exits_130(
    make_sandbox: Callable[..., EmbeddedSandbox], workdir: Path
) -> None:
    sandbox = make_sandbox(latency=(0.2, 0.4), workers=2)
    rows = sample_urls(sandbox, 40)
    source = write_csv(workdir / "pairs.csv", rows)
    argv = [str(source), "--out-dir", str(workdir / "out")]
    env = cli_env(sandbox, workdir)

    first = _start_batch(argv, env, workdir)
    _wait_for_counts(workdir, first, lambda c: c[JobState.SUBMITTED] + c[JobState.COMPLETED] >= 3)
    first.send_signal(signal.SIGINT)
    _, errors = first.communicate(timeout=60)

    assert first.returncode == 130, errors
    assert "stopping" in errors and "run the same command again" in errors
    results = read_results(workdir / "out")
    assert len(results) == 40 and "queued" in {r["status"] for r in results}
    ledger = ledger_of(workdir)
    assert ledger.counts()[JobState.SUBMITTING] == 0  # every call in flight was recorded
    ledger.close()
    submitted = sandbox.engine.stats()["generate_requests"]
    time.sleep(0.3)
    assert sandbox.engine.stats()["generate_requests"] == submitted

    second = subprocess.run(
        [sys.executable, "-m", "mirrago", "batch", *argv],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert second.returncode == 0, second.stderr
    assert {r["status"] for r in read_results(workdir / "out")} == {"completed"}
    assert sandbox.engine.stats()["jobs_created"] <= 40
