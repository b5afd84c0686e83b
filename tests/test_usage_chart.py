"""The Usage page's credit chart as a Vega-Lite spec: the credit axis fits the data, the time
axis has one label format and a few ticks, and no forecast is drawn from too little history.
(How the browser draws it: tests/browser/test_usage_browser.py.)"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from mirrago.ui.usage.charts import credit_spec
from mirrago.usage import Balance, Period

NOW = datetime(2026, 3, 10, 5, 35, tzinfo=UTC)


def _metrics(balance: int, runs_out: date | None = None) -> Balance:
    return Balance(
        balance=balance,
        as_of=NOW,
        burn_7=30.0,
        burn_30=30.0,
        runs_out=runs_out,
        days_left=None if runs_out is None else 30.0,
        spent=30,
        outside=0,
        topups=0,
    )


def _readings(span: timedelta, count: int = 30, top: int = 1000) -> list[tuple[datetime, int]]:
    return [(NOW - span + span * i / count, top - i - 1) for i in range(count)]


def _encodings(spec: dict[str, Any], channel: str) -> list[dict[str, Any]]:
    found = [layer.get("encoding", {}).get(channel) for layer in spec["layer"]]
    return [encoding for encoding in found if encoding and "field" in encoding]


def _chart(span: timedelta, runs_out: date | None = None) -> tuple[dict[str, Any], str]:
    series = _readings(span)
    return credit_spec(
        series, [], [], _metrics(series[-1][1], runs_out), Period.last(30, NOW.date()), NOW
    )


def test_credit_axis_fits_a_days_spend_instead_of_starting_at_zero() -> None:
    spec, _ = _chart(timedelta(minutes=10))
    (scale,) = {str(y["scale"]): y["scale"] for y in _encodings(spec, "y")}.values()
    assert scale["zero"] is False
    low, high = scale["domain"]
    assert 960 <= low < 970 and 999 < high <= 1010  # the readings span 970..999


def test_time_axis_within_a_day_reads_hours_and_minutes_only() -> None:
    spec, _ = _chart(timedelta(minutes=10))
    (axis,) = {str(x["axis"]): x["axis"] for x in _encodings(spec, "x") if "axis" in x}.values()
    assert "labelExpr" not in axis  # no mix of ":30" and "05:31"
    assert axis["format"] == "%H:%M"
    # Vega puts ticks a whole unit apart, the unit nearest span / tickCount: a minute or more.
    assert axis["tickCount"] <= 6 and timedelta(minutes=10) / axis["tickCount"] >= timedelta(
        minutes=1
    )


def test_time_axis_of_a_minute_reads_seconds_throughout() -> None:
    spec, _ = _chart(timedelta(seconds=40))
    (axis,) = {str(x["axis"]): x["axis"] for x in _encodings(spec, "x") if "axis" in x}.values()
    assert axis["format"] == "%H:%M:%S" and axis["tickCount"] <= 6


def test_time_axis_across_days_reads_dates() -> None:
    spec, _ = _chart(timedelta(days=12))
    (axis,) = {str(x["axis"]): x["axis"] for x in _encodings(spec, "x") if "axis" in x}.values()
    assert axis["format"] == "%b %d"
    assert axis["tickCount"] <= 7 and 12 / axis["tickCount"] >= 1  # a day apart or more


def test_no_forecast_line_without_a_run_out_date() -> None:
    spec, legend = _chart(timedelta(minutes=10), runs_out=None)
    assert "forecast" not in legend
    assert not [
        layer
        for layer in spec["layer"]
        if "strokeDash" in str(layer.get("mark")) and layer["mark"].get("color") == "#E8590C"
    ]
    _, legend = _chart(timedelta(days=12), runs_out=date(2026, 4, 9))
    assert "forecast" in legend


def test_readings_after_the_cached_minute_stay_inside_the_time_axis() -> None:
    # The page caches its figures per minute: `now` may be seconds before the last reading.
    series = _readings(timedelta(minutes=10))
    late = series + [(NOW + timedelta(seconds=40), 960)]
    spec, _ = credit_spec(late, [], [], _metrics(959), Period.last(30, NOW.date()), NOW)
    (scale,) = {str(x["scale"]): x["scale"] for x in _encodings(spec, "x") if "scale" in x}.values()
    assert datetime.fromisoformat(scale["domain"][1]) >= NOW + timedelta(seconds=40)
