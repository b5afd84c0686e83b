"""The Usage page's Altair charts: credits over time (batches, forecast) and jobs per day."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from mirrago.usage import OUTCOME_ORDER, Balance, Period

ACCENT = "#5B3FD9"  # theme.primaryColor
FORECAST = "#E8590C"
OUTSIDE = "#C92A2A"
OUTCOME_COLOURS = {
    "completed": "#2F9E44",
    "failed": "#E03131",
    "uncertain": "#F59F00",
    "canceled": "#ADB5BD",
}


# The time axis has one label format: a 24-hour clock within a day (with seconds across a few
# minutes), the date and time across two or three days, dates across more, months across years.
# Vega puts ticks a whole time unit apart, the unit nearest span / tickCount, so the count keeps
# that unit no finer than the format shows (twice "12:40" for ticks 30 s apart was the fault).
# Streamlit's Vega draws no chart at all for an {interval, step} tickCount.
MAX_TICKS = 6
MIN_SPAN = timedelta(minutes=1)  # the axis of a few readings still spans a minute
MIN_CREDIT_PAD = 5  # credits above and below the data: whole-number ticks, a visible step


def _time_axis(span: timedelta) -> alt.Axis:
    days = span / timedelta(days=1)

    def count(unit: timedelta, most: int = MAX_TICKS) -> int:
        return max(1, min(most, int(span / unit)))  # ticks at least one `unit` apart

    if span < timedelta(minutes=3):
        label, ticks = "%H:%M:%S", count(timedelta(seconds=1))
    elif days <= 1:
        label, ticks = "%H:%M", count(timedelta(minutes=1))
    elif days <= 3:
        label, ticks = "%b %d %H:%M", 4  # ticks 6 or 12 hours apart
    elif days <= 300:
        label, ticks = "%b %d", count(timedelta(days=1), MAX_TICKS + 1)
    else:
        label, ticks = "%b %Y", count(timedelta(days=31), MAX_TICKS + 1)
    return alt.Axis(format=label, tickCount=ticks, labelAngle=0, grid=False, labelOverlap=True)


def _credit_domain(values: list[float]) -> list[float]:
    """The credits the chart spans: the data's range with some room, not from zero (a day's
    spend of a large balance would be a flat line at the top)."""
    low, high = min(values), max(values)
    pad = max(MIN_CREDIT_PAD, math.ceil((high - low) * 0.08))
    return [max(0.0, low - pad) if low >= 0 else low - pad, high + pad]


def _iso(moment: datetime | pd.Timestamp) -> str:
    # A temporal domain as ISO text: Streamlit's chart misplaces one given in milliseconds.
    return pd.Timestamp(moment).isoformat()


def _forecast(metrics: Balance, now: datetime, horizon: timedelta) -> pd.DataFrame | None:
    """The dashed line from the balance now to zero at the 7-day rate (cut at the horizon);
    none without a run-out date (no use, or too little history to forecast from)."""
    if metrics.balance is None or metrics.burn_7 <= 0 or metrics.runs_out is None:
        return None
    left = timedelta(days=metrics.days_left or 0.0)
    end = now + min(left, horizon)
    value = max(0.0, metrics.balance - metrics.burn_7 * (end - now).total_seconds() / 86400)
    return pd.DataFrame({"at": [now, end], "credits": [float(metrics.balance), value]})


def credit_spec(
    series: list[tuple[datetime, int]],
    marks: list[tuple[datetime, str, int]],
    outside: list[tuple[datetime, int, int]],
    metrics: Balance,
    period: Period,
    now: datetime,
) -> tuple[dict[str, Any], str]:
    """A step chart of every reading in the period, batches as light rules, the forecast dashed:
    its Vega-Lite spec and a one-line legend."""
    data = pd.DataFrame(series, columns=["at", "credits"])
    if len(data):  # `now` may be the minute the figures were cached in: never before a reading
        now = max(now, data["at"].max().to_pydatetime())
    first = data["at"].min() if len(data) else now
    start = first if period.since is None else max(first, period.since)
    span = max(now - start, MIN_SPAN)
    forecast = _forecast(metrics, now, span / 3)  # a third of the chart: the near future
    if metrics.balance is not None:  # carry the balance to now, so the step ends at today
        data = pd.concat([data, pd.DataFrame({"at": [now], "credits": [metrics.balance]})])
    end = now if forecast is None else forecast["at"].max()
    values = [*data["credits"], *([] if forecast is None else forecast["credits"])]
    values += [credits for _, credits, _ in outside]
    x = alt.X(
        "at:T",
        title=None,
        axis=_time_axis(end - (now - span)),
        scale=alt.Scale(domain=[_iso(now - span), _iso(end)]),
    )
    y = alt.Y(
        "credits:Q",
        title="Credits left",
        axis=alt.Axis(format=",d", tickMinStep=1, labelFlush=False),
        scale=alt.Scale(zero=False, domain=_credit_domain(values)),
    )
    base = alt.Chart(data)
    layers = [
        base.mark_area(interpolate="step-after", color=ACCENT, opacity=0.10, clip=True).encode(
            x=x, y=y
        ),
        base.mark_line(interpolate="step-after", color=ACCENT, strokeWidth=2, clip=True).encode(
            x=x,
            y=y,
            tooltip=[
                alt.Tooltip("at:T", title="Time", format="%Y-%m-%d %H:%M"),
                alt.Tooltip("credits:Q", title="Balance"),
            ],
        ),
    ]
    if marks:
        batch_data = pd.DataFrame(marks, columns=["at", "batch", "jobs"])
        tips = [
            alt.Tooltip("batch:N", title="Batch"),
            alt.Tooltip("jobs:Q", title="Jobs"),
            alt.Tooltip("at:T", title="Started", format="%Y-%m-%d %H:%M"),
        ]
        rules = alt.Chart(batch_data).encode(x=x, tooltip=tips)
        layers.append(rules.mark_rule(color="#868E96", opacity=0.45, strokeDash=[2, 2], clip=True))
        layers.append(
            rules.mark_point(
                shape="triangle-down", filled=True, color="#495057", size=60, clip=True
            ).encode(y=alt.value(6))
        )
    if outside:  # days with credits used outside Studio, on that day's closing balance
        spots = pd.DataFrame(outside, columns=["at", "credits", "outside"])
        layers.append(
            alt.Chart(spots)
            .mark_point(color=OUTSIDE, filled=True, size=70, opacity=0.9)
            .encode(
                x=x,
                y=y,
                tooltip=[
                    alt.Tooltip("at:T", title="Day", format="%Y-%m-%d"),
                    alt.Tooltip("outside:Q", title="Used outside Studio"),
                ],
            )
        )
    if forecast is not None:
        layers.append(
            alt.Chart(forecast)
            .mark_line(color=FORECAST, strokeDash=[6, 4], strokeWidth=2)
            .encode(x=x, y=y, tooltip=[alt.Tooltip("credits:Q", title="Forecast", format=",.0f")])
        )
    chart = alt.layer(*layers).properties(height=300)
    legend = ":violet[━] balance"
    if marks:
        legend += " · :gray[▼ ┊] batch started"
    if outside:
        legend += " · :red[●] credits used outside Studio that day"
    if forecast is not None:
        legend += " · :orange[╌] forecast at the 7-day rate"
    return _spec(chart), legend


def _spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    # Validating a spec against the Vega-Lite schema takes longer than the rest of the page:
    # these charts are fixed code, checked by the tests, so they are built without it.
    return chart.to_dict(validate=False)


def show(spec: dict[str, Any]) -> None:
    st.vega_lite_chart(spec=spec, width="stretch")


def jobs_spec(per_day: list[tuple[date, str, int]]) -> dict[str, Any]:
    """Jobs per day, stacked by outcome."""
    data = pd.DataFrame(per_day, columns=["day", "outcome", "jobs"])
    data["day"] = pd.to_datetime(data["day"])
    colours = alt.Scale(
        domain=list(OUTCOME_ORDER), range=[OUTCOME_COLOURS[o] for o in OUTCOME_ORDER]
    )
    chart = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X(
                "yearmonthdate(day):T",
                title=None,
                axis=alt.Axis(format="%b %d", labelAngle=0, grid=False),
            ),
            y=alt.Y("sum(jobs):Q", title="Jobs"),
            color=alt.Color(
                "outcome:N",
                scale=colours,
                sort=list(OUTCOME_ORDER),
                legend=alt.Legend(orient="top", title=None),
            ),
            order=alt.Order("outcome_rank:Q"),
            tooltip=[alt.Tooltip("day:T", format="%Y-%m-%d"), "outcome:N", "jobs:Q"],
        )
        .transform_calculate(outcome_rank=f"indexof({list(OUTCOME_ORDER)!r}, datum.outcome)")
        .properties(height=220)
    )
    return _spec(chart)
