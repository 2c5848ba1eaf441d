"""The dead letters' size budget: a letter within it is sent as built, a larger one is cut to
fit (deterministically, still a valid DeadLetter that names the whole record), the cut is
counted, and the republish tool refuses a cut letter instead of publishing a prefix."""

from __future__ import annotations

import base64
import hashlib
import random
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import yaml
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from models.featurespec import Reject
from schemas.contracts import MAX_DETAIL_LENGTH, DeadLetter, RejectReason
from schemas.errors import ConfigError
from streams.core.dead_letter_size import (
    DEFAULT_DLQ_MAX_BYTES,
    LARGEST_DLQ_MAX_BYTES,
    MIN_DLQ_MAX_BYTES,
    budget_for_topic,
    dlq_budget,
    fit_dead_letter,
)
from streams.core.decode import dead_letter
from streams.dlq.fix import Fix
from streams.dlq.plan import DlqRecord, Outcome, Selection, plan_republish
from streams.engine.faust_engine import producer_max_request_size
from streams.engine.native import MAX_OUTPUT_BYTES
from streams.engine.processor import dead_letter_outputs
from streams.engine.records import ConsumedRecord
from streams.observability import ScorerMetrics
from streams.paths import infra_dir
from streams.settings import Settings, load_settings

FAILED_AT = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
KEY = b"applicant-17"


def big_value(size: int, seed: int = 7) -> bytes:
    """An event-shaped JSON record of ``size`` bytes with a random (incompressible) note."""
    head, tail = b'{"event_id":"big-1","context":{"note":"', b'"}}'
    noise = base64.b64encode(random.Random(seed).randbytes(size)).decode("ascii")
    return head + noise.encode()[: size - len(head) - len(tail)] + tail


def letter_of(value: bytes | None, key: bytes | None = KEY, detail: str = "too long") -> dict:
    letter = DeadLetter.from_raw(
        reason=RejectReason.SCHEMA_VIOLATION, detail=detail, topic="events", partition=4,
        offset=1234, value=value, key=key, timestamp_ms=1714564800000, event_id="big-1",
        scorer_version="0.1.0", failed_at=FAILED_AT,
    )  # fmt: skip
    return letter.model_dump(mode="json")


def dlq_topic_limit() -> int:
    topics = yaml.safe_load((infra_dir() / "topics.yaml").read_text(encoding="utf-8"))["topics"]
    return int(topics["events.dlq"]["config"]["max.message.bytes"])


# --- the budget --------------------------------------------------------------------------------


def test_the_default_budget_fits_the_dlq_topic_and_both_producers() -> None:
    limit = dlq_topic_limit()
    assert DEFAULT_DLQ_MAX_BYTES == budget_for_topic(limit) == dlq_budget(None, None)
    assert DEFAULT_DLQ_MAX_BYTES < limit <= MAX_OUTPUT_BYTES
    assert budget_for_topic(MAX_OUTPUT_BYTES) == LARGEST_DLQ_MAX_BYTES
    # the whole letter of a record of Kafka's default 1 MiB limit fits
    whole = fit_dead_letter(
        letter_of(big_value(1_048_576)), key=KEY, original=big_value(1_048_576),
        max_bytes=DEFAULT_DLQ_MAX_BYTES,
    )  # fmt: skip
    assert not whole.truncated


def test_the_budget_is_the_setting_lowered_to_what_the_topic_accepts() -> None:
    mib = 1024 * 1024
    assert dlq_budget(None, 10 * mib) == budget_for_topic(10 * mib)  # follows the topic
    assert dlq_budget(None, 1_048_588) == budget_for_topic(1_048_588) < 1_048_588
    assert dlq_budget(500_000, 2 * mib) == 500_000  # a smaller setting wins
    assert dlq_budget(4_000_000, 2 * mib) == budget_for_topic(2 * mib)  # never above the topic
    assert dlq_budget(4_000_000, None) == 4_000_000  # the topic's limit unknown
    assert dlq_budget(None, 1000) == MIN_DLQ_MAX_BYTES  # a letter's fields need room
    assert dlq_budget(None, 2**31) == LARGEST_DLQ_MAX_BYTES  # what the producers take


