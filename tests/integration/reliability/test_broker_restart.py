"""The broker stops and starts mid-stream under two engines: they reconnect on their own,
neither exits, and every event ends with a decision.

The test runs its own broker on free ports (the session's broker serves other tests).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import NewTopic

from models.registry import Registry
from models.training import TrainedModel
from streams.kafka.clients import admin_client
from streams.kafka.localbroker import LocalBroker, free_port_pair
from streams.settings import Settings
from tests.support.kafka import unique
from tests.support.models import RegisterModels
from tests.support.reliability import EngineProcess, OutputReader, group_lag, valid_records
from tests.support.scorer import TOPIC_SETTINGS, ScorerSetup

DOWN_S = 8.0


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        pytest.skip("restarts a local broker; KAFKA_BOOTSTRAP_SERVERS names a shared cluster")
    broker = LocalBroker(port=free_port_pair(), home=tmp_path / "kafka")
    broker.up()
    try:
        yield broker
    finally:
        broker.down()


@pytest.fixture
def restart_setup(
    own_broker: LocalBroker,
    tmp_path: Path,
    trained_logistic: TrainedModel,
    register_models: RegisterModels,
) -> Iterator[ScorerSetup]:
    topics = {name: unique(name.replace(".", "-")) for name in TOPIC_SETTINGS}
    admin = admin_client(Settings(bootstrap_servers=own_broker.address))
    futures = admin.create_topics(
        [NewTopic(topics[name], parts, 1) for name, (_, parts) in TOPIC_SETTINGS.items()]
    )
    for future in futures.values():
        future.result(timeout=30)
    registry = Registry(tmp_path / "registry")
    register_models(trained_logistic, registry=registry, champion=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "SCORER_"))}
    env.update({setting: topics[name] for name, (setting, _) in TOPIC_SETTINGS.items()})
    env.update({"KAFKA_BOOTSTRAP_SERVERS": own_broker.address,
                "SCORER_REGISTRY": str(registry.root), "SCORER_MODEL": "loans",
                "SCORER_GROUP_ID": unique("scorer"), "SCORER_MAX_WAIT_MS": "20"})  # fmt: skip
    setup = ScorerSetup(own_broker.address, topics, registry, "loans", env)
    yield setup
    for process in setup.processes:
        if process.poll() is None:
            process.kill()
        process.wait(30)


def test_engines_ride_out_a_broker_restart(
    restart_setup: ScorerSetup, own_broker: LocalBroker, tmp_path: Path
) -> None:
    setup = restart_setup
    records, ids = valid_records(30_000, seed=83, run_id="restart")
    engines = [EngineProcess(setup, tmp_path, "--max-batch", "100") for _ in range(2)]
    reader = OutputReader(setup, "decisions")
    setup.produce(records[:20_000])
    reader.read_until(lambda r: len(r.of("decisions")) >= 3_000, "decisions", engines=engines)

    own_broker.down()
    time.sleep(DOWN_S)
    for engine in engines:
        engine.require_alive()
    decided_before_restart = len(set(reader.event_ids("decisions")))
    own_broker.up()
    setup.produce(records[20_000:])

    reader.read_until(lambda r: set(r.event_ids("decisions")) >= set(ids), "every decision",
                      timeout=240, engines=engines)  # fmt: skip
    reader.read_until(lambda r: group_lag(setup) == 0, "all committed", engines=engines)
    reader.read_until(lambda r: all(e.readiness()[0] == 200 for e in engines), "both ready",
                      engines=engines)  # fmt: skip
    reader.close()
    for engine in engines:
        assert engine.terminate() == 0
    assert decided_before_restart < len(ids)  # the restart came mid-stream
    print(f"broker restart: down {DOWN_S:.0f}s after {decided_before_restart} decisions; "
          f"both engines stayed up, {len(ids)} events decided")  # fmt: skip
