"""The wire contracts: one pydantic model per record on each topic (see infra/topics.yaml).

Every top-level record carries ``schema_version`` (now ``1``), except ``JoinRecord``: the
outcome join's internal records, which only ``scorer join`` writes and reads. Validation is
strict and specific, so a producer's mistake is rejected with the field and the reason instead
of being guessed at:

- numbers are numbers: ``true`` is not ``1`` and ``"1"`` is not a number; floats must be finite
  (JSON has no NaN or Infinity; send ``null`` for a missing feature value);
- timestamps are RFC 3339 strings with a UTC offset; a naive time or a bare epoch number is
  rejected, because its meaning depends on the producer's clock settings;
- lengths and counts are bounded (identifiers 128 characters, 256 features, ...).

Unknown-field policy: unknown fields are rejected everywhere (``extra="forbid"``), so that a
producer's typo (``even_time``) never silently drops data. Records evolve through
``schema_version``: a new field means a new version, and consumers are upgraded to accept it
before producers start sending it.

A feature value of ``null`` means "missing". The contract accepts it for any feature; whether
a given feature may be missing is declared by the model's feature spec and checked later, when
the event is vectorised (reject reason ``NULL_NOT_ALLOWED``).

>>> event = ScoringEvent.model_validate_json(
...     '{"event_id": "e-1", "entity_id": "c-9", "event_time": "2024-05-01T12:00:00Z",'
...     ' "features": {"salary": 52000.0, "car": "sedan", "owner": true, "loan": 3, "age": null}}'
... )
>>> event.features["owner"], event.features["loan"], event.event_time.isoformat()
(True, 3, '2024-05-01T12:00:00+00:00')
>>> from pydantic import ValidationError
>>> try:
...     ScoringEvent.model_validate_json(
...         '{"event_id": "e-2", "entity_id": "c-9", "event_time": "2024-05-01T12:00:00",'
...         ' "features": {"salary": NaN}}'
...     )
... except ValidationError as exc:
...     print(reject_reason_for(exc).value)
...     print(validation_detail(exc))
NON_FINITE
event_time: timestamp has no UTC offset; add 'Z' or '+HH:MM' (a naive time is ambiguous); \
features: feature 'salary' is NaN; numbers must be finite (send null for a missing value)
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    AllowInfNan,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

SCHEMA_VERSION: Final = 1
"""The version of every contract in this module."""

MAX_ID_LENGTH: Final = 128
MAX_FEATURES: Final = 256
MAX_FEATURE_NAME_LENGTH: Final = 64
MAX_FEATURE_STRING_LENGTH: Final = 256
MAX_CONTEXT_ENTRIES: Final = 32
MAX_CONTEXT_VALUE_LENGTH: Final = 128
MAX_REASON_CODES: Final = 4
MAX_TOP_FEATURES: Final = 5
MAX_DETAIL_LENGTH: Final = 2000

LINEAGE_HEADERS: Final = (
    "event_id",
    "model_name",
    "model_version",
    "model_sha256",
    "schema_version",
    "scorer_version",
)
"""Kafka headers of every decision, shadow decision and explanation, as UTF-8 strings."""
MONITOR_HEADERS: Final = ("model_name", "model_version")
"""Kafka headers of the monitors' records: drift alerts, fairness reports, monitor summaries."""
DEAD_LETTER_HEADERS: Final = ("reason", "source_offset")
"""Kafka headers of a dead letter: its reject reason and the rejected record's offset."""
OUTCOME_HEADERS: Final = ("event_id", "model_name", "model_version")
"""Kafka headers of a joined outcome: its event and the model version that decided it."""
MODEL_EVENT_HEADERS: Final = ("model_name", "model_version", "model_sha256", "schema_version")
"""Kafka headers of a model event; model_version and model_sha256 only when it has them."""


class HeaderSet(NamedTuple):
    """The Kafka headers a record carries: every name, and those always present."""

    names: tuple[str, ...]
    required: tuple[str, ...]


