"""The local broker through the `scorer broker` command: up, status, second up, down."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from streams.kafka.localbroker import free_port_pair


def scorer(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


@pytest.fixture
def broker_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "SCORER_"))}
    env["SCORER_BROKER_PORT"] = str(free_port_pair())
    env["SCORER_BROKER_HOME"] = str(tmp_path / "kafka")
    return env


def test_up_status_second_up_down(broker_env: dict[str, str]) -> None:
    address = f"127.0.0.1:{broker_env['SCORER_BROKER_PORT']}"
    try:
        up = scorer(["broker", "up"], broker_env)
        assert up.returncode == 0, up.stderr
        assert f"is up at {address}" in up.stdout
        assert (Path(broker_env["SCORER_BROKER_HOME"]) / "data" / "meta.properties").exists()

        status = scorer(["broker", "status"], broker_env)
        assert status.returncode == 0, status.stderr
        assert "Apache Kafka 4." in status.stdout and address in status.stdout
        assert "topics:  0" in status.stdout  # automatic topic creation is off

        second = scorer(["broker", "up"], broker_env)
        assert second.returncode == 1
        assert "already running" in second.stderr
    finally:
        down = scorer(["broker", "down"], broker_env)
    assert down.returncode == 0 and "stopped" in down.stdout
    after = scorer(["broker", "status"], broker_env)
    assert after.returncode == 1 and "no broker answers" in after.stderr
    again = scorer(["broker", "down"], broker_env)
    assert "no local broker was running" in again.stdout


def test_up_refuses_a_taken_port(broker_env: dict[str, str]) -> None:
    port = int(broker_env["SCORER_BROKER_PORT"])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = scorer(["broker", "up"], broker_env)
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is taken" in result.stderr


def test_external_cluster_is_left_alone(broker_env: dict[str, str], kafka_bootstrap: str) -> None:
    env = {**broker_env, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    up = scorer(["broker", "up"], env)
    assert up.returncode == 0 and "no local broker started" in up.stdout
    assert not (Path(broker_env["SCORER_BROKER_HOME"]) / "broker.pid").exists()
    status = scorer(["broker", "status"], env)
    assert status.returncode == 0 and kafka_bootstrap in status.stdout
    down = scorer(["broker", "down"], env)
    assert "nothing to stop" in down.stdout
