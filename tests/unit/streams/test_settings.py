"""Settings come from the environment in one place; flags override; secrets stay hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.errors import ConfigError
from streams.settings import LOCAL_BROKER_PORT, load_settings


def test_defaults_point_at_the_local_broker() -> None:
    settings = load_settings({})
    assert settings.bootstrap_servers == f"127.0.0.1:{LOCAL_BROKER_PORT}"
    assert not settings.external_cluster
    assert settings.topic_events == "events" and settings.topic_dlq == "events.dlq"


def test_bootstrap_follows_the_local_port() -> None:
    assert load_settings({"SCORER_BROKER_PORT": "20000"}).bootstrap_servers == "127.0.0.1:20000"


def test_external_cluster_and_passthrough() -> None:
    settings = load_settings(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "kafka-1:9093,kafka-2:9093",
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_PASSWORD": "s3cret",
            "KAFKA_SSL_CA_LOCATION": "/etc/ca.pem",
        }
    )
    assert settings.external_cluster
    config = settings.kafka_config()
    assert config["bootstrap.servers"] == "kafka-1:9093,kafka-2:9093"
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.password"] == "s3cret"
    redacted = settings.redacted_kafka_config()
    assert redacted["sasl.password"] == "***"
    assert redacted["ssl.ca.location"] == "/etc/ca.pem"
    assert "s3cret" not in repr(redacted)


def test_config_file_then_variables_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "client.properties"
    config.write_text("# comment\nsasl.mechanism=PLAIN\nclient.id=from-file\n")
    settings = load_settings(
        {"SCORER_KAFKA_CONFIG": str(config), "KAFKA_CLIENT_ID": "from-env", "SCORER_GROUP_ID": "a"},
        group_id="from-flag",
        max_batch=None,
    )
    assert settings.kafka_extra == {"sasl.mechanism": "PLAIN", "client.id": "from-env"}
    assert settings.group_id == "from-flag"
    assert settings.max_batch == 1000


def test_settings_are_frozen() -> None:
    settings = load_settings({})
    with pytest.raises(ValueError):
        settings.group_id = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SCORER_MAX_BATCH": "0"}, "max_batch"),
        ({"SCORER_MAX_BATCH": "many"}, "max_batch"),
        ({"SCORER_KAFKA_CONFIG": "/nonexistent/file"}, "cannot read Kafka config file"),
    ],
)
def test_invalid_settings_are_named(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ)


def test_bad_properties_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.properties"
    config.write_text("no equals sign here\n")
    with pytest.raises(ConfigError, match=r"bad.properties:1: expected key=value"):
        load_settings({"SCORER_KAFKA_CONFIG": str(config)})
