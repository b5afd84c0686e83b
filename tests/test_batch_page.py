"""The Batch page: its UI-free logic (table checks, import, Combine, progress figures, link
checks, the ledger's batch additions, `mirrago batch --follow`) and the page through AppTest
on the embedded sandbox, with a real ledger in a temporary data dir."""

from __future__ import annotations

import io
import os
import re
import struct
import threading
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa
from openpyxl import Workbook
from PIL import Image
from streamlit.testing.v1 import AppTest
from support import eventually

from mirrago import batchprogress, batchtable, linkcheck
from mirrago import ledger as ledger_module
from mirrago.cli import main
from mirrago.config import load_settings
from mirrago.ledger import JobInput, JobState, Ledger, Origin
from mirrago.samples import garments, persons
from mirrago.services import Services
from mirrago.ui import session
from mirrago.ui.batch import images as batch_images

APP = "../app.py"
RUN_TIMEOUT = 30
SANDBOX = "http://127.0.0.1:9/samples"  # only the shape matters to the checks


def url(kind: str, name: str) -> str:
    return f"{SANDBOX}/{kind}/{name}"


# --------------------------------------------------------------------------- table checks


def test_every_bad_row_gets_its_reason_and_good_rows_their_job(tmp_path: Path) -> None:
    person, garment = url("persons", "a.jpg"), url("garments", "b.png")
    table = [
        {"target_image_url": person, "garment_image_url": garment},
        {"target_image_url": "", "garment_image_url": garment},
        {"target_image_url": "ftp://host/a.jpg", "garment_image_url": garment},
        {
            "target_image_url": person,
            "garment_image_url": url("garments", "c.png"),
            "background": "purple",
        },
        {"target_image_url": person, "garment_image_url": garment},
        {"target_image_url": str(tmp_path / "missing.jpg"), "garment_image_url": garment},
    ]
    checked = batchtable.check_table([batchtable.clean_row(r) for r in table])
    assert checked[0].job is not None and checked[0].problem is None
    problems = [c.problem or "" for c in checked[1:]]
    assert "target_image_url is empty" in problems[0]
    assert "not an http(s) URL" in problems[1]
    assert "background 'purple'" in problems[2]
    assert "the same pair as row 1" in problems[3]
    assert "a file path on the server is not accepted here" in problems[4]
    assert all(c.job is None for c in checked[1:])


def test_link_check_findings_mark_the_rows_that_use_the_link() -> None:
    good, bad = url("persons", "a.jpg"), url("persons", "gone.jpg")
    garment = url("garments", "b.png")
    table = [
        batchtable.clean_row({"target_image_url": p, "garment_image_url": garment})
        for p in (good, bad)
    ]
    checked = batchtable.check_table(
        table, link_problems={bad: "unreachable (HTTP 404)", good: None}
    )
    assert checked[0].job is not None
    assert checked[1].job is None and "unreachable (HTTP 404)" in (checked[1].problem or "")


def test_combine_makes_every_person_with_every_garment() -> None:
    rows = batchtable.combine(["p1", "p2", "p3"], ["g1", "g2", "g3", "g4"], "white")
    assert len(rows) == 12
    assert {(r["target_image_url"], r["garment_image_url"]) for r in rows} == {
        (p, g) for p in ("p1", "p2", "p3") for g in ("g1", "g2", "g3", "g4")
    }
    assert all(r["background"] == "white" for r in rows)


def test_sample_rows_add_new_pairs_each_time() -> None:
    first = batchtable.sample_rows("http://127.0.0.1:5")
    second = batchtable.sample_rows("http://127.0.0.1:5", first)
    pairs = {(r["target_image_url"], r["garment_image_url"]) for r in first + second}
    assert len(first) == len(second) == 4 and len(pairs) == 8


def test_import_reads_csv_with_unknown_columns_and_notes_them() -> None:
    data = (
        "target_image_url,garment_image_url,notes,username\n"
        f"{url('persons', 'a.jpg')},{url('garments', 'b.png')},hello,ana\n"
    ).encode()
    imported = batchtable.import_file("pairs.csv", data)
    assert imported.rows == [
        {
            "target_image_url": url("persons", "a.jpg"),
            "garment_image_url": url("garments", "b.png"),
            "background": "",
            "username": "ana",
        }
    ]
    assert any("'notes'" in note for note in imported.notes)


