"""The Usage figures on known data, seeded straight into a real ledger (SQLite and PostgreSQL):
balance, burn rates, run-out date, outside use, top-ups, refunds, the statement, activity."""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from support import seed

from mirrago import usage
from mirrago.ledger import Ledger, batches, jobs
from mirrago.usage import HistoryFilter, Period

T0 = datetime(2026, 3, 1, tzinfo=UTC)
# Every test here runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.every_database


def at(day: int, hour: int, minute: int = 0, second: float = 0) -> datetime:
    return T0 + timedelta(days=day, hours=hour, minutes=minute, seconds=second)


ALL = Period(None, date(2026, 12, 31))


def _two_days(ledger: Ledger) -> None:
    seed(
        ledger,
        [
            (at(0, 9), 100, "completed"),
            (at(0, 10), 99, "completed"),
            # 3 credits spent elsewhere, then this job fails on the server and is refunded
            (at(0, 11), 95, "failed"),
            (at(0, 12), 95, "completed"),  # 95: the refund, not 94
            (at(1, 9), 144, "completed"),  # a top-up of 50
            (at(1, 10), 143, "completed"),
        ],
    )


def test_statement_counts_outside_use_top_ups_and_refunds(ledger: Ledger) -> None:
    _two_days(ledger)
    days = usage.statement(ledger, ALL)
    assert [(d.day.day, d.opening, d.spent, d.outside, d.topups, d.closing) for d in days] == [
        (1, 100, 4, 3, 1, 94),
        (2, 94, 2, 0, 50, 142),
    ]


def test_statement_days_add_up_and_chain(ledger: Ledger) -> None:
    _two_days(ledger)
    seed(ledger, [(at(3, 8), 142, "completed"), (at(3, 9), 130, "failed")])  # 11 outside
    days = usage.statement(ledger, ALL)
    for day in days:
        assert day.opening - day.spent - day.outside + day.topups == day.closing
    for before, after in itertools.pairwise(days):
        assert before.closing == after.opening
    # the latest job failed and was refunded: the last closing and the balance include it
    assert days[-1].closing == 130 == usage.balance(ledger, ALL).balance
    assert days[-1].outside == 11


def test_a_refund_is_never_counted_as_outside_use(ledger: Ledger) -> None:
    # Every job fails and is refunded, some before the next reading, some after it.
    seed(
        ledger,
        [
            (at(0, 9), 50, "failed"),
            (at(0, 10), 50, "failed"),  # refunded before this reading
            (at(0, 10, 0, 1), 49, "failed"),  # the previous refund had not happened yet
            (at(0, 11), 50, "failed"),  # two refunds at once
        ],
    )
    days = usage.statement(ledger, ALL)
    assert sum(d.outside for d in days) == 0
    assert usage.balance(ledger, ALL, now=at(0, 12)).outside == 0


def test_readings_recorded_out_of_server_order_are_not_outside_use(ledger: Ledger) -> None:
    # Four concurrent submissions: the server answered 80, 79, 78, 77; the ledger recorded
    # their readings a few milliseconds apart in another order.
    seed(
        ledger,
        [
            (at(0, 9, 0, 0.010), 79, "completed"),
            (at(0, 9, 0, 0.020), 80, "completed"),
            (at(0, 9, 0, 0.030), 77, "completed"),
            (at(0, 9, 0, 0.040), 78, "completed"),
            (at(0, 9, 5), 72, "completed"),  # then 4 credits spent elsewhere
        ],
    )
    (day,) = usage.statement(ledger, ALL)
    assert (day.opening, day.spent, day.outside, day.topups, day.closing) == (80, 5, 4, 0, 71)


def test_balance_is_the_latest_reading_less_its_charged_job(ledger: Ledger) -> None:
    _two_days(ledger)
    metrics = usage.balance(ledger, ALL, now=at(1, 12))
    assert metrics.balance == 142
    assert metrics.as_of == at(1, 10)
    assert (metrics.spent, metrics.outside, metrics.topups) == (6, 3, 51)


def test_balance_of_a_refunded_latest_job_is_the_reading_itself(ledger: Ledger) -> None:
    seed(ledger, [(at(0, 9), 20, "completed"), (at(0, 10), 19, "failed")])
    assert usage.balance(ledger, ALL, now=at(0, 11)).balance == 19