def test_the_setting_is_read_from_its_variable_and_bounded() -> None:
    assert load_settings({}).dlq_max_bytes is None
    assert load_settings({"SCORER_DLQ_MAX_BYTES": "1500000"}).dlq_max_bytes == 1_500_000
    for wrong in (str(MIN_DLQ_MAX_BYTES - 1), str(MAX_OUTPUT_BYTES + 1), "big"):
        with pytest.raises(ConfigError, match="dlq_max_bytes"):
            load_settings({"SCORER_DLQ_MAX_BYTES": wrong})


@pytest.mark.parametrize("budget", [MIN_DLQ_MAX_BYTES, DEFAULT_DLQ_MAX_BYTES, 10 * 1024 * 1024])
def test_the_faust_producer_sends_every_letter_within_the_budget(budget: int) -> None:
    value = big_value(budget)
    fitted = fit_dead_letter(letter_of(value), key=KEY, original=value, max_bytes=budget)
    headers = [("reason", b"SCHEMA_VIOLATION"), ("source_offset", b"9223372036854775807")]
    measured = DefaultRecordBatchBuilder.estimate_size_in_bytes(fitted.key, fitted.value, headers)
    assert fitted.truncated and measured <= producer_max_request_size(budget)


# --- the cut -----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 10, 5_000, 700_000])
def test_a_letter_within_the_budget_is_unchanged(size: int) -> None:
    value = big_value(size) if size else b""
    letter = letter_of(value)
    fitted = fit_dead_letter(letter, key=KEY, original=value, max_bytes=DEFAULT_DLQ_MAX_BYTES)
    assert fitted.value == orjson.dumps(letter) and fitted.key == KEY and not fitted.truncated
    parsed = DeadLetter.model_validate_json(fitted.value)
    assert parsed.original_value() == value and not parsed.original_truncated
    assert parsed.original_size_bytes is None and parsed.original_sha256 is None


@pytest.mark.parametrize(
    ("budget", "size"),
    [(MIN_DLQ_MAX_BYTES, 20_000), (1_032_204, 900_000), (DEFAULT_DLQ_MAX_BYTES, 4_000_000)],
)
def test_a_letter_over_the_budget_is_cut_to_fit_and_names_the_whole_record(
    budget: int, size: int
) -> None:
    value = big_value(size)
    letter = letter_of(value, detail="d" * MAX_DETAIL_LENGTH)
    assert len(orjson.dumps(letter)) > budget
    fitted = fit_dead_letter(letter, key=KEY, original=value, max_bytes=budget)
    assert fitted.truncated and fitted.key == KEY
    assert budget - 4 < len(fitted.value) + len(KEY) <= budget  # the longest prefix that fits

    cut = DeadLetter.model_validate_json(fitted.value)  # still the contract
    assert cut.original_truncated is True
    assert cut.original_size_bytes == size
    assert cut.original_sha256 == hashlib.sha256(value).hexdigest()
    kept = cut.original_value()
    assert 0 < len(kept) < size and value.startswith(kept) and len(kept) % 3 == 0
    whole = DeadLetter.model_validate(letter)
    same = {"reason", "detail", "source_topic", "source_partition", "source_offset",
            "source_timestamp_ms", "source_key_b64", "event_id", "failed_at",
            "scorer_version"}  # fmt: skip
    assert cut.model_dump(include=same) == whole.model_dump(include=same)
    # deterministic: the same letter is cut the same way
    assert fit_dead_letter(letter, key=KEY, original=value, max_bytes=budget) == fitted


def test_a_key_too_large_for_the_letter_is_left_out_but_nothing_is_dropped() -> None:
    budget = MIN_DLQ_MAX_BYTES
    key = b"k" * 7_500  # base64 in the letter (10,000) and the record key: no room for both
    fitted = fit_dead_letter(letter_of(b"{}", key=key), key=key, original=b"{}", max_bytes=budget)
    cut = DeadLetter.model_validate_json(fitted.value)
    assert fitted.key == key and cut.source_key_b64 is None  # the record still carries it
    assert cut.original_truncated and cut.original_value() == b"{}"
    assert len(fitted.value) + len(key) <= budget

    huge = b"k" * 20_000  # larger than the budget itself: the record goes without a key
    fitted = fit_dead_letter(letter_of(b"{}", key=huge), key=huge, original=b"{}", max_bytes=budget)
    assert fitted.key is None and len(fitted.value) <= budget
    assert DeadLetter.model_validate_json(fitted.value).source_offset == 1234