def test_import_accepts_a_header_less_two_column_file() -> None:
    data = (
        f"{url('persons', 'a.jpg')},{url('garments', 'b.png')}\n"
        f"{url('persons', 'c.jpg')},{url('garments', 'd.png')}\n"
    )
    imported = batchtable.import_file("pairs.csv", data.encode())
    assert [r["target_image_url"] for r in imported.rows] == [
        url("persons", "a.jpg"),
        url("persons", "c.jpg"),
    ]
    assert any("No header line" in note for note in imported.notes)


def test_import_reads_an_xlsx_workbook() -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["target_image_url", "garment_image_url", "background"])
    sheet.append([url("persons", "a.jpg"), url("garments", "b.png"), "studio"])
    buffer = io.BytesIO()
    book.save(buffer)
    imported = batchtable.import_file("pairs.xlsx", buffer.getvalue())
    assert imported.rows[0]["background"] == "studio" and not imported.problems


def test_import_of_a_broken_workbook_is_one_plain_problem() -> None:
    imported = batchtable.import_file("pairs.xlsx", b"not a workbook")
    assert imported.rows == [] and "not an Excel workbook" in imported.problems[0]


# --------------------------------------------------------------------------- link checks


class _Images(BaseHTTPRequestHandler):
    PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64

    def do_HEAD(self) -> None:  # noqa: N802
        if self.path == "/no-head.png":
            self.send_response(405)
            self.end_headers()
            return
        self._answer(head=True)

    def do_GET(self) -> None:  # noqa: N802
        self._answer(head=False)

    def _answer(self, head: bool) -> None:
        if self.path == "/missing.png":
            self.send_response(404)
            self.end_headers()
            return
        body, kind = (
            (b"<html></html>", "text/html")
            if self.path == "/page.html"
            else (self.PNG, "image/png" if self.path != "/no-head.png" else "")
        )
        self.send_response(200)
        if kind:
            self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def image_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_check_links_tells_reachable_images_from_the_rest(
    image_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIRRAGO_ALLOW_PRIVATE_URLS", "127.0.0.1")  # the links are on loopback
    found = linkcheck.check_links(
        [
            f"{image_server}/ok.png",
            f"{image_server}/missing.png",
            f"{image_server}/page.html",
            f"{image_server}/no-head.png",
            "http://127.0.0.1:1/closed.png",
        ],
        timeout=3,
    )
    assert found[f"{image_server}/ok.png"] is None
    assert found[f"{image_server}/no-head.png"] is None  # HEAD refused: the ranged GET sniffs
    assert "HTTP 404" in (found[f"{image_server}/missing.png"] or "")
    assert "not an image" in (found[f"{image_server}/page.html"] or "")
    assert "unreachable" in (found["http://127.0.0.1:1/closed.png"] or "")


# --------------------------------------------------------------------------- ledger and figures


PAIRS = [JobInput(f"/p{i}.jpg", f"/g{i}.png") for i in range(3)]
B = "http://127.0.0.1:1#test"  # the backend of the rows here


def test_a_paused_batch_is_not_claimed_until_resumed(ledger: Ledger) -> None:
    batch = ledger.create_batch("b", "batch-page", PAIRS, backend=B)
    ledger.set_batch_paused(batch.id, True)
    assert not ledger.has_queued(backend=B) and ledger.claim_next("r1", backend=B) is None
    ledger.set_batch_paused(batch.id, False)
    claimed = ledger.claim_next("r1", backend=B)
    assert claimed is not None and claimed.batch_id == batch.id


def test_a_schema_2_ledger_is_upgraded_with_the_pause_flag(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        ledger_module.metadata.create_all(conn)
        conn.execute(sa.text("ALTER TABLE batches DROP COLUMN paused"))
        conn.execute(sa.text("INSERT INTO schema_version (version) VALUES (2)"))
        conn.execute(
            sa.text(
                "INSERT INTO batches (name, source, created_at, private) "
                "VALUES ('old', 'cli', '2026-01-01 00:00:00', 1)"
            )
        )
    engine.dispose()
    upgraded = Ledger(f"sqlite:///{path}")
    try:
        assert upgraded.schema_version() == ledger_module.SCHEMA_VERSION
        [old] = upgraded.batches()
        assert old.name == "old" and old.private and not old.paused
    finally:
        upgraded.close()


def test_delete_removes_the_batch_and_only_its_own_files_in_the_data_dir(
    ledger: Ledger, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "inputs").mkdir(parents=True)
    own, shared, outside = (
        data_dir / "inputs/own.jpg",
        data_dir / "inputs/shared.jpg",
        tmp_path / "users-photo.jpg",
    )
    for path in (own, shared, outside):
        path.write_bytes(b"x")
    doomed = ledger.create_batch(
        "doomed",
        "batch-page",
        [JobInput(str(own), str(shared)), JobInput(str(outside), str(own))],
        backend=B,
    )
    kept_input = [JobInput(str(shared), "https://x/g.png")]
    kept = ledger.create_batch("kept", "batch-page", kept_input, backend=B)
    removed = batchprogress.delete_batch(ledger, data_dir, doomed.id)
    assert removed == 1 and not own.exists()
    assert shared.exists() and outside.exists()
    assert ledger.batch(doomed.id) is None and ledger.batch(kept.id) is not None


def test_a_batch_with_rows_in_flight_is_not_deleted(ledger: Ledger, tmp_path: Path) -> None:
    batch = ledger.create_batch("busy", "batch-page", PAIRS, backend=B)
    ledger.claim_next("r1", backend=B)
    assert batchprogress.delete_batch(ledger, tmp_path, batch.id) is None
    assert ledger.batch(batch.id) is not None


def test_progress_figures_count_states_credits_rate_and_eta(ledger: Ledger) -> None:
    inputs = [JobInput(f"/p{i}", "/g") for i in range(6)]
    batch = ledger.create_batch("b", "batch-page", inputs, backend=B)
    rows = ledger.jobs(batch_id=batch.id)
    start = rows[0].created_at
    end = start + timedelta(seconds=30)
    done = [
        replace(r, state=JobState.COMPLETED, job_id=f"j{i}", submitted_at=start, finished_at=end)
        for i, r in enumerate(rows[:2])
    ]
    failed = [replace(rows[2], state=JobState.FAILED, finished_at=end)]
    figures = batchprogress.progress(
        batch, done + failed + rows[3:], now=start + timedelta(seconds=30)
    )
    assert figures.total == 6 and figures.finished == 3 and figures.active == 3
    assert figures.credits_spent == 2  # the failed row never reached the server
    assert figures.rate_per_min == pytest.approx(6.0)  # 3 jobs in 30 s
    assert figures.eta_seconds == pytest.approx(30.0)
    assert figures.pass_rate == pytest.approx(2 / 3) and figures.state == "running"


# --------------------------------------------------------------------------- the page (AppTest)


def services() -> Services:
    return session.services_for(load_settings())


@pytest.fixture
def page(data_dir: Path) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT)
    at.run()
    at.switch_page("pages/batch.py").run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    parts = [
        e.value
        for e in (
            *at.text,
            *at.caption,
            *at.markdown,
            *at.warning,
            *at.info,
            *at.error,
            *at.success,
        )
    ]
    # Messages are Markdown with the user's text escaped: read them as the page shows them.
    shown = "\n".join(str(p) for p in parts)
    return re.sub(r"\\(.)", r"\1", shown).replace("\u2060", "")


def set_table(at: AppTest, rows: list[dict[str, str]]) -> None:
    at.session_state["batch-table"] = [batchtable.clean_row(r) for r in rows]
    at.run()
    assert not at.exception, at.exception


def sample_pairs(count: int) -> list[dict[str, str]]:
    base = services().backend.base_url
    return batchtable.sample_rows(base, count=count)


def button(at: AppTest, key: str):
    return at.button(key=key)


@pytest.mark.app
def test_invalid_rows_are_skipped_the_rest_run_and_can_be_followed_from_the_shell(
    page: AppTest, capsys
) -> None:
    good = sample_pairs(2)
    good[0]["username"] = "<img src=x onerror=alert(1)> **bold**"
    set_table(page, [*good, {"target_image_url": "not a link", "garment_image_url": ""}])
    run = button(page, "batch-run")
    assert run.label == "Run batch — 2 credits" and not run.disabled
    shown = texts(page)
    assert "1 invalid row skipped, never sent" in shown
    assert (
        "Row 3: target_image_url: a file path on the server is not accepted here: upload "
        "the photo (Combine, or a ZIP of images beside the CSV) or use an http(s) link; "
        "garment_image_url is empty"
    ) in shown
    run.click().run()
    assert page.session_state["batch-view"] == "results"
    batch = batchprogress.latest_batch(services().ledger)
    assert batch is not None and len(services().ledger.jobs(batch_id=batch.id)) == 2
    # `mirrago batch --follow` watches the page's batch from the shell until it finishes
    assert main(["batch", "--follow", str(batch.id)]) == 0
    assert "2 done" in capsys.readouterr().err
    assert main(["batch", "--follow", "999"]) == 2
    assert "no batch 999" in capsys.readouterr().err
    page.run()
    assert not page.exception
    assert {m.label: m.value for m in page.metric}["Done"] == "2"
    assert len([b for b in page.button if b.key and b.key.startswith("batch-open-")]) == 2
    # user text on a card is shown as text: Markdown and HTML escaped
    captions = [m.value for m in page.markdown if "onerror" in m.value]
    assert captions and "\\<img" in captions[0] and "\\*\\*bold\\*\\*" in captions[0]


@pytest.mark.app
def test_the_editor_merges_added_edited_and_deleted_rows(page: AppTest) -> None:
    set_table(page, [])
    button(page, "batch-add-samples").click().run()
    key = f"batch-editor-{page.session_state['batch-editor-version']}-1"
    page.session_state[key] = {
        "edited_rows": {0: {"username": "ana"}},
        "added_rows": [
            {
                "target_image_url": "https://example.com/p.jpg",
                "garment_image_url": "https://example.com/g.jpg",
            }
        ],
        "deleted_rows": [1],  # positions: the second sample row
    }
    page.run()
    rows = page.session_state["batch-table"]
    assert [r["username"] for r in rows] == ["ana", "", "", ""]
    assert rows[-1]["target_image_url"] == "https://example.com/p.jpg" and len(rows) == 4


@pytest.mark.app
def test_the_balance_warning_appears_when_the_batch_costs_more(page: AppTest) -> None:
    ledger = services().ledger
    with ledger._write() as conn:  # noqa: SLF001 - a known low balance, as a job would record
        conn.execute(
            ledger_module.credit_readings.insert().values(  # 2 before job j: 1 left
                at=ledger_module.utcnow(), credits_before=2, job_id="j"
            )
        )
    set_table(page, sample_pairs(3))
    assert "latest known balance 1 credits" in texts(page)
    assert any("needs 3 credits" in w.value for w in page.warning)


@pytest.mark.app
def test_sample_rows_on_a_live_endpoint_add_nothing_and_say_why(
    page: AppTest, make_sandbox
) -> None:
    live = make_sandbox()
    page.session_state[session.LIVE_SETTINGS_KEY] = session.live_settings(
        live.base_url, live.client_id, live.client_secret
    )
    page.run()
    button(page, "batch-add-samples").click().run()
    assert page.session_state["batch-table"] == []
    assert "Sample rows need public image links" in texts(page)


@pytest.mark.app
def test_pause_resume_and_cancel_queued(page: AppTest) -> None:
    runner = services().runner
    runner.hold()  # nothing is sent while the test looks at the queued rows
    set_table(page, sample_pairs(3))
    button(page, "batch-run").click().run()
    batch = batchprogress.latest_batch(services().ledger)
    assert batch is not None
    button(page, "batch-pause").click().run()
    assert services().ledger.batch(batch.id).paused
    assert "Paused" in texts(page)
    button(page, "batch-resume").click().run()
    assert not services().ledger.batch(batch.id).paused
    assert button(page, "batch-cancel").label == "Cancel queued (3)"
    button(page, "batch-cancel").click().run()
    counts = services().ledger.counts(batch.id)
    assert counts[JobState.CANCELED] == 3
    assert "Finished" in texts(page)  # the state badge
    runner.resume()


@pytest.mark.app
def test_retry_failed_and_ticked_uncertain_rows(page: AppTest) -> None:
    ledger = services().ledger
    bad = {
        "target_image_url": "http://127.0.0.1:1/nobody.jpg",
        "garment_image_url": "http://127.0.0.1:1/nothing.png",
    }
    set_table(page, [bad])
    button(page, "batch-run").click().run()
    batch = batchprogress.latest_batch(ledger)
    assert batch is not None
    eventually(lambda: ledger.counts(batch.id)[JobState.FAILED] == 1, "the row fails", 60)
    page.run()
    retry = button(page, "batch-retry")
    assert retry.label == "Retry failed — 1 credit"
    retry.click().run()
    [row] = ledger.jobs(batch_id=batch.id)
    assert row.attempts == 2
    eventually(lambda: ledger.counts(batch.id)[JobState.FAILED] == 1, "the row fails", 60)

    runner = services().runner
    runner.hold()
    unsure = ledger.create_batch(
        "unsure",
        Origin.BATCH_PAGE,
        [JobInput(r["target_image_url"], r["garment_image_url"]) for r in sample_pairs(2)],
        backend=runner.backend,
    )
    for _ in range(2):
        claimed = ledger.claim_next("gone-runner", [unsure.id], backend=runner.backend)
        ledger.mark_uncertain(claimed.id, "gone-runner", "no answer")
    page.query_params["batch"] = str(unsure.id)
    page.session_state["batch-open"] = unsure.id
    page.run()
    assert "may or may not have made them" in texts(page)
    first = ledger.jobs(batch_id=unsure.id)[0]
    page.pills(key="batch-uncertain-pick").set_value([first.id]).run()
    button(page, "batch-uncertain-retry").click().run()
    states = [r.state for r in ledger.jobs(batch_id=unsure.id)]
    assert states == [JobState.QUEUED, JobState.UNCERTAIN]
    runner.resume()


@pytest.mark.app
def test_past_batches_list_cli_ones_and_delete_asks_first(
    page: AppTest, data_dir: Path, capsys
) -> None:
    source = data_dir.parent / "pairs.csv"
    person, garment = persons()[0].path, garments()[0].path
    source.write_text(f"target_image_url,garment_image_url\n{person},{garment}\n")
    assert main(["batch", str(source), "--out-dir", str(data_dir.parent / "out")]) == 0
    cli_batch = batchprogress.latest_batch(services().ledger)
    assert cli_batch is not None and cli_batch.private
    # the CLI's own batch can be followed from the shell too
    assert main(["batch", "--follow", str(cli_batch.id)]) == 0
    assert "1 done" in capsys.readouterr().err

    page.segmented_control(key="batch-view").set_value("history").run()
    assert not page.exception
    frame = page.dataframe[0].value
    assert list(frame["from"]) == ["Command line"] and list(frame["size"]) == [1]
    assert list(frame["success"]) == [100] and list(frame["state"]) == ["Finished"]
    page.selectbox(key="batch-history-pick").set_value(cli_batch.id).run()
    button(page, "batch-history-open").click().run()
    assert not page.exception
    assert page.session_state["batch-view"] == "results"
    assert page.query_params["batch"] == [str(cli_batch.id)] or page.query_params["batch"] == str(
        cli_batch.id
    )
    assert "mirrago batch --follow" in texts(page)  # a CLI batch: the CLI runs it
    page.segmented_control(key="batch-view").set_value("history").run()
    page.selectbox(key="batch-history-pick").set_value(cli_batch.id).run()
    page.text_input(key=f"batch-rename-{cli_batch.id}").input("Spring line-up").run()
    button(page, "batch-history-rename").click().run()
    assert services().ledger.batch(cli_batch.id).name == "Spring line-up"
    result = services().ledger.jobs(batch_id=cli_batch.id)[0].result_path
    assert result and Path(result).exists()
    page.selectbox(key="batch-history-pick").set_value(cli_batch.id).run()
    button(page, "batch-history-confirm").click().run()
    assert services().ledger.batch(cli_batch.id) is None
    assert not Path(result).exists()
    assert "Deleted Spring line-up and 2 stored files" in texts(page)  # result, thumbnail
    assert person.exists()  # the CLI's input is the user's own file: never deleted


# --------------------------------------------------------------------------- files on the page

SERVER_PATH = "a file path on the server is not accepted here"


def jpeg(colour: tuple[int, int, int] = (200, 120, 90)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 400), colour).save(buffer, "JPEG")
    return buffer.getvalue()


