"""The demo's final figures are the run's own: mean throughput and latency over the whole run.

The live view shows the last five seconds while the demo runs; once the run has ended that
window is empty, so the final panel reports the run's decisions over the time from the
first to the last decision, and end-to-end percentiles over every decision.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from rich.console import Console

from streams.commands.demo import RunFigures, _Watch, run_figures


def decision(event_ms: int, decided_ms: int) -> tuple[dict[str, object], int]:
    """A decision record's value (as the demo reads it) and its Kafka timestamp."""
    event_time = np.datetime_as_string(np.datetime64(event_ms, "ms"), unit="ms") + "Z"
    value = {
        "decision": "approve",
        "model": {"name": "demo", "version": 1},
        "event_time": event_time,
        "reason_codes": [],
    }
    return value, decided_ms


def test_mean_throughput_is_decisions_over_first_to_last() -> None:
    # 101 decisions, one every 10 ms: first at t=0, last at t=1000 ms
    samples = [(1_000_000.0 + 10.0 * i, 5.0) for i in range(101)]
    figures = run_figures(samples)
    assert figures.decisions == 101
    assert figures.seconds == pytest.approx(1.0)
    assert figures.throughput == pytest.approx(101.0)


def test_percentiles_are_over_the_whole_run() -> None:
    latencies = [float(ms) for ms in range(1, 101)]  # 1 .. 100 ms
    samples = [(float(i), ms) for i, ms in enumerate(reversed(latencies))]
    figures = run_figures(samples)
    assert figures.p50_ms == pytest.approx(np.percentile(latencies, 50))
    assert figures.p99_ms == pytest.approx(np.percentile(latencies, 99))
    assert figures.p50_ms == pytest.approx(50.5)
    assert figures.p99_ms == pytest.approx(99.01)


def test_out_of_order_times_span_first_to_last() -> None:
    samples = [(2_000.0, 1.0), (0.0, 1.0), (4_000.0, 1.0), (1_000.0, 1.0)]
    figures = run_figures(samples)
    assert figures.seconds == pytest.approx(4.0)
    assert figures.throughput == pytest.approx(1.0)


def test_no_decisions_or_one_instant() -> None:
    assert run_figures([]) == RunFigures(0, 0.0, 0.0, 0.0, 0.0)
    one = run_figures([(5.0, 12.0)])
    assert (one.decisions, one.throughput, one.p50_ms, one.p99_ms) == (1, 0.0, 12.0, 12.0)


def test_a_run_that_has_ended_still_reports_non_zero_figures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [100.0]
    monkeypatch.setattr("streams.commands.demo.time.monotonic", lambda: clock[0])
    watch = _Watch()
    start = 1_700_000_000_000
    for i in range(2_000):  # 2,000 decisions over 2 s, each 20 ms after its event
        watch.take("decisions", *decision(start + i - 20, start + i))
    clock[0] += 60.0  # long after the last decision: the live 5 s window is empty
    watch.ended = True
    figures = watch.figures()
    assert figures.decisions == 2_000
    assert figures.throughput == pytest.approx(2_000 / 1.999)
    assert figures.p50_ms == pytest.approx(20.0)
    assert figures.p99_ms == pytest.approx(20.0)

    console = Console(width=160, record=True, force_terminal=False)
    console.print(watch.view())
    text = console.export_text()
    rate = re.search(r"throughput[^\n]*?([\d,]+) /s", text)
    assert rate and int(rate.group(1).replace(",", "")) > 0, text
    latency = re.search(r"p50 / p99[^\n]*?(\d+) / (\d+) ms", text)
    assert latency and latency.groups() == ("20", "20"), text