def test_old_letters_stay_valid_and_a_cut_letter_must_name_the_whole_record() -> None:
    old = letter_of(b"{oops")
    for field in ("original_truncated", "original_size_bytes", "original_sha256"):
        old.pop(field)
    assert DeadLetter.model_validate(old).original_truncated is False
    with pytest.raises(ValueError, match="original_size_bytes and original_sha256"):
        DeadLetter.model_validate({**old, "original_truncated": True})
    with pytest.raises(ValueError, match="at most original_size_bytes"):
        DeadLetter.model_validate({**old, "original_truncated": True, "original_size_bytes": 2,
                                   "original_sha256": "0" * 64})  # fmt: skip


def test_the_processor_cuts_to_the_settings_budget_and_counts_the_cut() -> None:
    small, big = b'{"event_id": 1}', big_value(40_000)
    records = [
        ConsumedRecord(small, KEY, "events", 0, 0, 1),
        ConsumedRecord(big, KEY, "events", 0, 1, 1),
    ]
    rejects = [(0, RejectReason.SCHEMA_VIOLATION, "x"), (1, RejectReason.SCHEMA_VIOLATION, "y")]
    metrics = ScorerMetrics()
    settings = Settings(dlq_max_bytes=20_000)
    outputs = dead_letter_outputs(settings, metrics, records, rejects)
    letters = [DeadLetter.model_validate_json(value) for _, _, value, _ in outputs]
    assert [letter.original_truncated for letter in letters] == [False, True]
    assert letters[0].original_value() == small and big.startswith(letters[1].original_value())
    assert all(len(value) + len(key or b"") <= 20_000 for _, key, value, _ in outputs)
    text = metrics.exposition().decode()
    assert 'scorer_dlq_total{reason="SCHEMA_VIOLATION"} 2.0' in text
    assert 'scorer_dlq_truncated_total{reason="SCHEMA_VIOLATION"} 1.0' in text
    # unset, the default budget applies: the same 40 kB record's letter is sent whole
    outputs = dead_letter_outputs(Settings(), ScorerMetrics(), records, rejects[1:])
    assert DeadLetter.model_validate_json(outputs[0][2]).original_value() == big


def test_decode_dead_letter_and_the_cut_agree_on_every_field() -> None:
    value = big_value(30_000)
    built = dead_letter(Reject(0, RejectReason.SCHEMA_VIOLATION, "too long"), topic="events",
                        partition=4, offset=1234, key=KEY, value=value, timestamp_ms=None,
                        scorer_version="0.1.0")  # fmt: skip
    fitted = fit_dead_letter(built, key=KEY, original=value, max_bytes=MIN_DLQ_MAX_BYTES)
    cut: dict[str, Any] = orjson.loads(fitted.value)
    assert set(cut) == set(built) == set(DeadLetter.model_fields)


# --- republishing ------------------------------------------------------------------------------


def test_republish_refuses_a_cut_letter_and_says_why() -> None:
    event = {"event_id": "e-1", "entity_id": "c-1", "event_time": "2024-05-01T12:00:00Z",
             "features": {}, "pad": "x" * 30_000}  # fmt: skip
    value = orjson.dumps(event)
    fitted = fit_dead_letter(letter_of(value), key=KEY, original=value, max_bytes=MIN_DLQ_MAX_BYTES)
    whole = orjson.dumps(letter_of(value))
    records = [DlqRecord(0, 0, fitted.value, 1), DlqRecord(0, 1, whole, 2)]
    for fix in (None, Fix.parse(b'{"fields": {"remove": ["pad"]}}')):
        plan = plan_republish(records, Selection(), {}, fix=fix)
        cut, kept = plan.candidates
        assert cut.outcome is Outcome.TRUNCATED and cut not in plan.to_publish
        assert cut.value is None and cut.letter is not None and cut.letter.original_truncated
        assert str(len(value)) in cut.detail and hashlib.sha256(value).hexdigest() in cut.detail
        assert kept.outcome is not Outcome.TRUNCATED  # the whole letter is judged as usual
    assert plan.to_publish == [kept]  # with the fix, the whole letter's record is valid again
    assert plan.count(Outcome.TRUNCATED) == 1