def pixel_bomb(side: int = 30_000) -> bytes:
    """A tiny PNG whose header declares side × side pixels (900 MP at 30,000)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


class FifoWatch:
    """A FIFO that would block whoever opens it for reading; records whether anyone did
    (a writer can only open it, non-blocking, while a reader has it open) and lets them go."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path, self.opened = path, False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            try:
                handle = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: no reader
                continue
            self.opened = True
            os.close(handle)  # the reader sees an empty file instead of hanging

    def stop(self) -> bool:
        self._stop.set()
        self._thread.join()
        return self.opened


def editor_frame(at: AppTest):
    return at.dataframe[0].value


@pytest.mark.app
def test_a_server_path_in_a_table_cell_gets_one_message_and_nothing_is_opened(
    page: AppTest, tmp_path: Path
) -> None:
    readable = tmp_path / "readable.jpg"
    readable.write_bytes(jpeg())
    fifo = FifoWatch(tmp_path / "blocks.png")
    garment = sample_pairs(1)[0]["garment_image_url"]
    paths = [
        str(readable),
        str(fifo.path),
        str(tmp_path / "missing.png"),
        "/etc/shadow",
        "../x.png",
        "~/x.png",
        "readable.jpg",
    ]
    try:
        set_table(page, [{"target_image_url": p, "garment_image_url": garment} for p in paths])
    finally:
        opened = fifo.stop()
    assert not opened, "the page opened a FIFO named in a table cell"
    shown = texts(page)
    for number in range(1, len(paths) + 1):
        assert f"Row {number}: target_image_url: {SERVER_PATH}" in shown
    assert "no such file" not in shown and "not an image" not in shown
    assert "upload the photo (Combine, or a ZIP of images beside the CSV)" in shown
    assert button(page, "batch-run").disabled
    frame = editor_frame(page)
    assert frame["person"].isna().all()  # no preview of any of them


