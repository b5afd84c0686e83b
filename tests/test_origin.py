"""Where a batch was started: one `Origin` type read by the batch list, Recent try-ons and the
Usage page alike."""

from pathlib import Path

from mirrago import batchprogress, usage
from mirrago.ledger import JobInput, Ledger, Origin

PAIR = JobInput("https://images.example/p.jpg", "https://images.example/g.jpg")


def test_a_stored_source_reads_back_as_its_origin_and_any_folder_is_a_cli_batch():
    assert Origin.of("try-on") is Origin.TRY_ON
    assert Origin.of("cli:try-on") is Origin.CLI_TRY_ON
    assert Origin.of("batch-page") is Origin.BATCH_PAGE
    assert Origin.of("stage-live") is Origin.STAGE_VISITOR
    assert Origin.of("/home/qa/runs/out") is Origin.CLI_BATCH
    singles = [Origin.TRY_ON, Origin.CLI_TRY_ON, Origin.STAGE_VISITOR]
    assert [o for o in Origin if o.is_single] == singles


def test_batch_list_and_usage_history_name_each_origin_the_same_way(ledger: Ledger, tmp_path: Path):
    ledger.create_batch("Try-on", Origin.TRY_ON, [PAIR], backend="sandbox")
    ledger.create_batch("try-on", Origin.CLI_TRY_ON, [PAIR], backend="sandbox")
    ledger.create_batch("page batch", Origin.BATCH_PAGE, [PAIR, PAIR], backend="sandbox")
    ledger.create_batch("Stage visitor", Origin.STAGE_VISITOR, [PAIR], backend="sandbox")
    ledger.create_batch(
        "cli batch", str(tmp_path / "out"), [PAIR, PAIR], backend="sandbox", private=True
    )

    listed = {s.batch.name: s.origin for s in batchprogress.summaries(ledger)}
    assert listed == {"page batch": "Batch page", "cli batch": "Command line"}

    filters = usage.HistoryFilter(period=usage.Period.last(None))
    rows = usage.history_page(ledger, filters, 1, 50)
    by_batch = {row["batch"]: row["source"] for row in rows}
    assert by_batch == {
        "Try-on": "Try-on",
        "try-on": "CLI",
        "page batch": "Batch",
        "Stage visitor": "Stage",
        "cli batch": "CLI",
    }
