"""A promotion during a run takes effect at one offset per partition, skipping nothing."""

from __future__ import annotations

import signal
import time
from collections import defaultdict
from datetime import UTC, datetime

import orjson

from models.datasets import agrawal, agrawal_events
from models.training import train
from schemas.contracts import ModelEvent
from streams.model_events import publish_model_event
from streams.settings import load_settings
from tests.integration.conftest import ScorerSetup


def test_promotion_switches_once_per_partition(scorer_setup: ScorerSetup) -> None:
    challenger = train(agrawal(3000, seed=77), "logistic", seed=77)
    v2 = scorer_setup.registry.register(
        challenger.estimator,
        name="loans",
        kind="logistic",
        manifest_fields=challenger.manifest_fields,
    )
    events = list(agrawal_events(30_000, seed=45, run_id="swap"))
    source: dict[str, tuple[int, int]] = {}
    engine = scorer_setup.serve("--max-batch", "100")
    # First half, then the promotion while the engine is busy, then the second half.
    first, second = events[:15_000], events[15_000:]
    scorer_setup.produce([(e["entity_id"].encode(), orjson.dumps(e)) for e in first],
                         partition_of=lambda i: i % 3)  # fmt: skip
    reader = scorer_setup.consumer("decisions")
    seen = scorer_setup.read(reader, lambda m: len(m) >= 2_000)
    scorer_setup.registry.set_alias("loans", "champion", v2.version, actor="test")
    problem = publish_model_event(
        load_settings(scorer_setup.env),
        ModelEvent(event_type="promoted", model_name="loans", version=v2.version, alias="champion",
                   previous_version=1, sha256=v2.artifact.sha256, actor="test",
                   occurred_at=datetime.now(UTC)),
    )  # fmt: skip
    assert problem is None
    scorer_setup.produce([(e["entity_id"].encode(), orjson.dumps(e)) for e in second],
                         partition_of=lambda i: i % 3)  # fmt: skip
    for i, event in enumerate(first):
        source[event["event_id"]] = (i % 3, i // 3)
    for i, event in enumerate(second):
        source[event["event_id"]] = (i % 3, 5_000 + i // 3)
    seen += scorer_setup.read(reader, lambda m: len(seen) + len(m) >= len(events))
    time.sleep(1)
    seen.extend(m for m in reader.consume(10_000, timeout=2) if m.error() is None)
    reader.close()
    engine.send_signal(signal.SIGTERM)
    assert engine.wait(60) == 0

    by_partition: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for message in seen:
        decision = orjson.loads(message.value())
        partition, offset = source[decision["event_id"]]
        by_partition[partition].append((offset, decision["model"]["version"]))
    assert sorted(len(v) for v in by_partition.values()) == [10_000] * 3  # nothing skipped
    switched_within = 0
    for partition, decided in by_partition.items():
        versions = [version for _, version in sorted(decided)]
        switch = versions.index(2)  # the promotion reached every partition
        assert versions[:switch] == [1] * switch
        assert versions[switch:] == [2] * (len(versions) - switch), (
            f"partition {partition}: v1 reappeared after the switch"
        )
        switched_within += switch > 0
    # The engine had scored with v1 before the promotion, on at least one partition.
    assert switched_within >= 1
