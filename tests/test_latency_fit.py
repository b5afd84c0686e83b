"""One latency fitted to every answer about a server's jobs (mirrago.latencyfit), on timetables
made by hand: a server that keeps its queue in order with a set number of workers."""

from __future__ import annotations

import random

from mirrago.latencyfit import LatencyFit


def _timetable(queued: list[float], workers: int, durations: list[float]) -> list[float]:
    """When each job ends on an in-order server with `workers` workers."""
    ends: list[float] = []
    for index, at in enumerate(queued):
        start = max(at, ends[index - workers]) if index >= workers else at
        ends.append(start + durations[index])
    return ends


def _looked_at(fit: LatencyFit, queued: list[float], ends: list[float], rng: random.Random):
    """Each job asked about once a little before its end (running) and once a little after
    (done), as a poll schedule would."""
    for at in queued:
        fit.queue(at)
    for at, end in zip(queued, ends, strict=True):
        fit.running(at, end - rng.uniform(0.01, 0.2))
        fit.done(at, end + rng.uniform(0.001, 0.2))


def test_a_fixed_latency_is_fitted_closely_from_looks_far_from_the_ends() -> None:
    rng = random.Random(3)
    queued = sorted(rng.uniform(0.0, 2.0) for _ in range(120))
    ends = _timetable(queued, 12, [1.5] * 120)
    fit = LatencyFit()
    fit.set_parallel(12)
    _looked_at(fit, queued, ends, rng)
    assert fit.usable
    assert 1.49 <= fit.low <= 1.5 <= fit.high <= 1.51  # looks up to 0.2 s off: deep jobs tell
    assert abs(fit.end(queued[-1], fit.high) - ends[-1]) <= 0.05
    assert fit.depth(queued[-1]) == 10


def test_only_the_right_number_of_workers_fits() -> None:
    rng = random.Random(4)
    queued = sorted(rng.uniform(0.0, 2.0) for _ in range(120))
    ends = _timetable(queued, 12, [1.5] * 120)
    fit = LatencyFit()
    _looked_at(fit, queued, ends, rng)
    assert [workers for workers in range(6, 19) if fit.fits(workers)] == [12]


def test_a_waiting_answer_bounds_the_latency_from_below() -> None:
    fit = LatencyFit()
    fit.set_parallel(1)
    for at in (0.0, 0.01):
        fit.queue(at)
    fit.done(0.0, 2.5)  # the first ended by 2.5 s
    fit.waiting(0.01, 1.8)  # the second had not started at 1.8 s: the first ran on
    assert fit.usable and 1.8 <= fit.low and fit.high <= 2.5


def test_latencies_that_vary_fit_no_single_one() -> None:
    rng = random.Random(5)
    queued = sorted(rng.uniform(0.0, 2.0) for _ in range(120))
    ends = _timetable(queued, 12, [rng.uniform(1.0, 6.0) for _ in range(120)])
    fit = LatencyFit()
    fit.set_parallel(12)
    _looked_at(fit, queued, ends, rng)
    assert not fit.consistent and not fit.usable


def test_a_few_milliseconds_of_jitter_still_fit() -> None:
    rng = random.Random(6)
    queued = sorted(rng.uniform(0.0, 2.0) for _ in range(120))
    ends = _timetable(queued, 12, [2.0 + rng.uniform(0.0, 0.03) for _ in range(120)])
    fit = LatencyFit()
    fit.set_parallel(12)
    _looked_at(fit, queued, ends, rng)
    assert fit.usable and 1.98 <= fit.low <= fit.high <= 2.04
