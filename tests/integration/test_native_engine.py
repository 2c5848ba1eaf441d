"""The native engine on the real broker: nothing lost, nothing extra, crashes survived."""

from __future__ import annotations

import base64
import signal
from collections import Counter

import pytest

from schemas.contracts import DeadLetter, Decision, Explanation
from tests.support.kafka import read_to_end, wait_for_members
from tests.support.scorer import ScorerSetup, committed_equals_end, event_ids, mixed_stream


def test_every_valid_event_scored_once_every_invalid_dead_lettered(
    scorer_setup: ScorerSetup,
) -> None:
    records, valid = mixed_stream(20_000, malformed_every=20, seed=41)
    invalid_count = len(records) - len(valid)
    assert invalid_count == 1000
    scorer_setup.produce(records)
    engine = scorer_setup.serve()

    outputs = scorer_setup.consumer("decisions", "explanations", "events.dlq")
    topics = scorer_setup.topics

    def complete(messages: list) -> bool:
        counts = Counter(m.topic() for m in messages)
        return (
            counts[topics["decisions"]] >= len(valid)
            and counts[topics["explanations"]] >= len(valid)
            and counts[topics["events.dlq"]] >= invalid_count
        )

    messages = scorer_setup.read(outputs, complete)
    engine.send_signal(signal.SIGTERM)
    assert engine.wait(60) == 0
    messages.extend(read_to_end(outputs))  # all it wrote: anything extra is there now
    outputs.close()

    by_topic: dict[str, list] = {}
    for message in messages:
        by_topic.setdefault(message.topic(), []).append(message)
    decisions = by_topic[topics["decisions"]]
    explanations = by_topic[topics["explanations"]]
    letters = by_topic[topics["events.dlq"]]

    assert Counter(event_ids(decisions)) == Counter({event_id: 1 for event_id in valid})
    assert Counter(event_ids(explanations)) == Counter({event_id: 1 for event_id in valid})
    for message in decisions[:500]:
        decision = Decision.model_validate_json(message.value())
        headers = dict(message.headers())
        assert headers["event_id"].decode() == decision.event_id
        assert headers["model_sha256"].decode() == decision.model.sha256
        assert message.key() == decision.entity_id.encode()
    for message in explanations:
        explanation = Explanation.model_validate_json(message.value())
        total = explanation.base_value + sum(explanation.contributions.values())
        assert abs(total - explanation.output_value) <= 1e-6

    assert len(letters) == invalid_count
    sent = {}
    for message in letters:
        letter = DeadLetter.model_validate_json(message.value())
        sent[(letter.source_partition, letter.source_offset)] = letter
    assert len(sent) == invalid_count  # one per invalid message
    reasons = Counter(letter.reason.value for letter in sent.values())
    assert {
        "INVALID_JSON",
        "NON_FINITE",
        "WRONG_TYPE",
        "MISSING_FEATURE",
        "UNKNOWN_CATEGORY",
        "SCHEMA_VIOLATION",
        "NOT_AN_OBJECT",
    } <= set(reasons)
    originals = {value for _, value in records if value is not None}
    for letter in sent.values():
        original = base64.b64decode(letter.original_value_b64)
        assert original in originals or original == b""

    assert committed_equals_end(scorer_setup)


@pytest.mark.parametrize("exactly_once", [False, True], ids=["at-least-once", "exactly-once"])
def test_sigkill_of_one_of_two_engines(scorer_setup: ScorerSetup, exactly_once: bool) -> None:
    records, valid = mixed_stream(30_000, malformed_every=1_000_000, seed=43)
    extra = ("--exactly-once",) if exactly_once else ()
    survivor = scorer_setup.serve(*extra, "--max-batch", "200")
    victim = scorer_setup.serve(*extra, "--max-batch", "200")
    wait_for_members(scorer_setup.bootstrap, scorer_setup.env["SCORER_GROUP_ID"], 2,
                     engines=[scorer_setup])  # fmt: skip
    scorer_setup.produce(records)

    reader = scorer_setup.consumer("decisions", read_committed=exactly_once)
    seen: list = scorer_setup.read(reader, lambda m: len(m) >= len(valid) // 3)
    victim.send_signal(signal.SIGKILL)
    victim.wait(30)
    seen += scorer_setup.read(reader, lambda m: len(set(event_ids(seen + m))) >= len(valid))
    survivor.send_signal(signal.SIGTERM)
    assert survivor.wait(60) == 0
    seen.extend(read_to_end(reader))  # all the survivor wrote, duplicates included
    reader.close()

    counts = Counter(event_ids(seen))
    assert set(counts) == valid
    if exactly_once:
        assert max(counts.values()) == 1