RECORD_HEADERS: Final[dict[str, HeaderSet]] = {
    "Decision": HeaderSet(LINEAGE_HEADERS, LINEAGE_HEADERS),
    "Explanation": HeaderSet(LINEAGE_HEADERS, LINEAGE_HEADERS),
    "DriftAlert": HeaderSet(MONITOR_HEADERS, MONITOR_HEADERS),
    "FairnessReport": HeaderSet(MONITOR_HEADERS, MONITOR_HEADERS),
    "MonitorSummary": HeaderSet(MONITOR_HEADERS, MONITOR_HEADERS),
    "DeadLetter": HeaderSet(DEAD_LETTER_HEADERS, DEAD_LETTER_HEADERS),
    "ModelEvent": HeaderSet(MODEL_EVENT_HEADERS, ("model_name", "schema_version")),
    "MonitorCheckpoint": HeaderSet((), ()),
    "Outcome": HeaderSet(OUTCOME_HEADERS, OUTCOME_HEADERS),
    "JoinRecord": HeaderSet((), ()),
}
"""The headers of each contract's records as the scorer produces them, by contract name (the
``value`` of infra/topics.yaml). Records the scorer only receives (ScoringEvent, Feedback) are
absent: they carry whatever their upstream producer sends."""

_SHA256 = re.compile(r"[0-9a-f]{64}")
_JSON_KIND = {
    "dict": "object",
    "list": "array",
    "tuple": "array",
    "str": "string",
    "bool": "boolean",
    "int": "integer",
    "float": "number",
    "NoneType": "null",
}


def _quote(value: object, limit: int = 70) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _non_finite_name(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _kind(value: object) -> str:
    name = type(value).__name__
    return _JSON_KIND.get(name, name)


# --- field types -----------------------------------------------------------------------------


def _check_name(what: str, name: Any) -> None:
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_FEATURE_NAME_LENGTH:
        raise PydanticCustomError(
            f"{what}_name",
            "{what} name {name} must be a string of 1 to {limit} characters",
            {"what": what, "name": _quote(name), "limit": MAX_FEATURE_NAME_LENGTH},
        )


def _exact_int(value: Any) -> Any:
    # Literal[...] alone accepts True and 1.0 for 1; a wire integer must be an integer.
    if type(value) is not int:
        raise PydanticCustomError(
            "int_type", "must be an integer, got {kind}", {"kind": _kind(value)}
        )
    return value


def _timestamp_input(value: Any) -> Any:
    if isinstance(value, bool | int | float):
        raise PydanticCustomError(
            "numeric_timestamp",
            "timestamp must be an RFC 3339 string with a UTC offset, not a number",
        )
    return value


def _require_offset(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise PydanticCustomError(
            "naive_datetime",
            "timestamp has no UTC offset; add 'Z' or '+HH:MM' (a naive time is ambiguous)",
        )
    return value


def _check_sha256(value: str) -> str:
    if not _SHA256.fullmatch(value):
        raise PydanticCustomError(
            "sha256", "must be 64 lowercase hexadecimal characters (a sha256 digest)"
        )
    return value


def _base64_length(value: str) -> int:
    """Length of what the (valid, padded) base64 text ``value`` decodes to."""
    return len(value) // 4 * 3 - value[-2:].count("=")


def _check_base64(value: str) -> str:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PydanticCustomError("base64", "is not valid standard base64") from exc
    return value


SchemaVersion = Annotated[Literal[1], BeforeValidator(_exact_int)]
Identifier = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]
FeatureName = Annotated[
    str, Strict(), StringConstraints(min_length=1, max_length=MAX_FEATURE_NAME_LENGTH)
]
Label = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=64)]
Detail = Annotated[str, Strict(), StringConstraints(max_length=MAX_DETAIL_LENGTH)]
Context = dict[
    FeatureName,
    Annotated[str, Strict(), StringConstraints(max_length=MAX_CONTEXT_VALUE_LENGTH)],
]
Sha256 = Annotated[
    str,
    Strict(),
    AfterValidator(_check_sha256),
    WithJsonSchema({"type": "string", "pattern": "^[0-9a-f]{64}$"}),
]
Base64 = Annotated[
    str,
    Strict(),
    AfterValidator(_check_base64),
    WithJsonSchema({"type": "string", "contentEncoding": "base64"}),
]
Timestamp = Annotated[datetime, BeforeValidator(_timestamp_input), AfterValidator(_require_offset)]
FiniteFloat = Annotated[float, Strict(), AllowInfNan(False)]
Probability = Annotated[float, Strict(), AllowInfNan(False), Field(ge=0.0, le=1.0)]
NonNegativeFloat = Annotated[float, Strict(), AllowInfNan(False), Field(ge=0.0)]
Count = Annotated[int, Strict(), Field(ge=0)]
Version = Annotated[int, Strict(), Field(ge=1)]
FeatureValue = (
    Annotated[bool, Strict()]
    | Annotated[int, Strict()]
    | Annotated[float, Strict()]
    | Annotated[str, Strict(), StringConstraints(max_length=MAX_FEATURE_STRING_LENGTH)]
    | None
)


