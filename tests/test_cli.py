"""`mirrago try-on` end to end against the sandbox: results, exit codes and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageChops
from support import SECRET_ENV, cli_env

from mirrago.cli import main
from mirrago.samples import garments, persons

PERSON = persons()[0].path
GARMENT = garments()[0].path


@pytest.fixture
def point_at(monkeypatch: pytest.MonkeyPatch, workdir: Path):
    """Point the CLI at a given sandbox through the environment; afterwards, check that the
    sandbox created at most one job per try-on (at most one job per row, in every test)."""
    used = []

    def configure(sandbox, secret: str | None = None) -> None:
        used.append(sandbox)
        monkeypatch.setenv("MIRRAGO_BASE_URL", sandbox.base_url)
        monkeypatch.setenv("MIRRAGO_CLIENT_ID", sandbox.client_id)
        monkeypatch.setenv("MIRRAGO_CLIENT_SECRET", secret or sandbox.client_secret)

    yield configure
    for sandbox in used:
        assert sandbox.engine.stats()["jobs_created"] <= 1


def _stderr_lines(capsys: pytest.CaptureFixture[str]) -> tuple[str, list[str]]:
    captured = capsys.readouterr()
    return captured.out, [line for line in captured.err.splitlines() if line.strip()]


def _differs(result: Path, source: Path) -> float:
    """Mean absolute pixel difference (0–255) between two images at the result's size."""
    with Image.open(result) as out, Image.open(source) as src:
        a = out.convert("RGB")
        b = src.convert("RGB").resize(a.size)
        histogram = ImageChops.difference(a, b).convert("L").histogram()
    return sum(value * count for value, count in enumerate(histogram)) / (a.width * a.height)


def test_try_on_writes_a_composite_of_both_inputs(make_sandbox, point_at, workdir, capsys):
    sandbox = make_sandbox(latency=0.1)
    point_at(sandbox)
    out = workdir / "result.png"

    code = main(["try-on", str(PERSON), str(GARMENT), "--out", str(out)])

    stdout, _ = _stderr_lines(capsys)
    assert code == 0
    assert stdout.strip() == str(out)
    assert _differs(out, PERSON) > 3, "the result must not be a copy of the person"
    assert _differs(out, GARMENT) > 3, "the result must not be a copy of the garment"


def test_try_on_uses_one_token_and_prints_no_secret(make_sandbox, point_at, workdir, capsys):
    sandbox = make_sandbox(latency=0.3)
    point_at(sandbox)

    code = main(["try-on", str(PERSON), str(GARMENT), "--json"])

    captured = capsys.readouterr()
    assert code == 0
    assert sandbox.engine.stats()["token_requests"] == 1
    assert sandbox.client_secret not in captured.out + captured.err
    assert '"status": "completed"' in captured.out


def test_try_on_completes_against_the_reference_to_the_letter(
    make_sandbox, point_at, workdir, capsys
):
    sandbox = make_sandbox(latency=0.3, strict_reference=True, rate_limit=1)
    point_at(sandbox)

    code = main(["try-on", str(PERSON), str(GARMENT), "--out", str(workdir / "r.png")])

    assert code == 0, capsys.readouterr().err
    assert (workdir / "r.png").stat().st_size > 0


def test_try_on_accepts_urls(make_sandbox, point_at, workdir, capsys):
    sandbox = make_sandbox(latency=0.1)
    point_at(sandbox)
    person_url = f"{sandbox.base_url}/samples/persons/{PERSON.name}"
    garment_url = f"{sandbox.base_url}/samples/garments/{GARMENT.name}"

    code = main(["try-on", person_url, garment_url, "--out", str(workdir / "r.png")])

    assert code == 0, capsys.readouterr().err


def test_wrong_secret_is_one_line_and_exit_3(make_sandbox, point_at, workdir, capsys):
    sandbox = make_sandbox(latency=0.1)
    wrong = "not-the-secret-0123456789"
    point_at(sandbox, secret=wrong)

    code = main(["try-on", str(PERSON), str(GARMENT)])

    stdout, errors = _stderr_lines(capsys)
    assert code == 3
    assert len([e for e in errors if e.startswith("mirrago")]) == 1
    assert "secret" in errors[-1].lower()
    assert wrong not in stdout + "\n".join(errors)
    assert sandbox.engine.stats()["generate_requests"] == 0


def test_failed_job_exits_1_with_the_server_message(make_sandbox, point_at, workdir, capsys):
    sandbox = make_sandbox(latency=0.1, job_fail_rate=1.0)
    point_at(sandbox)

    code = main(["try-on", str(PERSON), str(GARMENT)])

    _, errors = _stderr_lines(capsys)
    assert code == 1
    assert errors[-1].startswith("mirrago: job ") and "failed:" in errors[-1]
    assert "the server gave no reason" not in errors[-1]


