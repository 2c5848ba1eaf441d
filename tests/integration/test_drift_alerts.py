"""A covariate shift in the stream raises a drift alert from the running engine."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import orjson

from models.datasets import agrawal_stream
from schemas.contracts import DriftAlert, FairnessReport
from tests.support.scorer import ScorerSetup


def test_loan_shift_raises_one_alert_per_episode_then_a_resolution(
    scorer_setup: ScorerSetup,
) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    drift_at, drift_end, count = 8_000, 11_000, 17_000
    options = {"seed": 51, "start": start, "interval": timedelta(milliseconds=10),
               "run_id": "drift"}  # fmt: skip
    shifted = agrawal_stream(drift_end, drift_at=drift_at, drift_factor=1.5, **options)
    settled = agrawal_stream(count, **options)  # the same events, never shifted
    stream = [*shifted, *list(settled)[drift_end:]]  # loan amounts back to normal at 11,000
    records = [(e.event["entity_id"].encode(), orjson.dumps(e.event)) for e in stream]
    scorer_setup.env["SCORER_MONITOR_WINDOW_SECONDS"] = "5"  # 500 events per window
    engine, owner = scorer_setup.serve(), scorer_setup.monitor()
    scorer_setup.produce(records)

    reader = scorer_setup.consumer("drift-alerts", "fairness-reports")
    alerts_topic = scorer_setup.topics["drift-alerts"]

    def loan_resolved(messages: list) -> bool:
        return any(
            m.topic() == alerts_topic
            and orjson.loads(m.value()).get("feature") == "loan"
            and orjson.loads(m.value())["status"] == "resolved"
            for m in messages
        )

    messages = scorer_setup.read(reader, loan_resolved, timeout=240)
    reader.close()
    for process in (engine, owner):
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0, process.stdout.read().decode()[-3000:]

    drift_time = start + timedelta(milliseconds=10 * drift_at)
    alerts = [
        DriftAlert.model_validate_json(m.value()) for m in messages if m.topic() == alerts_topic
    ]
    reports = [FairnessReport.model_validate_json(m.value()) for m in messages
               if m.topic() != alerts_topic]  # fmt: skip
    opened = [a for a in alerts if a.status == "open"]
    assert opened, "no drift alert"
    for alert in opened:  # nothing fired on the stationary part of the stream
        assert alert.window.end_time is not None and alert.window.end_time > drift_time
    loan = [a for a in opened if a.feature == "loan"]
    assert len({a.alert_id for a in loan}) == 1  # one episode, no storm
    assert loan[0].model.version == 1 and loan[0].threshold < loan[0].value
    assert loan[0].window.end_time <= drift_time + timedelta(seconds=20)  # within 2,000 events
    resolved = [a for a in alerts if a.feature == "loan" and a.status == "resolved"]
    assert [a.alert_id for a in resolved] == [loan[0].alert_id]  # the same episode, closed once
    assert resolved[0].window.start_time >= start + timedelta(milliseconds=10 * drift_end)
    assert reports and {r.attribute for r in reports} == {"age_band"}

    shown = subprocess.run([sys.executable, "-m", "streams.cli", "alerts", "--json"],
                           env=scorer_setup.env, capture_output=True, check=True)  # fmt: skip
    summary = orjson.loads(shown.stdout)
    assert "feature:loan" in {a["monitor_id"] for a in summary["open"] + summary["resolved"]}
    assert [f["basis"] for f in summary["fairness"]] == ["fairness:age_band:decisions"]
    table = subprocess.run(
        [sys.executable, "-m", "streams.cli", "alerts"],
        env={**scorer_setup.env, "COLUMNS": "200"},  # a wide terminal
        capture_output=True,
        text=True,
        check=True,
    )
    assert "drift episodes" in table.stdout and "feature:loan" in table.stdout