class _Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- enumerations and nested records ---------------------------------------------------------


class RejectReason(StrEnum):
    """Why an input record was sent to the dead-letter topic."""

    INVALID_JSON = "INVALID_JSON"
    NOT_AN_OBJECT = "NOT_AN_OBJECT"
    INVALID_ENCODING = "INVALID_ENCODING"
    RECORD_TOO_LARGE = "RECORD_TOO_LARGE"
    SCHEMA_VIOLATION = "SCHEMA_VIOLATION"
    MISSING_FEATURE = "MISSING_FEATURE"
    UNKNOWN_FEATURE = "UNKNOWN_FEATURE"
    WRONG_TYPE = "WRONG_TYPE"
    NON_FINITE = "NON_FINITE"
    NULL_NOT_ALLOWED = "NULL_NOT_ALLOWED"
    UNKNOWN_CATEGORY = "UNKNOWN_CATEGORY"
    SCORING_ERROR = "SCORING_ERROR"
    DUPLICATE_EVENT = "DUPLICATE_EVENT"
    LABEL_TOO_LATE = "LABEL_TOO_LATE"
    LABEL_UNKNOWN_EVENT = "LABEL_UNKNOWN_EVENT"
    DUPLICATE_LABEL = "DUPLICATE_LABEL"


class ModelRef(_Contract):
    """The exact model artifact that produced a record."""

    name: Identifier = Field(description="Registered model name.")
    version: Version = Field(description="Registry version, from 1.")
    sha256: Sha256 = Field(description="sha256 of the artifact's bytes.")


class ReasonCode(_Contract):
    """One reason for an adverse decision: the feature that pushed the score most."""

    code: Label = Field(description="Stable code, e.g. RC_SALARY.")
    feature: FeatureName
    text: Annotated[str, Strict(), StringConstraints(min_length=1, max_length=256)] = Field(
        description="Human-readable reason."
    )
    contribution: FiniteFloat = Field(description="Contribution to the log-odds.")


class DriftWindow(_Contract):
    """The slice of the stream a statistic was computed over."""

    start_time: Timestamp | None = None
    end_time: Timestamp | None = None
    events: Count = Field(description="Number of events in the window.")
    offsets: dict[str, list[Annotated[int, Strict(), Field(ge=0)]]] = Field(
        default_factory=dict,
        description="Kafka offsets covered, partition -> [first, last] (inclusive).",
    )

    @field_validator("offsets")
    @classmethod
    def _offset_ranges(cls, value: dict[str, list[int]]) -> dict[str, list[int]]:
        for partition, bounds in value.items():
            if len(bounds) != 2 or bounds[0] > bounds[1]:
                raise PydanticCustomError(
                    "offset_range",
                    "offsets[{partition}] must be [first, last] with first <= last, got {got}",
                    {"partition": _quote(partition), "got": bounds},
                )
        return value

    @model_validator(mode="after")
    def _ordered(self) -> DriftWindow:
        if self.start_time and self.end_time and self.start_time > self.end_time:
            raise PydanticCustomError("window_order", "window start_time is after end_time")
        return self


