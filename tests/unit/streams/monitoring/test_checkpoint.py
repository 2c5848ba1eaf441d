"""State survives restarts: a set restored from a checkpoint continues like the original."""

from __future__ import annotations

import json

import pytest

from streams.monitoring import MonitoringError, MonitorSet
from tests.support.synthetic import SPLIT_CONFIG as CONFIG
from tests.support.synthetic import SyntheticModel, comparable, run_single


@pytest.mark.parametrize("stop_after", [1, 40, 77])
def test_a_restored_set_gives_the_records_of_an_uninterrupted_one(
    synthetic: SyntheticModel, batches: list, stop_after: int
) -> None:
    uninterrupted, _ = run_single(synthetic, batches)

    first = MonitorSet(synthetic.manifest, CONFIG)
    records: list[dict] = []
    for events, labels in batches[:stop_after]:
        records += first.observe(events)
        records += first.observe_labels(labels)
    checkpoint = json.dumps(first.state())  # what reaches Kafka
    del first

    second = MonitorSet(synthetic.manifest, CONFIG)
    second.restore(json.loads(checkpoint))
    for events, labels in batches[stop_after:]:
        records += second.observe(events)
        records += second.observe_labels(labels)
    records += second.flush()

    assert any(r.get("status") == "open" for r in uninterrupted)  # alerts to compare
    assert comparable(records) == comparable(uninterrupted)


def test_state_of_another_model_is_refused(synthetic: SyntheticModel) -> None:
    state = MonitorSet(synthetic.manifest, CONFIG).state()
    state["model"] = {**state["model"], "version": 99}
    with pytest.raises(MonitoringError, match="does not belong"):
        MonitorSet(synthetic.manifest, CONFIG).restore(state)
