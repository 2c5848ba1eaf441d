"""Without a broker, every command that needs one says so in one line, names the address it
tried, and exits 1, at once: no traceback, no librdkafka log lines, no waiting out timeouts.
Commands that need no broker keep working without one.

The commands run in this process; their output is captured at the file descriptors, so the
lines librdkafka writes to stderr itself are seen too. Nothing listens on ``127.0.0.1:1``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from models.registry import Registry
from streams.cli import main
from tests.support.models import RegisterModels, TrainModel

NO_BROKER = "127.0.0.1:1"
REPO = Path(__file__).resolve().parents[4]

Offline = Callable[..., tuple[int, str, str]]
"""``offline(*argv)``: exit status, stdout and stderr of ``scorer *argv`` with no broker."""


@pytest.fixture(scope="module")
def registry(train_model: TrainModel, register_models: RegisterModels) -> Registry:
    """``loans`` (logistic) and ``online`` (river), each with version 1 as champion."""
    (loans,) = register_models(train_model("logistic", rows=3000, seed=21), champion=1)
    register_models(
        train_model("river-logistic", rows=3000, seed=21),
        name="online",
        registry=loans.registry,
        champion=1,
    )
    return loans.registry


@pytest.fixture
def offline(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> Offline:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", NO_BROKER)
    monkeypatch.setenv("SCORER_REGISTRY", str(registry.root))
    monkeypatch.setenv("SCORER_ACTOR", "tester@ci")

    def run(*argv: str) -> tuple[int, str, str]:
        capfd.readouterr()
        code = main(list(argv))
        captured = capfd.readouterr()
        return code, captured.out, captured.err

    return run


NEEDS_BROKER = {
    "produce": ["produce", "--demo", "--count", "10"],
    "produce --feedback": ["produce", "--demo", "--count", "10", "--feedback"],
    "serve": ["serve", "--model", "loans", "--metrics-port", "-1"],
    "serve --engine faust": ["serve", "--model", "loans", "--metrics-port", "-1",
                             "--engine", "faust"],
    "monitor": ["monitor"],
    "join": ["join"],
    "learn": ["learn", "--model", "online"],
    "dlq republish": ["dlq", "republish", "--model", "loans"],
    "dlq republish --dry-run": ["dlq", "republish", "--model", "loans", "--dry-run"],
    "replay": ["replay", "--model", "loans"],
    "tail": ["tail", "decisions"],
    "tail --follow": ["tail", "alerts", "--follow"],
    "explain": ["explain", "no-such-event"],
    "alerts": ["alerts"],
    "status": ["status"],
    "topics apply": ["topics", "apply"],
    "broker status": ["broker", "status"],
    "demo": ["demo", "--model", "loans"],
}  # fmt: skip


@pytest.mark.timeout(60)
@pytest.mark.parametrize("argv", NEEDS_BROKER.values(), ids=NEEDS_BROKER.keys())
def test_a_command_that_needs_a_broker_fails_in_one_line(offline: Offline, argv: list[str]) -> None:
    code, out, err = offline(*argv)
    assert (code, out) == (1, "")
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"scorer: error: no broker answers at {NO_BROKER}"), err


@pytest.mark.timeout(60)
def test_report_without_a_broker_fails_in_one_line(offline: Offline, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    code, out, err = offline("report", "--model", "loans", "--out", str(page))
    assert (code, out, err) == (1, "", f"scorer: error: no broker answers at {NO_BROKER}\n")
    assert not page.exists()


@pytest.mark.timeout(60)
def test_serve_as_a_process_prints_only_the_reason(registry: Registry) -> None:
    """The terminal of a real ``scorer serve``: its log lines and librdkafka's included."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": NO_BROKER,
        "SCORER_REGISTRY": str(registry.root),
    }
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "serve", "--model", "loans", "--metrics-port", "-1"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=50, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == f"scorer: error: no broker answers at {NO_BROKER}\n"


@pytest.mark.timeout(60)
def test_commands_that_need_no_broker_work_without_one(offline: Offline, tmp_path: Path) -> None:
    own = tmp_path / "registry"
    code, out, _ = offline(
        "train", "--dataset", "agrawal", "--model", "logistic", "--name", "offline",
        "--rows", "600", "--register", "--registry", str(own),
    )  # fmt: skip
    assert code == 0
    assert f"registered offline version 1 in {own}" in out
    code, out, _ = offline("models", "list", "--registry", str(own))
    assert code == 0
    assert out.splitlines()[1].split()[:3] == ["offline", "1", "1"]
    code, out, _ = offline("models", "show", "offline", "--registry", str(own))
    assert code == 0
    assert out.startswith("model offline")
    code, out, _ = offline("models", "verify", "offline", "--registry", str(own))
    assert code == 0
    assert out.startswith("ok offline v1 sha256 ")
    code, out, _ = offline("schemas", "export", "--format", "asyncapi", "--out", str(tmp_path))
    assert code == 0
    assert (tmp_path / "asyncapi.json").is_file()