class GroupMetrics(_Contract):
    """Decision and outcome rates of one group of a protected attribute."""

    group: Identifier
    count: Count = Field(description="Decisions in the window for this group.")
    selection_rate: Probability = Field(description="Share of favourable decisions.")
    labelled: Count = Field(default=0, description="Decisions with a joined label.")
    tpr: Probability | None = Field(default=None, description="True-positive rate, if labelled.")
    fpr: Probability | None = Field(default=None, description="False-positive rate, if labelled.")


# --- top-level records -----------------------------------------------------------------------


class ScoringEvent(_Contract):
    """An event to score, published by an upstream system on the events topic."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    event_id: Identifier = Field(description="Unique id of the event; decisions carry it.")
    entity_id: Identifier = Field(description="The entity scored (customer, account, ...).")
    event_time: Timestamp
    features: dict[FeatureName, FeatureValue] = Field(
        description=(
            "Model inputs: number, string, boolean, or null for missing. Whether a feature "
            "may be null is declared by the model's feature spec and checked when scoring."
        ),
        json_schema_extra={"maxProperties": MAX_FEATURES},
    )
    context: Context = Field(
        default_factory=dict,
        description=(
            "Attributes for monitoring only (e.g. protected attributes); never model inputs."
        ),
        json_schema_extra={"maxProperties": MAX_CONTEXT_ENTRIES},
    )

    @field_validator("features", mode="before")
    @classmethod
    def _check_features(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise PydanticCustomError(
                "features_type", "features must be an object, got {kind}", {"kind": _kind(value)}
            )
        if len(value) > MAX_FEATURES:
            raise PydanticCustomError(
                "too_many_features",
                "features has {count} entries; at most {limit} are allowed",
                {"count": len(value), "limit": MAX_FEATURES},
            )
        for name, item in value.items():
            _check_name("feature", name)
            if item is None or isinstance(item, bool | int):
                continue
            if isinstance(item, float):
                if not math.isfinite(item):
                    raise PydanticCustomError(
                        "non_finite",
                        "feature {name} is {value}; numbers must be finite "
                        "(send null for a missing value)",
                        {"name": _quote(name), "value": _non_finite_name(item)},
                    )
            elif isinstance(item, str):
                if len(item) > MAX_FEATURE_STRING_LENGTH:
                    raise PydanticCustomError(
                        "feature_too_long",
                        "feature {name} has a string of {length} characters; at most {limit}",
                        {
                            "name": _quote(name),
                            "length": len(item),
                            "limit": MAX_FEATURE_STRING_LENGTH,
                        },
                    )
            else:
                raise PydanticCustomError(
                    "feature_type",
                    "feature {name} is {kind}; expected a number, string, boolean or null",
                    {"name": _quote(name), "kind": _kind(item)},
                )
        return value

    @field_validator("context", mode="before")
    @classmethod
    def _check_context(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise PydanticCustomError(
                "context_type", "context must be an object, got {kind}", {"kind": _kind(value)}
            )
        if len(value) > MAX_CONTEXT_ENTRIES:
            raise PydanticCustomError(
                "too_many_context",
                "context has {count} entries; at most {limit} are allowed",
                {"count": len(value), "limit": MAX_CONTEXT_ENTRIES},
            )
        for name, item in value.items():
            _check_name("context", name)
            if not isinstance(item, str):
                raise PydanticCustomError(
                    "context_type",
                    "context {name} is {kind}; context values must be strings",
                    {"name": _quote(name), "kind": _kind(item)},
                )
            if len(item) > MAX_CONTEXT_VALUE_LENGTH:
                raise PydanticCustomError(
                    "context_too_long",
                    "context {name} has {length} characters; at most {limit}",
                    {"name": _quote(name), "length": len(item), "limit": MAX_CONTEXT_VALUE_LENGTH},
                )
        return value


class Decision(_Contract):
    """The decision made for one valid event, with the model that made it."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    event_id: Identifier
    entity_id: Identifier
    decision: Label = Field(description="The policy's label, e.g. approve, review, decline.")
    score: Probability = Field(description="Model probability of the positive class.")
    thresholds: dict[Label, FiniteFloat] = Field(description="Policy thresholds on the score.")
    reason_codes: list[ReasonCode] = Field(
        default_factory=list,
        max_length=MAX_REASON_CODES,
        description="At most four reasons, for adverse decisions only.",
    )
    model: ModelRef
    input_hash: Sha256 = Field(description="sha256 of the canonical JSON of the features.")
    event_time: Timestamp
    context: Context = Field(
        default_factory=dict,
        description=(
            "The event's context attributes, echoed so that outcomes can be audited and "
            "monitored per group without the event; never model inputs."
        ),
        json_schema_extra={"maxProperties": MAX_CONTEXT_ENTRIES},
    )
    scored_at: Timestamp
    latency_ms: NonNegativeFloat = Field(description="Time from consume to decision.")
    shadow: Annotated[bool, Strict()] = Field(
        default=False, description="True for a challenger's decision; never acted upon."
    )