def test_latest_balance_is_the_usage_balance_in_the_servers_order(ledger: Ledger) -> None:
    assert usage.latest_balance(ledger) is None
    # The last reading recorded is not the last the server gave: 77 was answered last.
    seed(
        ledger,
        [
            (at(0, 9, 0, 0.01), 78, "completed"),
            (at(0, 9, 0, 0.02), 80, "completed"),
            (at(0, 9, 0, 0.03), 77, "completed"),
            (at(0, 9, 0, 0.04), 79, "completed"),
        ],
    )
    latest = usage.latest_balance(ledger)
    assert latest is not None and latest.credits == 76
    assert latest.credits == usage.balance(ledger, ALL, now=at(0, 10)).balance
    seed(ledger, [(at(0, 9, 30), 76, "failed")])  # refunded: the reading is the balance
    latest = usage.latest_balance(ledger)
    assert latest is not None and (latest.credits, latest.as_of) == (76, at(0, 9, 30))
    assert latest.credits == usage.balance(ledger, ALL, now=at(0, 10)).balance


def test_burn_rates_and_run_out_date(ledger: Ledger) -> None:
    # 40 days: 2 jobs a day for the first 33, then 5 a day for the last 7; 3 credits a day
    # spent elsewhere during the last 7.
    readings, credits = [], 1000
    for day in range(40):
        per_day, outside = (2, 0) if day < 33 else (5, 3)
        credits -= outside
        for job in range(per_day):
            readings.append((at(day, 9 + job), credits, "completed"))
            credits -= 1
    seed(ledger, readings)
    now = at(39, 23, 59)  # the last 7 days: days 33..39 (the window starts at day 32 23:59)
    metrics = usage.balance(ledger, Period.last(7, now.date()), now=now)
    assert metrics.burn_7 == pytest.approx(7 * 8 / 7)
    assert metrics.burn_30 == pytest.approx((23 * 2 + 7 * 8) / 30)
    assert metrics.balance == credits
    assert metrics.days_left == pytest.approx(credits / 8)
    assert metrics.runs_out == (now + timedelta(days=credits / 8)).date()
    assert (metrics.spent, metrics.outside) == (35, 21)
    assert not metrics.warning


def test_burn_rate_of_a_young_ledger_uses_its_own_age_and_warns(ledger: Ledger) -> None:
    seed(ledger, [(at(0, 4 * i), 40 - i, "completed") for i in range(6)])
    metrics = usage.balance(ledger, ALL, now=at(2, 0))  # 2 days old, 6 credits used
    assert metrics.burn_7 == pytest.approx(3.0)
    assert metrics.balance == 34
    assert metrics.runs_out == date(2026, 3, 14)  # in 34 / 3 days
    assert metrics.warning is False
    seed(ledger, [(at(2, 1), 34, "completed"), (at(2, 2), 20, "completed")])  # 13 outside
    assert usage.balance(ledger, ALL, now=at(2, 3)).warning is True


def test_minutes_of_history_are_too_little_to_forecast(ledger: Ledger) -> None:
    seed(ledger, [(at(0, 5, 25 + i), 1000 - i, "completed") for i in range(10)])
    metrics = usage.balance(ledger, ALL, now=at(0, 5, 36))  # ten minutes of use
    assert metrics.burn_7 > 0
    assert (metrics.runs_out, metrics.days_left, metrics.forecast_note) == (
        None,
        None,
        usage.TOO_LITTLE_HISTORY,
    )
    assert ("Runs out", usage.TOO_LITTLE_HISTORY) in usage.metric_lines(metrics)


def test_a_day_of_history_and_a_few_credits_are_enough_to_forecast(ledger: Ledger) -> None:
    seed(ledger, [(at(0, 9 + i), 100 - i, "completed") for i in range(usage.FORECAST_MIN_CREDITS)])
    metrics = usage.balance(ledger, ALL, now=at(1, 9))
    assert metrics.runs_out is not None and metrics.forecast_note is None


def test_no_burn_means_no_run_out_date(ledger: Ledger) -> None:
    seed(ledger, [(at(0, 9), 10, "completed")])
    metrics = usage.balance(ledger, ALL, now=at(30, 0))
    assert (metrics.balance, metrics.burn_7, metrics.runs_out) == (9, 0.0, None)


def test_an_empty_ledger_has_no_balance(ledger: Ledger) -> None:
    metrics = usage.balance(ledger, ALL)
    assert (metrics.balance, metrics.runs_out, metrics.spent) == (None, None, 0)
    assert usage.statement(ledger, ALL) == []
    assert usage.readings_series(ledger, ALL) == []
    assert usage.activity(ledger, ALL).jobs == 0


def test_statement_of_a_period_starts_from_the_previous_closing(ledger: Ledger) -> None:
    _two_days(ledger)
    (day,) = usage.statement(ledger, Period(date(2026, 3, 2), date(2026, 3, 2)))
    assert (day.opening, day.closing) == (94, 142)
    metrics = usage.balance(ledger, Period(date(2026, 3, 2), date(2026, 3, 2)), now=at(1, 12))
    assert (metrics.spent, metrics.outside, metrics.topups) == (2, 0, 50)