@pytest.mark.app
def test_links_in_the_table_and_on_cards_are_not_loaded_by_the_browser(page: AppTest) -> None:
    outside = [
        {
            "target_image_url": "https://example.com/p.jpg",
            "garment_image_url": "https://example.com/g.jpg",
        }
    ]
    set_table(page, outside)
    frame = editor_frame(page)
    previews = [
        v
        for column in ("person", "garment")
        if column in frame
        for v in frame[column]
        if isinstance(v, str)
    ]
    assert not any(v.startswith("http") for v in previews)
    backend = services().backend
    link = "https://example.com/p.jpg"
    assert batch_images.input_picture(link, backend) is None
    assert batch_images.input_pair_picture(link, "https://example.com/g.jpg", backend) is None
    sample = sample_pairs(1)[0]["target_image_url"]
    assert (batch_images.input_picture(sample, backend) or b"").startswith(b"\xff\xd8")


@pytest.mark.app
def test_a_10000_row_table_is_paged_and_sends_no_per_row_previews(page: AppTest) -> None:
    pairs = sample_pairs(24)
    rows = [{**pairs[i % len(pairs)], "username": f"u{i}"} for i in range(10_000)]
    set_table(page, rows)
    editor = page.dataframe[0]
    assert len(editor.proto.SerializeToString()) < 1_000_000  # 58 MB before
    assert len(editor.value) <= 500 and list(editor.value.index[:1]) == [1]
    assert "data:" not in editor.value.to_csv()
    assert "Rows 1–500 of 10,000" in texts(page)
    assert "Run batch — 24 credits" == button(page, "batch-run").label  # repeats skipped
    assert len(texts(page)) < 200_000  # the skipped rows are summed up, not all listed