class Explanation(_Contract):
    """An exact, additive explanation: base_value + sum(contributions) = output_value."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    event_id: Identifier
    entity_id: Identifier
    model: ModelRef
    method: Literal["linear", "tree_shap", "river_linear", "lightgbm_contrib", "xgboost_contrib"]
    output_space: Literal["log_odds", "probability"] = Field(
        default="log_odds",
        description="Where base_value, contributions and output_value live: log-odds, or "
        "probability for a model whose output is one (a random forest).",
    )
    base_value: FiniteFloat
    output_value: FiniteFloat
    contributions: dict[FeatureName, FiniteFloat] = Field(description="Per input feature.")
    top_features: list[FeatureName] = Field(
        max_length=MAX_TOP_FEATURES, description="Largest absolute contributions, largest first."
    )
    additivity_error: NonNegativeFloat = Field(
        description="|base_value + sum(contributions) - output_value|."
    )

    @model_validator(mode="after")
    def _top_features_known(self) -> Explanation:
        unknown = [name for name in self.top_features if name not in self.contributions]
        if unknown:
            raise PydanticCustomError(
                "unknown_top_feature",
                "top_features {unknown} are not in contributions",
                {"unknown": unknown},
            )
        if len(set(self.top_features)) != len(self.top_features):
            raise PydanticCustomError("duplicate_top_feature", "top_features has duplicates")
        return self


class DriftAlert(_Contract):
    """A drift episode opened or resolved by one monitor."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    alert_id: Identifier
    monitor_id: Identifier = Field(description="The monitor; also the record key.")
    monitor: Literal["feature", "missing", "prediction", "concept", "performance"]
    feature: FeatureName | None = None
    status: Literal["open", "resolved"]
    statistic: Label = Field(description="Name of the statistic, e.g. psi or ks.")
    value: FiniteFloat
    threshold: FiniteFloat
    budget_events: Annotated[float, Strict(), AllowInfNan(False), Field(gt=0.0)] = Field(
        description="Expected number of events between two false alarms."
    )
    window: DriftWindow
    reference: dict[str, Any] = Field(default_factory=dict)
    current: dict[str, Any] = Field(default_factory=dict)
    severity: Literal["info", "warning", "critical"]
    model: ModelRef
    retrain_recommended: Annotated[bool, Strict()]
    retrain_rule: Detail | None = Field(default=None, description="The rule that was met.")
    detected_at: Timestamp


