"""The topic spec file is read strictly; names follow the settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.contracts import CONTRACTS
from schemas.errors import TopicSpecError
from streams.kafka.topics import load_topic_specs
from streams.settings import load_settings


def test_every_design_topic_is_declared() -> None:
    specs = {s.name: s for s in load_topic_specs(load_settings({}))}
    assert set(specs) == {
        "events",
        "decisions",
        "decisions.shadow",
        "explanations",
        "drift-alerts",
        "fairness-reports",
        "feedback",
        "events.dlq",
        "model-events",
        "monitor-summaries",
        "monitor-checkpoints",
        "outcomes",
        "outcome-join-input",
        "outcome-join-changelog",
    }
    assert specs["model-events"].config["cleanup.policy"] == "compact"
    assert specs["monitor-checkpoints"].config["cleanup.policy"] == "compact"
    assert specs["outcome-join-changelog"].config["cleanup.policy"] == "compact"
    assert "cleanup.policy" not in specs["outcome-join-input"].config
    # The join writes partition p of its changelog and of outcomes for its input partition p.
    join_topics = ("outcome-join-input", "outcome-join-changelog", "outcomes")
    assert len({specs[t].partitions for t in join_topics}) == 1
    assert (specs["outcomes"].value, specs["outcomes"].key) == ("Outcome", "event_id")
    assert {specs[t].value for t in ("outcome-join-input", "outcome-join-changelog")} == {
        "JoinRecord"
    }
    assert specs["monitor-summaries"].partitions == 1  # one owner reads them in order
    assert specs["events"].partitions == 6 and specs["events"].replication_factor == 1
    assert all(spec.value in CONTRACTS for spec in specs.values())


def test_names_follow_settings() -> None:
    specs = load_topic_specs(load_settings({"SCORER_TOPIC_EVENTS": "loan-applications"}))
    assert "loan-applications" in {s.name for s in specs}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("topics: [1, 2]", "expected a mapping with a 'topics' mapping"),
        (
            "topics:\n  x:\n    setting: nope\n    key: k\n    value: Decision\n",
            "setting 'nope' names no topic setting",
        ),
        (
            "topics:\n  x:\n    setting: topic_events\n    key: k\n    value: Decision\n"
            "    partitions: 0\n",
            "'partitions' must be a positive integer",
        ),
        ("topics: {", "not valid YAML"),
    ],
)
def test_invalid_spec_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "topics.yaml"
    path.write_text(text)
    with pytest.raises(TopicSpecError, match=message):
        load_topic_specs(load_settings({}), path)
