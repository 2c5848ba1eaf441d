"""Fairness on the real broker: a breach between two large groups alerts; a tiny group that
is treated badly does not (the window is reported as insufficient data instead)."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson

from models.datasets import agrawal_stream
from models.scoring_model import ScoringModel
from schemas.contracts import FairnessReport
from streams.core.scoring import score_batch
from tests.support.scorer import ScorerSetup

WINDOW = 500  # events per 5 s window at one event every 10 ms


def test_breach_alerts_and_a_small_group_does_not(scorer_setup: ScorerSetup) -> None:
    setup = scorer_setup
    start = datetime(2026, 5, 1, tzinfo=UTC)
    stream = [e.event for e in agrawal_stream(7_500, seed=61, start=start, run_id="fair",
                                              interval=timedelta(milliseconds=10))]  # fmt: skip
    champion = ScoringModel.from_loaded(setup.registry.load("loans", 1))
    decisions = [d["decision"] for d in score_batch(champion, stream, received_at=0.0).decisions]
    rng = np.random.default_rng(3)
    tiny = 0
    for i, (event, decision) in enumerate(zip(stream, decisions, strict=True)):
        if i < 6 * WINDOW:  # windows 0-5: the group follows the decision, a breach
            group = "group-a" if decision == "approve" else "group-b"
        elif i < 12 * WINDOW and decision != "approve" and tiny < 20 * (i // WINDOW - 5):
            group, tiny = "tiny", tiny + 1  # windows 6-11: 20 adverse decisions a window
        else:  # otherwise two balanced groups
            group = "group-a" if rng.random() < 0.5 else "group-b"
        event["context"] = {"age_band": group}

    setup.env["SCORER_MONITOR_WINDOW_SECONDS"] = "5"
    processes = [setup.serve(), setup.monitor()]
    setup.produce([(e["entity_id"].encode(), orjson.dumps(e)) for e in stream])
    reader = setup.consumer("fairness-reports", read_committed=True)
    messages = setup.read(reader, lambda ms: len(ms) >= 12)  # windows 0-11 judged
    reader.close()
    for process in processes:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0

    reports = {}
    for message in messages:
        report = FairnessReport.model_validate_json(message.value())
        assert report.window.start_time is not None
        window = int((report.window.start_time - start).total_seconds() // 5)
        reports[window] = report
    breach, small = [reports[w] for w in range(6)], [reports[w] for w in range(6, 12)]
    for report in breach:
        assert report.status == "alert", report
        assert report.disparate_impact_ratio is not None and report.disparate_impact_ratio < 0.8
        assert min(g.count for g in report.groups) >= 100
    for report in small:
        assert report.status == "insufficient_data", report
        counts = {g.group: g.count for g in report.groups}
        assert counts["tiny"] == 20 and min(counts["group-a"], counts["group-b"]) >= 100
        rates = {g.group: g.selection_rate for g in report.groups}
        assert rates["tiny"] == 0.0  # treated badly, yet too few to judge