class FairnessReport(_Contract):
    """Windowed group metrics for one protected attribute, with the verdict."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    report_id: Identifier
    attribute: FeatureName = Field(description="The context attribute; also the record key.")
    window: DriftWindow
    groups: list[GroupMetrics]
    reference_group: Identifier | None = None
    disparate_impact_ratio: NonNegativeFloat | None = None
    demographic_parity_difference: (
        Annotated[float, Strict(), AllowInfNan(False), Field(ge=-1.0, le=1.0)] | None
    ) = None
    tpr_gap: Annotated[float, Strict(), AllowInfNan(False), Field(ge=-1.0, le=1.0)] | None = None
    fpr_gap: Annotated[float, Strict(), AllowInfNan(False), Field(ge=-1.0, le=1.0)] | None = None
    undefined: dict[FeatureName, Annotated[str, Field(max_length=500)]] = Field(
        default_factory=dict,
        description="Why each gap that is null is undefined (e.g. fewer than two groups "
        "with labelled members), by the gap's field name.",
    )
    status: Literal["ok", "alert", "insufficient_data"]
    min_group_count: Count
    di_threshold: Annotated[float, Strict(), AllowInfNan(False), Field(gt=0.0, le=1.0)]
    model: ModelRef
    generated_at: Timestamp

    @field_validator("groups")
    @classmethod
    def _unique_groups(cls, value: list[GroupMetrics]) -> list[GroupMetrics]:
        names = [g.group for g in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise PydanticCustomError(
                "duplicate_group", "groups repeated: {names}", {"names": duplicates}
            )
        return value


class Feedback(_Contract):
    """An outcome label for an earlier event, joined to its decision by event_id."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    event_id: Identifier
    label: Annotated[Literal[0, 1], BeforeValidator(_exact_int)] = Field(
        description="Observed outcome: 1 for the positive class, 0 otherwise."
    )
    label_time: Timestamp
    source: Identifier | None = None


class DeadLetter(_Contract):
    """A rejected input with its reason, its source coordinates and its original bytes.

    A letter too large for the dead-letter topic is cut (``original_truncated``): it keeps
    its reason, detail, coordinates and event id, a prefix of the original value, and the
    length and sha256 of the whole value, so the record can be found and checked upstream.
    """

    schema_version: SchemaVersion = SCHEMA_VERSION
    reason: RejectReason
    detail: Detail
    source_topic: Annotated[str, Strict(), StringConstraints(min_length=1, max_length=249)]
    source_partition: Count
    source_offset: Count
    source_timestamp_ms: Annotated[int, Strict()] | None = None
    source_key_b64: Base64 | None = Field(
        default=None,
        description="Record key; null if none (or if a cut letter had no room for it: the "
        "dead-letter record's own Kafka key is then the original key).",
    )
    original_value_b64: Base64 = Field(
        description="Record value; empty for a null value; only its first bytes if the letter "
        "was cut (original_truncated)."
    )
    event_id: Identifier | None = Field(default=None, description="If it could be read.")
    failed_at: Timestamp
    scorer_version: Label
    original_truncated: Annotated[bool, Strict()] = Field(
        default=False,
        description="True if the letter was cut to fit the dead-letter topic: "
        "original_value_b64 holds a prefix of the value (and source_key_b64 may be null), "
        "original_size_bytes and original_sha256 describe the whole value. A cut letter "
        "cannot be republished.",
    )
    original_size_bytes: Count | None = Field(
        default=None, description="Length of the whole original value; set on a cut letter."
    )
    original_sha256: Sha256 | None = Field(
        default=None, description="sha256 of the whole original value; set on a cut letter."
    )

    @model_validator(mode="after")
    def _cut_letters_describe_the_original(self) -> DeadLetter:
        if self.original_truncated:
            if self.original_size_bytes is None or self.original_sha256 is None:
                raise ValueError("a cut letter names original_size_bytes and original_sha256")
            if _base64_length(self.original_value_b64) > self.original_size_bytes:
                raise ValueError("a cut letter keeps at most original_size_bytes bytes")
        return self

    @classmethod
    def from_raw(
        cls,
        *,
        reason: RejectReason,
        detail: str,
        topic: str,
        partition: int,
        offset: int,
        value: bytes | None,
        key: bytes | None = None,
        timestamp_ms: int | None = None,
        event_id: object = None,
        scorer_version: str,
        failed_at: datetime | None = None,
    ) -> DeadLetter:
        """Build a dead letter from a raw Kafka record; never fails on the record's content.

        ``detail`` is shortened to fit, and an ``event_id`` that is not a valid identifier
        (it came from a rejected record) is dropped.

        >>> dl = DeadLetter.from_raw(reason=RejectReason.INVALID_JSON, detail="bad", topic="t",
        ...     partition=0, offset=7, value=b"{oops", key=b"k1", scorer_version="0.1.0")
        >>> dl.original_value_b64, dl.original_value(), dl.source_key()
        ('e29vcHM=', b'{oops', b'k1')
        """
        if len(detail) > MAX_DETAIL_LENGTH:
            detail = detail[: MAX_DETAIL_LENGTH - 3] + "..."
        if not (isinstance(event_id, str) and 1 <= len(event_id) <= MAX_ID_LENGTH):
            event_id = None
        return cls(
            reason=reason,
            detail=detail,
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
            source_timestamp_ms=timestamp_ms,
            source_key_b64=None if key is None else base64.b64encode(key).decode("ascii"),
            original_value_b64=base64.b64encode(value or b"").decode("ascii"),
            event_id=event_id,
            failed_at=failed_at or datetime.now(UTC),
            scorer_version=scorer_version,
        )

    def original_value(self) -> bytes:
        """The rejected record's value, byte for byte (its first bytes, if the letter was cut:
        see ``original_truncated``)."""
        return base64.b64decode(self.original_value_b64)

    def source_key(self) -> bytes | None:
        """The rejected record's key, or None when it had none."""
        return None if self.source_key_b64 is None else base64.b64decode(self.source_key_b64)