@pytest.mark.app
def test_an_import_over_the_page_limit_is_refused_and_nothing_can_run(page: AppTest) -> None:
    lines = ["target_image_url,garment_image_url"] + [
        f"https://example.com/p{i}.jpg,https://example.com/g.jpg" for i in range(10_001)
    ]
    page.file_uploader(key="batch-import").upload(
        "big.csv", "\n".join(lines).encode(), "text/csv"
    ).run()
    assert not page.exception
    shown = texts(page)
    assert "Nothing imported from big.csv: the file has more than 10,000 rows" in shown
    assert "run it from a terminal with `mirrago batch FILE` (up to 100,000 rows" in shown
    assert page.session_state["batch-table"] == []
    assert button(page, "batch-run").disabled


@pytest.mark.app
def test_import_messages_stand_out_in_their_colour(page: AppTest) -> None:
    page.file_uploader(key="batch-import").upload(
        "broken.csv", b"\xff\xfe\x00junk", "text/csv"
    ).run()
    assert [e.value for e in page.error if "Nothing imported from broken" in e.value]
    good = (
        "target_image_url,garment_image_url\nhttps://example.com/p.jpg,https://example.com/g.jpg\n"
    )
    page.file_uploader(key="batch-import").upload("pairs.csv", good.encode(), "text/csv").run()
    assert [e.value for e in page.success if "Imported 1 row from pairs" in e.value]