def test_series_is_thinned_to_the_last_reading_of_each_bucket(ledger: Ledger) -> None:
    seed(ledger, [(at(0, 0, minute), 500 - minute, "completed") for minute in range(300)])
    full = usage.readings_series(ledger, ALL)
    assert len(full) == 300 and full[0] == (at(0, 0), 499) and full[-1][1] == 500 - 299 - 1
    thin = usage.readings_series(ledger, ALL, points=30)
    assert 25 <= len(thin) <= 32
    assert thin[-1] == full[-1]
    assert [v for _, v in thin] == sorted((v for _, v in thin), reverse=True)


def test_activity_percentiles_and_success_rate(ledger: Ledger) -> None:
    with ledger._write() as conn:
        batch_id = conn.execute(
            batches.insert().values(name="b", source="/out/dir", created_at=T0, private=True)
        ).inserted_primary_key[0]
        for i in range(1, 101):
            state = "completed" if i <= 80 else ("failed" if i <= 95 else "uncertain")
            start = at(0, 9, i)
            conn.execute(
                jobs.insert().values(
                    batch_id=batch_id,
                    row_index=i,
                    target="p",
                    garment="g",
                    state=state,
                    created_at=start,
                    submitted_at=start,
                    finished_at=start + timedelta(seconds=i),
                    attempts=1,
                    review_tags="[]",
                    updated_at=start,
                )
            )
    result = usage.activity(ledger, ALL)
    assert result.counts == {"completed": 80, "failed": 15, "uncertain": 5, "canceled": 0}
    assert result.success_rate == pytest.approx(0.8)
    assert (result.p50, result.p95) == (pytest.approx(40), pytest.approx(76))
    (row,) = usage.breakdown(ledger, ALL, "source")
    assert (row["source"], row["jobs"], row["completed"], row["failed"]) == ("CLI", 100, 80, 20)
    per_day = usage.jobs_per_day(ledger, ALL)
    assert sorted(per_day) == [
        (date(2026, 3, 1), "completed", 80),
        (date(2026, 3, 1), "failed", 15),
        (date(2026, 3, 1), "uncertain", 5),
    ]


def test_breakdowns_by_source_username_and_batch(ledger: Ledger) -> None:
    seed(ledger, [(at(0, 9), 100, "completed"), (at(0, 10), 99, "failed")], username="ana")
    batch = seed(
        ledger,
        [(at(0, 11), 99, "completed"), (at(0, 11, 1), 98, "completed")],
        source="batch-page",
        username="ben",
        batch_name="spring",
    )
    with ledger._write() as conn:
        conn.execute(
            jobs.update()
            .where(jobs.c.batch_id == batch, jobs.c.row_index == 0)
            .values(review_verdict="pass")
        )
        conn.execute(
            jobs.update()
            .where(jobs.c.batch_id == batch, jobs.c.row_index == 1)
            .values(review_verdict="fail")
        )
    sources = {row["source"]: row for row in usage.breakdown(ledger, ALL, "source")}
    assert sources["Try-on"]["credits"] == 1 and sources["Try-on"]["success rate"] == 0.5
    assert sources["Batch"]["jobs"] == 2 and sources["Batch"]["pass rate"] == 0.5
    people = {row["username"]: row["jobs"] for row in usage.breakdown(ledger, ALL, "username")}
    assert people == {"ana": 2, "ben": 2}
    names = [row["batch"] for row in usage.breakdown(ledger, ALL, "batch")]
    assert f"#{batch} spring" in names


def test_history_filters_pages_and_exports(ledger: Ledger) -> None:
    seed(ledger, [(at(0, 9, i), 100 - i, "completed") for i in range(30)], username="ana")
    seed(ledger, [(at(1, 9), 70, "failed")], username="=cmd()")
    every = HistoryFilter(ALL)
    assert usage.history_count(ledger, every) == 31
    first = usage.history_page(ledger, every, 1, 20)
    assert len(first) == 20 and first[0]["state"] == "failed"
    assert len(usage.history_page(ledger, every, 2, 20)) == 11
    failed = HistoryFilter(ALL, states=("failed",))
    assert usage.history_count(ledger, failed) == 1
    assert usage.history_count(ledger, HistoryFilter(ALL, username="ana")) == 30
    assert usage.history_count(ledger, HistoryFilter(ALL, search="CMD")) == 1
    assert usage.history_count(ledger, HistoryFilter(ALL, search="100%")) == 0
    day_two = HistoryFilter(Period(date(2026, 3, 2), date(2026, 3, 2)))
    assert usage.history_count(ledger, day_two) == 1
    rows = list(csv.reader(io.StringIO(usage.history_csv(ledger, every))))
    assert len(rows) == 32 and rows[1][6] == "'=cmd()"  # no formula reaches a spreadsheet
    statement = list(csv.DictReader(io.StringIO(usage.statement_csv(ledger, ALL))))
    assert [row["closing"] for row in statement] == ["70", "70"]


