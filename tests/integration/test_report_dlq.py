"""Operators on a real broker: dead letters republished once after a fix, and the HTML report."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from confluent_kafka import Consumer, TopicPartition

from models.datasets import agrawal_stream
from tests.support.browser import assert_plots_drawn, probe_page, screenshot
from tests.support.scorer import ScorerSetup

FIX = {"features": {"map": {"car": {"SEDAN": 3}}, "default": {"elevel": 0}}}
NUMERIC = ("salary", "commission", "hvalue", "hyears", "loan")
CATEGORICAL = ("elevel", "car", "zipcode")


def scorer(setup: ScorerSetup, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], env=setup.env,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip


def topic_size(setup: ScorerSetup, name: str) -> int:
    consumer = Consumer({"bootstrap.servers": setup.bootstrap, "group.id": "size"})
    try:
        topic = setup.topics[name]
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in partitions)  # fmt: skip
    finally:
        consumer.close()


def malformed_stream() -> tuple[list[tuple[bytes, bytes]], dict[str, str]]:
    """7,000 loan applications, the loan amount shifted from the 3,000th; six broken."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    stream = agrawal_stream(7000, seed=53, drift_at=3000, drift_factor=1.5, start=start,
                            interval=timedelta(milliseconds=10), run_id="rep")  # fmt: skip
    records, broken = [], {}
    for i, labelled in enumerate(stream):
        event = labelled.event
        if i in (100, 101, 102):
            event = {**event, "features": {**event["features"], "car": "SEDAN"}}
            broken[event["event_id"]] = "UNKNOWN_CATEGORY"
        elif i in (200, 201):
            features = {k: v for k, v in event["features"].items() if k != "elevel"}
            event = {**event, "features": features}
            broken[event["event_id"]] = "MISSING_FEATURE"
        records.append((event["entity_id"].encode(), orjson.dumps(event)))
    records.insert(300, (b"broken", b'{"event_id": "rep-broken", '))
    return records, broken