@pytest.mark.app
def test_photos_zipped_beside_the_csv_fill_the_rows_that_name_them(
    page: AppTest, data_dir: Path
) -> None:
    garment = sample_pairs(1)[0]["garment_image_url"]
    photos = zipped(
        {
            "alice.jpg": jpeg(),
            "shoot/Bob.JPG": jpeg((20, 40, 60)),
            "__MACOSX/._alice.jpg": b"junk",
            "notes.txt": b"hello",
        }
    )
    page.file_uploader(key="batch-photos").set_value(
        [("photos.zip", photos, "application/zip")]
    ).run()
    assert not page.exception
    assert "2 photos stored: rows that name alice.jpg, bob.jpg use them." in texts(page)
    assert "Skipped 1 file in 'photos.zip' that is not a photo." in texts(page)
    csv = (
        "target_image_url,garment_image_url\n"
        f"alice.jpg,{garment}\nC:\\Users\\pm\\shoot\\bob.jpg,{garment}\n"
        f"carol.jpg,{garment}\n"
    )
    page.file_uploader(key="batch-import").upload("pairs.csv", csv.encode(), "text/csv").run()
    assert not page.exception
    shown = texts(page)
    assert "Stored this session: alice.jpg, bob.jpg. Cells that name them use them." in shown
    assert f"Row 3: target_image_url: {SERVER_PATH}" in shown
    assert button(page, "batch-run").label == "Run batch — 2 credits"
    frame = editor_frame(page)
    assert [str(v).startswith("data:image/") for v in frame["person"]] == [True, True, False]
    button(page, "batch-run").click().run()
    batch = batchprogress.latest_batch(services().ledger)
    jobs = services().ledger.jobs(batch_id=batch.id)
    inputs = data_dir / "inputs"
    assert [Path(j.target).parent for j in jobs] == [inputs, inputs]
    assert Path(jobs[0].target).read_bytes() != Path(jobs[1].target).read_bytes()