# --------------------------------------------------------------------------- mirrago usage


def test_cli_usage_prints_metrics_and_statement_with_outside_use(
    make_sandbox, workdir, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_batch_cli import sample_urls, write_csv

    from mirrago.cli import main
    from mirrago.client import MirragoClient

    sandbox = make_sandbox(starting_credits=50)
    for name, value in (
        ("MIRRAGO_BASE_URL", sandbox.base_url),
        ("MIRRAGO_CLIENT_ID", sandbox.client_id),
        ("MIRRAGO_CLIENT_SECRET", sandbox.client_secret),
    ):
        monkeypatch.setenv(name, value)
    pairs = sample_urls(sandbox, 3)
    assert main(["batch", str(write_csv(workdir / "a.csv", pairs[:2])), "--out-dir", "a"]) == 0
    with MirragoClient(sandbox.base_url, sandbox.client_id, sandbox.client_secret) as client:
        for target, garment, *_ in pairs[:2]:  # two jobs submitted outside Studio
            client.generate(target, garment)
    assert main(["batch", str(write_csv(workdir / "b.csv", pairs[2:])), "--out-dir", "b"]) == 0
    capsys.readouterr()

    assert main(["usage", "--days", "7"]) == 0
    out = capsys.readouterr().out
    lines = {line[:23].strip(): line[23:].strip() for line in out.splitlines()}
    assert lines["Balance"].startswith("45")  # 50 - 3 by Studio - 2 outside
    assert lines["Spent by Studio"] == "3"
    assert lines["Used outside Studio"] == "2"
    assert lines["Top-ups & refunds"] == "0"
    today = datetime.now(UTC).date().isoformat()
    assert [line.split() for line in out.splitlines() if line.strip().startswith(today)] == [
        [today, "50", "3", "2", "0", "45"]
    ]

    assert main(["usage", "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows == [
        {
            "day": today,
            "opening": "50",
            "spent_by_studio": "3",
            "used_outside_studio": "2",
            "topups_and_refunds": "0",
            "closing": "45",
        }
    ]


def test_cli_usage_on_an_empty_ledger_says_so(workdir, capsys) -> None:
    from mirrago.cli import main

    assert main(["usage"]) == 0
    assert "No credit readings yet" in capsys.readouterr().out


def test_with_sign_in_other_peoples_inputs_results_and_details_stay_hidden(ledger: Ledger) -> None:
    seed(ledger, [(at(0, 9), 100, "completed")], username="ana-demo")
    seed(ledger, [(at(0, 10), 99, "failed")], username="ben-demo")
    with ledger._write() as conn:
        conn.execute(jobs.update().where(jobs.c.username == "ana-demo").values(owner="ana@x"))
        conn.execute(
            jobs.update()
            .where(jobs.c.username == "ben-demo")
            .values(owner="ben@x", target="ben-secret.jpg", error="ben's error")
        )
    mine = HistoryFilter(ALL, person="owner", private=True, viewer="ana@x")
    rows = {row["owner"]: row for row in usage.history_page(ledger, mine, 1, 10)}
    assert rows["ana@x"]["target"] == "p.jpg" and rows["ana@x"]["username"] == "ana-demo"
    assert rows["ben@x"]["state"] == "failed"  # what it cost stays visible
    assert [rows["ben@x"][k] for k in ("target", "garment", "error", "username")] == [None] * 4
    assert usage.history_count(ledger, HistoryFilter(ALL, search="secret")) == 1
    assert usage.history_count(ledger, replace(mine, search="secret")) == 0
    assert "ben-secret" not in usage.history_csv(ledger, mine)
    assert usage.usernames(ledger, "username", viewer="ana@x") == ["ana-demo"]
    people = {row["owner"]: row["jobs"] for row in usage.breakdown(ledger, ALL, "owner")}
    assert people == {"ana@x": 1, "ben@x": 1}


def test_history_csv_keeps_a_formula_behind_a_tab_or_line_break_as_text(ledger: Ledger) -> None:
    # Spreadsheets skip a leading tab or carriage return and run the formula after it.
    seed(ledger, [(at(0, 9), 99, "completed")], username="\t=HYPERLINK(1)")
    seed(ledger, [(at(0, 10), 98, "completed")], username="\r=cmd()")
    rows = list(csv.reader(io.StringIO(usage.history_csv(ledger, HistoryFilter(ALL)))))
    assert sorted(row[6] for row in rows[1:]) == ["'\t=HYPERLINK(1)", "'\r=cmd()"]