class ModelEvent(_Contract):
    """A change in the model registry: registration, promotion, rollback, refusal or load."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    event_type: Literal["registered", "promoted", "rolled_back", "refused", "loaded"]
    model_name: Identifier = Field(description="The model; also the record key.")
    version: Version | None = None
    alias: Label | None = Field(default=None, description="e.g. champion or challenger.")
    previous_version: Version | None = None
    sha256: Sha256 | None = None
    actor: Identifier = Field(description="Who or what made the change.")
    reason: Detail | None = None
    gates: list[dict[str, Any]] = Field(
        default_factory=list, description="Promotion gates evaluated, with their outcome."
    )
    occurred_at: Timestamp


class MonitorSummary(_Contract):
    """Window count deltas of one scoring process, for the monitor owner to merge.

    Each scoring process counts the events it scored into event-time windows and publishes
    the counts with the batch's other outputs; ``scorer monitor`` merges them, so that its
    verdicts equal those of one process over all partitions.
    """

    schema_version: SchemaVersion = SCHEMA_VERSION
    version: Annotated[int, Strict(), Field(ge=1)] = Field(description="Export format.")
    model: ModelRef
    streams: dict[Literal["events", "labels"], dict[str, Any]] = Field(
        description="Per stream: watermarks and high offsets per partition, window counts."
    )


class MonitorCheckpoint(_Contract):
    """The monitor owner's state and the input offsets it covers, written in one transaction
    with them (so a restart continues exactly where the last commit stood)."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    owner: Identifier = Field(description="The owner's id; also the record key.")
    offsets: dict[str, dict[str, Annotated[int, Strict(), Field(ge=0)]]] = Field(
        description="Next offset to read, per topic and partition."
    )
    monitors: list[dict[str, Any]] = Field(description="State of each model version's monitors.")
    written_at: Timestamp


