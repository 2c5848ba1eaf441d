"""The scorer's configuration, read from the environment in exactly one place.

Every setting is a ``SCORER_<NAME>`` variable (``SCORER_GROUP_ID``, ``SCORER_MAX_BATCH``, ...);
``KAFKA_BOOTSTRAP_SERVERS`` names an existing cluster, and any other ``KAFKA_<KEY>`` variable
is passed to librdkafka as ``<key>`` with underscores turned into dots, e.g.
``KAFKA_SASL_MECHANISM=PLAIN`` becomes ``sasl.mechanism=PLAIN``. ``SCORER_KAFKA_CONFIG`` may
name a ``key=value`` properties file of librdkafka settings; variables win over the file.

>>> s = Settings(bootstrap_servers="127.0.0.1:9092", kafka_extra={"sasl.password": "hunter2"})
>>> s.kafka_config()["bootstrap.servers"]
'127.0.0.1:9092'
>>> s.redacted_kafka_config()["sasl.password"]
'***'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.errors import ConfigError
from streams.paths import var_dir

LOCAL_BROKER_PORT = 19092
"""The port of the local development broker; far from 9092 so a real cluster is not shadowed."""

_SECRET_MARKERS = ("password", "secret", "key", "token", "credentials")


def _is_secret(key: str) -> bool:
    return any(marker in key.lower() for marker in _SECRET_MARKERS) and not key.endswith(
        ".location"
    )


class Settings(BaseModel):
    """Frozen settings; build one with :func:`load_settings` and pass it down."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    broker_port: int = Field(
        default=LOCAL_BROKER_PORT, ge=1, le=65534, description="Port of the local broker."
    )
    broker_home: Path = Field(
        default_factory=lambda: var_dir() / "kafka",
        description="Data, pid file and log of the local broker.",
    )
    bootstrap_servers: str = Field(
        default="", description="Kafka bootstrap servers; the local broker when unset."
    )
    external_cluster: bool = Field(
        default=False, description="True when KAFKA_BOOTSTRAP_SERVERS names a cluster."
    )
    kafka_extra: dict[str, str] = Field(
        default_factory=dict, description="librdkafka settings passed through verbatim."
    )
    registry: Path = Field(default_factory=lambda: var_dir() / "registry")
    topics_file: Path | None = None
    topic_events: str = "events"
    topic_decisions: str = "decisions"
    topic_decisions_shadow: str = "decisions.shadow"
    topic_explanations: str = "explanations"
    topic_drift_alerts: str = "drift-alerts"
    topic_fairness_reports: str = "fairness-reports"
    topic_feedback: str = "feedback"
    topic_dlq: str = "events.dlq"
    topic_model_events: str = "model-events"
    topic_monitor_summaries: str = "monitor-summaries"
    topic_monitor_checkpoints: str = "monitor-checkpoints"
    topic_outcomes: str = "outcomes"
    topic_join_input: str = "outcome-join-input"
    topic_join_changelog: str = "outcome-join-changelog"
    group_id: str = "scorer"
    max_batch: int = Field(default=1000, ge=1, le=100_000)
    max_wait_ms: int = Field(default=10, ge=0, le=60_000)
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    model: str = "demo"
    exactly_once: bool = False
    monitor: bool = True
    monitor_window_seconds: float = Field(default=60.0, gt=0.0)
    monitor_lateness_seconds: float = Field(default=5.0, ge=0.0)
    monitor_group_id: str = "scorer-monitor"
    monitor_checkpoint_seconds: float = Field(default=2.0, gt=0.0)
    monitor_idle_seconds: float | None = Field(default=None, gt=0.0)
    join_feedback: bool = True
    feedback_retention_seconds: float = Field(
        default=30 * 86_400.0,
        gt=0.0,
        description="Event time a decision is held for its label (30 days).",
    )
    feedback_wait_seconds: float = Field(
        default=300.0,
        ge=0.0,
        description="Event time a label waits for its decision before it is unknown.",
    )
    join_group_id: str = "scorer-join"
    join_state_dir: Path = Field(
        default_factory=lambda: var_dir() / "join",
        description="Local RocksDB stores of a join instance (caches of its changelog).",
    )
    join_commit_seconds: float = Field(default=1.0, gt=0.0)
    join_transaction_changes: int = Field(
        default=5_000,
        ge=1,
        description="Store changes after which an outcome-join transaction commits early.",
    )
    dlq_max_bytes: int | None = Field(
        default=None,
        ge=16 * 1024,
        le=64 * 1024 * 1024,
        description="Largest dead letter (record value plus key) sent to the DLQ topic; a "
        "larger one is cut to fit (streams.core.dead_letter_size). Unset: 63/64 of the DLQ "
        "topic's max.message.bytes, read when an engine starts, or 2,064,384 bytes (that of "
        "infra/topics.yaml's 2 MiB) if it cannot be read; a set value is lowered to that too.",
    )

    @model_validator(mode="after")
    def _default_bootstrap(self) -> Settings:
        if not self.bootstrap_servers.strip():
            # Frozen model: the default follows the local broker's port, set once here.
            object.__setattr__(self, "bootstrap_servers", f"127.0.0.1:{self.broker_port}")
        return self

    def kafka_config(self, **overrides: Any) -> dict[str, Any]:
        """librdkafka configuration: bootstrap servers, passthrough settings, then overrides."""
        config: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers}
        config.update(self.kafka_extra)
        config.update(overrides)
        return config

    def redacted_kafka_config(self) -> dict[str, Any]:
        """The same configuration, fit for a log line: secret values are masked."""
        return {k: ("***" if _is_secret(k) else v) for k, v in self.kafka_config().items()}


def _read_properties(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read Kafka config file {path}: {exc.strerror}") from exc
    result: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        if "=" not in line:
            raise ConfigError(f"{path}:{number}: expected key=value, got {line!r}")
        key, value = line.split("=", 1)
        result[key.strip()] = value.strip()
    return result


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read the settings from ``environ`` (default: the process environment).

    Keyword ``overrides`` come from command-line flags and win over variables; ``None``
    values are ignored so that an absent flag leaves its variable in force.
    """
    env = dict(os.environ if environ is None else environ)
    extra: dict[str, str] = {}
    config_file = env.get("SCORER_KAFKA_CONFIG")
    if config_file:
        extra.update(_read_properties(Path(config_file)))
    for name, value in env.items():
        if name.startswith("KAFKA_") and name != "KAFKA_BOOTSTRAP_SERVERS":
            extra[name[len("KAFKA_") :].lower().replace("_", ".")] = value
    values: dict[str, Any] = {"kafka_extra": extra}
    if env.get("KAFKA_BOOTSTRAP_SERVERS"):
        values["bootstrap_servers"] = env["KAFKA_BOOTSTRAP_SERVERS"]
        values["external_cluster"] = True
    for name, value in env.items():
        if name.startswith("SCORER_") and name not in ("SCORER_KAFKA_CONFIG", "SCORER_HOME"):
            values.setdefault(name[len("SCORER_") :].lower(), value)
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings.model_validate(values)
    except ValueError as exc:
        raise ConfigError(f"invalid settings: {exc}") from exc