def test_unreachable_server_exits_3(monkeypatch, workdir, capsys):
    monkeypatch.setenv("MIRRAGO_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("MIRRAGO_CLIENT_ID", "someone")
    monkeypatch.setenv("MIRRAGO_CLIENT_SECRET", "something-secret")

    code = main(["try-on", str(PERSON), str(GARMENT)])

    stdout, errors = _stderr_lines(capsys)
    assert code == 3
    assert "something-secret" not in stdout + "\n".join(errors)
    assert errors[-1].startswith("mirrago: ")


def _bad_inputs(tmp: Path) -> dict[str, tuple[list[str], str]]:
    text = tmp / "notes.txt"
    text.write_text("this is not a photo")
    empty = tmp / "empty.jpg"
    empty.write_bytes(b"")
    truncated = tmp / "truncated.jpg"
    truncated.write_bytes(PERSON.read_bytes()[:2000])
    p, g = str(PERSON), str(GARMENT)
    return {
        "missing file": (["try-on", str(tmp / "nope.jpg"), g], "no such file"),
        "text file": (["try-on", str(text), g], "not an image"),
        "empty file": (["try-on", p, str(empty)], "empty"),
        "truncated file": (["try-on", str(truncated), g], "truncated"),
        "ftp url": (["try-on", "ftp://example.com/a.jpg", g], "http(s) URL"),
        "bad timeout": (["try-on", p, g, "--timeout", "soon"], "--timeout"),
        "bad background": (["try-on", p, g, "--background", "purple"], "--background"),
        "missing garment": (["try-on", p], "GARMENT"),
        "missing out folder": (["try-on", p, g, "--out", str(tmp / "no" / "r.png")], "folder"),
        "unknown command": (["dress-up"], "invalid choice"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing file",
        "text file",
        "empty file",
        "truncated file",
        "ftp url",
        "bad timeout",
        "bad background",
        "missing garment",
        "missing out folder",
        "unknown command",
    ],
)
def test_bad_input_exits_2_with_one_line_naming_it(case, make_sandbox, point_at, workdir, capsys):
    sandbox = make_sandbox(latency=0.1)
    point_at(sandbox)
    argv, expected = _bad_inputs(workdir)[case]

    code = main(argv)

    stdout, errors = _stderr_lines(capsys)
    assert code == 2
    assert len(errors) == 1, errors
    assert expected.lower() in errors[0].lower()
    assert sandbox.engine.stats()["generate_requests"] == 0


def test_image_url_the_server_cannot_fetch_exits_2(make_sandbox, point_at, workdir, capsys):
    sandbox = make_sandbox(latency=0.1)
    point_at(sandbox)

    code = main(["try-on", f"{sandbox.base_url}/samples/persons/missing.jpg", str(GARMENT)])

    _, errors = _stderr_lines(capsys)
    assert code == 2
    assert "url" in errors[-1].lower()
    assert sandbox.engine.stats()["jobs_created"] == 0


@pytest.mark.slow
def test_console_script_runs_on_the_embedded_sandbox(tmp_path: Path):
    env = cli_env(None, tmp_path)  # the embedded sandbox
    out = tmp_path / "result.png"

    finished = subprocess.run(
        [sys.executable, "-m", "mirrago", "try-on", str(PERSON), str(GARMENT), "--out", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert finished.returncode == 0, finished.stderr
    assert "Sandbox (local)" in finished.stderr
    assert out.is_file() and _differs(out, PERSON) > 3


def test_try_on_goes_through_the_runner_and_the_ledger(make_sandbox, point_at, workdir, capsys):
    from mirrago.ledger import JobState, Ledger

    sandbox = make_sandbox(latency=0.1)
    point_at(sandbox)

    code = main(["try-on", str(PERSON), str(GARMENT), "--json"])

    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    ledger = Ledger(f"sqlite:///{workdir / 'data' / 'ledger.sqlite3'}")
    try:
        [row] = ledger.jobs()
        assert row.state is JobState.COMPLETED and row.job_id == printed["job_id"]
        assert row.target == str(PERSON.resolve()) and row.result_path
        assert [r.job_id for r in ledger.credit_readings()] == [row.job_id]
    finally:
        ledger.close()


def test_sandbox_on_a_busy_port_is_one_line_and_exit_2(capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        code = main(["sandbox", "--port", str(port)])

    _, errors = _stderr_lines(capsys)
    assert code == 2
    assert errors[-1].startswith("mirrago: cannot listen on") and "--port" in errors[-1]


def test_debug_shows_the_traceback_and_plain_runs_do_not(workdir, capsys):
    plain = main(["try-on", "missing.jpg", str(GARMENT)])
    plain_err = capsys.readouterr().err

    debug = main(["--debug", "try-on", "missing.jpg", str(GARMENT)])
    debug_err = capsys.readouterr().err

    assert plain == debug == 2
    assert "Traceback" not in plain_err
    assert "Traceback (most recent call last)" in debug_err
    assert debug_err.rstrip().splitlines()[-1] == plain_err.strip()


def test_try_on_prints_no_state_before_a_job_id_exists(make_sandbox, point_at, workdir, capsys):
    # Once, "queued (0.0 s)" came out before anything was sent.
    sandbox = make_sandbox(latency=0.3)
    point_at(sandbox)
    code = main(["try-on", str(PERSON), str(GARMENT), "--out", str(workdir / "r.png")])
    _, errors = _stderr_lines(capsys)
    assert code == 0
    submitted = next(i for i, line in enumerate(errors) if line.startswith("Submitted job"))
    states = [i for i, line in enumerate(errors) if line.startswith("  ")]
    assert all(i > submitted for i in states), errors
    assert not any(line.strip().startswith(("queued", "submitting")) for line in errors)


def test_usage_reads_the_same_ledger_from_any_folder(tmp_path: Path, monkeypatch, capsys):
    # Once, the data dir defaulted to the working directory, so `mirrago usage` elsewhere
    # showed nothing. Now a per-user folder, named in the output.
    for name in (*SECRET_ENV, "MIRRAGO_DATA_DIR", "MIRRAGO_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    shown = []
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        assert main(["usage"]) == 0
        shown.append(capsys.readouterr().out.splitlines()[0])
    assert shown[0] == shown[1] and str(tmp_path / "xdg" / "mirrago") in shown[0]