class Outcome(_Contract):
    """A label joined to the decision it judges, by the outcome join (``scorer join``): what
    concept drift, outcome fairness and online learning need, without the event."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    event_id: Identifier
    entity_id: Identifier
    model: ModelRef = Field(description="The model version that made the decision.")
    score: Probability
    decision: Label
    label: Annotated[Literal[0, 1], BeforeValidator(_exact_int)]
    context: Context = Field(
        default_factory=dict, json_schema_extra={"maxProperties": MAX_CONTEXT_ENTRIES}
    )
    input_hash: Sha256 = Field(description="The decision's hash of the features it scored.")
    event_time: Timestamp
    label_time: Timestamp


class JoinSource(_Contract):
    """Where a routed label was read, with its bytes: what its dead letter will need."""

    topic: Annotated[str, Strict(), StringConstraints(min_length=1, max_length=249)]
    partition: Count
    offset: Count
    timestamp_ms: Annotated[int, Strict()] | None = None
    key_b64: Base64 | None = None
    value_b64: Base64


class JoinRecord(_Contract):
    """One record of the outcome join's own topics.

    On ``outcome-join-input``: a decision snapshot or a label routed to the join partition of
    its event, or a watermark (how far the router of one decisions partition has read it).
    On ``outcome-join-changelog``: what that partition's store holds for one event (a
    decision, ``labelled`` once joined, or a label waiting until ``deadline``); a null value
    deletes it."""

    side: Literal["decision", "label", "watermark"]
    event_id: Identifier | None = None
    t: FiniteFloat | None = Field(
        default=None,
        description="Event time (decision), label time (label), or the newest event time "
        "routed from the partition (watermark; null before any), in epoch seconds.",
    )
    entity_id: Identifier | None = None
    model: ModelRef | None = None
    score: Probability | None = None
    decision: Label | None = None
    context: Context | None = None
    input_hash: Sha256 | None = None
    event_time: Timestamp | None = None
    labelled: Annotated[bool, Strict()] | None = None
    label: Annotated[Literal[0, 1], BeforeValidator(_exact_int)] | None = None
    label_time: Timestamp | None = None
    deadline: FiniteFloat | None = Field(
        default=None, description="Decisions' clock at which a waiting label gives up."
    )
    source: JoinSource | None = None
    decisions_partition: Count | None = Field(
        default=None, description="The decisions partition a watermark is about."
    )
    read_to_end: Annotated[bool, Strict()] | None = Field(
        default=None, description="Whether that partition was read to its end (a watermark)."
    )

    @model_validator(mode="after")
    def _side_fields(self) -> JoinRecord:
        needed = {
            "decision": ("event_id", "t", "entity_id", "model", "score", "decision",
                         "input_hash", "event_time"),
            "label": ("event_id", "t", "label", "label_time", "source"),
            "watermark": ("decisions_partition", "read_to_end"),
        }[self.side]  # fmt: skip
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.side} record needs {', '.join(missing)}")
        return self


CONTRACTS: Final[dict[str, type[BaseModel]]] = {
    model.__name__: model
    for model in (
        ScoringEvent,
        Decision,
        Explanation,
        DriftAlert,
        FairnessReport,
        Feedback,
        DeadLetter,
        ModelEvent,
        MonitorSummary,
        MonitorCheckpoint,
        Outcome,
        JoinRecord,
    )
}
"""Every top-level record contract by class name, as named in infra/topics.yaml."""


# --- reading validation errors ---------------------------------------------------------------

_NON_FINITE_ERRORS = frozenset({"non_finite", "finite_number"})


def reject_reason_for(exc: ValidationError) -> RejectReason:
    """The dead-letter reason for a failed validation of a ScoringEvent or Feedback."""
    types = [error["type"] for error in exc.errors()]
    if "json_invalid" in types:
        return RejectReason.INVALID_JSON
    if any(error["type"] == "model_type" and not error["loc"] for error in exc.errors()):
        return RejectReason.NOT_AN_OBJECT
    if any(t in _NON_FINITE_ERRORS for t in types):
        return RejectReason.NON_FINITE
    return RejectReason.SCHEMA_VIOLATION


def validation_detail(exc: ValidationError, limit: int = MAX_DETAIL_LENGTH) -> str:
    """A one-line description of every error, ``field.path: message; ...``, within ``limit``."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "record"
        parts.append(f"{where}: {error['msg']}")
    text = "; ".join(parts)
    return text if len(text) <= limit else text[: limit - 3] + "..."
