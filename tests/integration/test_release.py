"""Releasing a model on the real broker: replay recorded traffic, gate, refuse, force, audit."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from models.datasets import agrawal_stream, from_csv
from models.training import TrainedModel, train
from tests.support.models import RegisterModels, TrainModel
from tests.support.scorer import ScorerSetup

EVENTS = 400


def scorer(setup: ScorerSetup, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], env=setup.env,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip


def _record_traffic(setup: ScorerSetup) -> None:
    """Serve EVENTS applications with the champion, and label half of them afterwards."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    stream = list(agrawal_stream(EVENTS, seed=61, start=start, run_id="rel"))
    setup.produce([(e.event["entity_id"].encode(), orjson.dumps(e.event)) for e in stream])
    engine = setup.serve()
    reader = setup.consumer("decisions")
    setup.read(reader, lambda m: len(m) >= EVENTS)
    reader.close()
    engine.send_signal(signal.SIGTERM)
    assert engine.wait(60) == 0
    producer = Producer({"bootstrap.servers": setup.bootstrap})
    for labelled in stream[: EVENTS // 2]:
        feedback = {"event_id": labelled.event["event_id"], "label": labelled.label,
                    "label_time": (start + timedelta(days=30)).isoformat()}  # fmt: skip
        producer.produce(setup.topics["feedback"], orjson.dumps(feedback),
                         feedback["event_id"].encode())  # fmt: skip
    assert producer.flush(30) == 0


def _groups(admin: AdminClient) -> set[str]:
    return {g.group_id for g in admin.list_consumer_groups().result(timeout=30).valid}


def _model_events(setup: ScorerSetup, count: int) -> list[dict[str, Any]]:
    reader = setup.consumer("model-events")
    messages = setup.read(reader, lambda m: len(m) >= count, timeout=60, processes=False)
    reader.close()
    return [orjson.loads(m.value()) for m in messages]


def test_replay_gates_refusal_and_forced_promotion(
    scorer_setup: ScorerSetup,
    trained_logistic: TrainedModel,
    train_model: TrainModel,
    register_models: RegisterModels,
    kafka_admin: AdminClient,
    tmp_path: Path,
) -> None:
    setup = scorer_setup
    _record_traffic(setup)
    other_function = train_model(rows=3000, seed=31, classification_function=7)
    same, lenient = (r.version for r in register_models(trained_logistic, other_function,
                                                        registry=setup.registry))  # fmt: skip

    groups_before = _groups(kafka_admin)
    report_file = tmp_path / "same.json"
    identical = scorer(setup, "replay", "--model", f"loans:{same}", "--json", str(report_file))
    assert identical.returncode == 0, identical.stderr
    assert f"flips    0.00% of {EVENTS} decisions change" in identical.stdout
    report = json.loads(report_file.read_text())
    assert report["compared"] == EVENTS and report["flips"]["flipped"] == 0
    assert report["champion_versions"] == {"loans v1": EVENTS}
    assert report["events"]["labelled"] == EVENTS // 2
    assert report["performance"]["candidate"] == report["performance"]["champion"]
    assert report["score_shift"]["max_abs"] < 1e-9

    shifted_file = tmp_path / "shifted.json"
    page = tmp_path / "shifted.html"
    shifted = scorer(setup, "replay", "--model", f"loans:{lenient}", "--json", str(shifted_file),
                     "--out", str(page))  # fmt: skip
    assert shifted.returncode == 0, shifted.stderr
    flips = json.loads(shifted_file.read_text())["flips"]
    html = page.read_text()  # the same plots as `scorer report`, one per comparison
    assert html.count('<svg class="plot"') >= 4 and "decision flips by direction" in html
    assert "review-&gt;approve" in html or "decline-&gt;approve" in html
    towards_approval = sum(n for d, n in flips["by_direction"].items() if d.endswith("->approve"))
    assert flips["flip_rate"] > 0.3  # function 7 calls far fewer applicants adverse
    assert towards_approval >= 0.9 * flips["flipped"]
    assert flips["newly_favourable"] > 10 * max(1, flips["newly_adverse"])

    window = scorer(setup, "replay", "--model", "loans", "--from", "0:0,1:0,2:0", "--max", "50",
                    "--json", str(tmp_path / "window.json"))  # fmt: skip
    assert window.returncode == 0, window.stderr
    assert json.loads((tmp_path / "window.json").read_text())["events"]["records"] == 50
    # replay joined no group and committed nothing (other tests' groups may expire meanwhile)
    assert _groups(kafka_admin) - groups_before == set()

    # the identical candidate passes every gate once the fairness floor is set for this data
    policy = setup.registry.root / "loans" / "promotion-policy.yaml"
    policy.write_text("version: 2\nfairness:\n  min_disparate_impact: 0.5\n")
    passed = scorer(setup, "models", "promote", "loans", str(same), "--actor", "ana")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "FAIL" not in passed.stdout and "SKIP" not in passed.stdout
    assert f"PASS  replay_flips          0.00% of {EVENTS} decisions change" in passed.stdout
    assert setup.registry.aliases("loans")["champion"] == same

    refused = scorer(setup, "models", "promote", "loans", str(lenient), "--actor", "ana")
    assert refused.returncode == 1
    assert "FAIL  replay_flips" in refused.stdout and "FAIL  holdout" in refused.stdout
    assert (
        refused.stderr.strip()
        .splitlines()[-1]
        .startswith(f"scorer: error: loans v{lenient} not promoted to champion: gate(s) failed: ")
    )
    assert setup.registry.aliases("loans")["champion"] == same

    forced = scorer(setup, "models", "promote", "loans", str(lenient), "--force", "--reason",
                    "pilot for the new segment", "--actor", "bo")  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    assert setup.registry.aliases("loans")["champion"] == lenient
    last = setup.registry.history("loans")[-1]
    assert (last["action"], last["forced"], last["actor"]) == ("promote", True, "bo")
    assert last["reason"].endswith("pilot for the new segment")
    assert {g["gate"]: g["status"] for g in last["gates"]}["replay_flips"] == "fail"
    assert {g["policy_version"] for g in last["gates"]} == {2}

    events = _model_events(setup, 3)
    expected = [("promoted", same, "ana"), ("refused", lenient, "ana"), ("promoted", lenient, "bo")]
    assert [(e["event_type"], e["version"], e["actor"]) for e in events] == expected
    forced_event = events[-1]
    assert "forced past failed gate(s)" in forced_event["reason"]
    assert "pilot for the new segment" in forced_event["reason"]
    assert {g["gate"] for g in forced_event["gates"] if g["status"] == "fail"} >= {"replay_flips"}

    timeline = scorer(setup, "models", "history", "loans")
    assert timeline.returncode == 0
    rows = timeline.stdout.splitlines()[1:]
    assert [r.split()[2] for r in rows] == ["promote", "promote", "refused", "promote"]
    assert "promote (forced)" in rows[-1] and "replay_flips" in rows[-1]


def test_an_incompatible_spec_is_refused_before_traffic_is_read(
    scorer_setup: ScorerSetup,
    train_model: TrainModel,
    register_models: RegisterModels,
    tmp_path: Path,
) -> None:
    setup = scorer_setup
    setup.produce([(b"x", orjson.dumps(e.event)) for e in agrawal_stream(50, seed=3)])
    csv = tmp_path / "two-features.csv"
    lines = ["salary,loan,default"] + [
        f"{40_000 + i * 97},{i * 13 % 500},{i % 2}" for i in range(300)
    ]
    csv.write_text("\n".join(lines) + "\n")
    narrow_model = train(from_csv(csv, "default", []), "logistic", seed=1)
    narrow = register_models(narrow_model, registry=setup.registry)[0].version
    # a topic that does not exist: reading recorded traffic would have said so
    setup.env["SCORER_TOPIC_EVENTS"] = "missing-events-topic"
    refused = scorer(setup, "models", "promote", "loans", str(narrow))
    assert refused.returncode == 1
    gates = [line.split()[:2] for line in refused.stdout.splitlines() if line.startswith("  ")]
    assert gates == [["FAIL", "feature_spec"]]
    assert "does not accept feature(s) producers send" in refused.stdout
    assert "missing-events-topic" not in refused.stdout + refused.stderr
    assert setup.registry.aliases("loans") == {"champion": 1}
    event = _model_events(setup, 1)[0]
    assert (event["event_type"], event["version"]) == ("refused", narrow)
    assert [g["gate"] for g in event["gates"]] == ["feature_spec"]
    # the same command with a compatible candidate does read traffic, and names the topic
    compatible = register_models(train_model(rows=1500, seed=4), registry=setup.registry)[0].version
    reads = scorer(setup, "models", "promote", "loans", str(compatible))
    assert "topic 'missing-events-topic' not found" in reads.stdout
