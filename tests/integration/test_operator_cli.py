"""`scorer tail` and `scorer explain` read what the engine wrote."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter

import orjson

from models.datasets import agrawal_events
from tests.support.scorer import ScorerSetup


def scorer(setup: ScorerSetup, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], env=setup.env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def test_tail_and_explain(scorer_setup: ScorerSetup) -> None:
    events = list(agrawal_events(300, seed=61, run_id="ops"))
    records = [(e["entity_id"].encode(), orjson.dumps(e)) for e in events]
    records.append((b"bad", b"{not json"))
    scorer_setup.produce(records)
    engine = scorer_setup.serve()
    reader = scorer_setup.consumer("decisions", "events.dlq")
    messages = scorer_setup.read(reader, lambda m: len(m) >= 301)
    reader.close()
    engine.send_signal(signal.SIGTERM)
    assert engine.wait(60) == 0

    tail = scorer(scorer_setup, "tail", "decisions", "-n", "2", "--json")
    assert tail.returncode == 0, tail.stderr
    lines = tail.stdout.strip().splitlines()
    assert len(lines) == 6  # two per partition, three partitions
    assert {orjson.loads(line)["event_id"] for line in lines} <= {e["event_id"] for e in events}

    dlq = scorer(scorer_setup, "tail", "dlq")
    assert dlq.returncode == 0 and "INVALID_JSON" in dlq.stdout

    decisions = {orjson.loads(m.value())["event_id"]: orjson.loads(m.value()) for m in messages
                 if m.topic() == scorer_setup.topics["decisions"]}  # fmt: skip
    declined = next(d for d in decisions.values() if d["decision"] == "decline")
    shown = scorer(scorer_setup, "explain", declined["event_id"])
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert declined["event_id"] in out and "decline" in out and "loans v1" in out
    assert "additivity error" in out
    assert Counter(code["code"] in out for code in declined["reason_codes"]) == Counter(
        {True: len(declined["reason_codes"])}
    )

    status = scorer(scorer_setup, "status")
    assert status.returncode == 0, status.stderr
    group = scorer_setup.env["SCORER_GROUP_ID"]
    lag_row = next(line for line in status.stdout.splitlines() if group in line)
    assert lag_row.split("│")[2].strip() == "0"  # everything consumed and committed
    assert "loans" in status.stdout and scorer_setup.topics["events"] in status.stdout

    missing = scorer(scorer_setup, "explain", "no-such-event", "--timeout", "5")
    assert missing.returncode == 1 and "no decision for event 'no-such-event'" in missing.stderr