def test_republish_fixed_dead_letters_once_then_report(
    scorer_setup: ScorerSetup, tmp_path: Path
) -> None:
    records, broken = malformed_stream()
    scorer_setup.env["SCORER_MONITOR_WINDOW_SECONDS"] = "5"  # 500 events per window
    engine, owner = scorer_setup.serve(), scorer_setup.monitor()
    scorer_setup.produce(records)
    topics = scorer_setup.topics
    reader = scorer_setup.consumer("decisions", "events.dlq", "drift-alerts")

    def served(messages: list) -> bool:
        count = Counter(m.topic() for m in messages)
        alerts = [orjson.loads(m.value()) for m in messages if m.topic() == topics["drift-alerts"]]
        loan_alert = any(alert.get("feature") == "loan" for alert in alerts)
        return (
            count[topics["decisions"]] >= 6995 and count[topics["events.dlq"]] >= 6 and loan_alert
        )

    messages = scorer_setup.read(reader, served, timeout=300)
    letters = [orjson.loads(m.value()) for m in messages if m.topic() == topics["events.dlq"]]
    assert Counter(d["reason"] for d in letters) == Counter(
        {"UNKNOWN_CATEGORY": 3, "MISSING_FEATURE": 2, "INVALID_JSON": 1}
    )

    # a dry run without a fix: every dead letter would be rejected again, nothing is sent
    dry = scorer(scorer_setup, "dlq", "republish", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.strip().splitlines()
    assert len(lines) == 7 and lines[-1].startswith("dry run: 0 would be published")
    assert sum("still-rejected  UNKNOWN_CATEGORY: feature 'car'" in line for line in lines) == 3
    assert sum("still-rejected  MISSING_FEATURE" in line for line in lines) == 2
    assert topic_size(scorer_setup, "events") == 7001

    fix = tmp_path / "fix.json"
    fix.write_bytes(orjson.dumps(FIX))
    dry = scorer(scorer_setup, "dlq", "republish", "--dry-run", "--fix", str(fix), "--show")
    assert dry.returncode == 0, dry.stderr
    would = [line for line in dry.stdout.splitlines() if "would publish" in line]
    assert {line.split()[2] for line in would} == set(broken)
    assert all('"car":3' in line for line in would if "UNKNOWN_CATEGORY" in line)
    assert "fix-failed  the value is not JSON" in dry.stdout
    assert topic_size(scorer_setup, "events") == 7001

    # the republish: five fixed records go back to the events topic and get decisions
    replay = scorer(scorer_setup, "dlq", "republish", "--fix", str(fix),
                    "--reason", "UNKNOWN_CATEGORY", "--reason", "MISSING_FEATURE")  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout.strip().splitlines()[-1].startswith("published 5 to " + topics["events"])
    fresh = scorer_setup.consumer("decisions")
    decided = scorer_setup.read(
        fresh, lambda ms: set(broken) <= {orjson.loads(m.value())["event_id"] for m in ms}
    )
    fresh.close()
    replayed = [orjson.loads(m.value()) for m in decided
                if orjson.loads(m.value())["event_id"] in broken]  # fmt: skip
    assert len(replayed) == 5 and all(d["model"]["name"] == "loans" for d in replayed)
    assert topic_size(scorer_setup, "events") == 7006
    assert topic_size(scorer_setup, "events.dlq") == 6  # none was rejected again

    events = scorer_setup.consumer("events")
    republished = [m for m in scorer_setup.read(events, lambda ms: len(ms) >= 7006)
                   if m.headers()]  # fmt: skip
    events.close()
    dlq_coordinates = {(m.partition(), m.offset()) for m in messages
                       if m.topic() == topics["events.dlq"]}  # fmt: skip
    assert len(republished) == 5
    for message in republished:
        headers = {k: v.decode() for k, v in message.headers()}
        assert headers["dlq_topic"] == topics["events.dlq"]
        assert (int(headers["dlq_partition"]), int(headers["dlq_offset"])) in dlq_coordinates
        assert headers["dlq_reason"] == broken[headers["event_id"]]
        assert len(headers["republish_fix"]) == 64

    # a second republish finds nothing new; --again in a dry run would offer them again
    second = scorer(scorer_setup, "dlq", "republish", "--fix", str(fix))
    assert second.returncode == 0, second.stderr
    summary = second.stdout.strip().splitlines()[-1]
    assert summary.startswith("published 0") and "5 already-republished" in summary
    assert topic_size(scorer_setup, "events") == 7006
    again = scorer(scorer_setup, "dlq", "republish", "--fix", str(fix), "--again", "--dry-run")
    assert again.stdout.count("would publish") == 5

    bad = scorer(scorer_setup, "dlq", "republish", "--fix", str(tmp_path / "missing.json"))
    assert bad.returncode == 1 and "cannot read fix file" in bad.stderr

    # the report: every section, and Chromium draws every plot
    report = tmp_path / "report.html"
    made = scorer(scorer_setup, "report", "--out", str(report), "--events", "3000")
    assert made.returncode == 0, made.stderr
    html = report.read_text(encoding="utf-8")
    for section in ("features", "scores", "alerts", "fairness"):
        assert f'<section id="{section}">' in html
    assert "feature:loan" in html or ">loan<" in html
    probe = probe_page(html, tmp_path)
    titles = Counter({f"{n} (numeric)": 1 for n in NUMERIC})
    titles.update({f"{n} (categorical)": 1 for n in CATEGORICAL})
    titles.update({"model score": 1, "drift-alert episodes": 1, "age_band: selection rate": 1})
    assert_plots_drawn(probe, titles)
    assert probe["plots"][0]["title"] == "loan (numeric)"  # the most moved feature first
    assert screenshot(report, tmp_path, probe["height"]) == (1280, probe["height"])

    for process in (engine, owner):
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