@pytest.mark.app
def test_a_pixel_bomb_among_the_photos_fails_the_table_check_not_the_run(page: AppTest) -> None:
    garment = sample_pairs(1)[0]["garment_image_url"]
    page.file_uploader(key="batch-photos").set_value(
        [("photos.zip", zipped({"bomb.png": pixel_bomb()}), "application/zip")]
    ).run()
    set_table(page, [{"target_image_url": "bomb.png", "garment_image_url": garment}])
    shown = texts(page)
    assert (
        "Row 1: target_image_url: 'bomb.png' cannot be used: The image's dimensions are "
        "too large to open safely (it may be a decompression bomb)"
    ) in shown
    assert button(page, "batch-run").disabled


@pytest.mark.app
def test_edits_on_a_later_page_of_a_long_table_land_on_their_rows(page: AppTest) -> None:
    set_table(
        page,
        [
            {
                "target_image_url": f"https://example.com/p{i}.jpg",
                "garment_image_url": "https://example.com/g.jpg",
            }
            for i in range(1_200)
        ],
    )
    page.session_state["batch-table-page"] = 2
    page.run()
    assert list(editor_frame(page).index[:1]) == [501]
    assert "Rows 501–1,000 of 1,200" in texts(page)
    version = (
        page.session_state["batch-editor-version"]
        if "batch-editor-version" in page.session_state
        else 0
    )
    page.session_state[f"batch-editor-{version}-2"] = {
        "edited_rows": {0: {"username": "ana"}},
        "deleted_rows": [1],
    }
    page.run()
    rows = page.session_state["batch-table"]
    assert len(rows) == 1_199 and rows[500]["username"] == "ana"
    assert rows[501]["target_image_url"] == "https://example.com/p502.jpg"


@pytest.mark.app
def test_one_check_links_click_fetches_a_bounded_number_of_links(page: AppTest) -> None:
    # 600 distinct links: one click must not fetch them all (a pasted table of thousands
    # would hold the server for an hour); the next click takes the next ones. The addresses
    # are a documentation range, refused without a lookup or a connection: the test is quick.
    set_table(
        page,
        [
            {
                "target_image_url": f"https://192.0.2.1/p{i}.jpg",
                "garment_image_url": f"https://192.0.2.2/g{i}.png",
            }
            for i in range(300)
        ],
    )
    button(page, "batch-check-links").click().run()
    assert not page.exception
    assert len(page.session_state["batch-links"]) == 200
    assert "400 more to check: press Check links again." in texts(page)
    button(page, "batch-check-links").click().run()
    assert len(page.session_state["batch-links"]) == 400
