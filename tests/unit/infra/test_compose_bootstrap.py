"""The compose stack comes up to a working demo by itself, from an empty registry volume.

A one-shot ``model-init`` service trains and registers the demo model (as champion) into
the registry volume that ``scorer serve`` and the monitor owner read, and they start only
after it completed successfully; a second ``up`` registers nothing new. No Docker engine is
needed: the compose file is parsed, every scorer command is parsed by the CLI's real parser,
and the init's own command runs here, in-process, against a temporary registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from models.registry import Registry
from streams.cli import build_parser, main
from streams.settings import load_settings

COMPOSE = Path(__file__).resolve().parents[3] / "infra" / "docker-compose.yml"
SCORER_IMAGE = "streaming-scorer:latest"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    result = data["services"]
    assert isinstance(result, dict)
    return result


def conditions(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on", {})
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def scorer_services(services: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services.items() if s.get("image") == SCORER_IMAGE}


def registry_mount(service: dict[str, Any]) -> str:
    """The named volume mounted at the service's SCORER_REGISTRY."""
    path = service["environment"]["SCORER_REGISTRY"]
    (volume,) = [v.split(":")[0] for v in service.get("volumes", []) if v.split(":")[1] == path]
    return volume


def test_every_scorer_service_command_parses_with_the_real_cli(
    services: dict[str, Any],
) -> None:
    found = scorer_services(services)
    assert {"topics", "scorer", "monitor", "model-init"} <= set(found)
    parser = build_parser()
    for name, service in found.items():
        command = service["command"]
        assert isinstance(command, list) and all(isinstance(a, str) for a in command), name
        assert "entrypoint" not in service, f"{name}: the image's `scorer` entrypoint runs it"
        try:
            parser.parse_args(command)
        except SystemExit as exc:  # argparse rejects it
            pytest.fail(f"{name}: `scorer {' '.join(command)}` does not parse ({exc})")


def test_the_init_registers_the_served_model_once(services: dict[str, Any]) -> None:
    init = services["model-init"]
    args = build_parser().parse_args(init["command"])
    assert init["command"][0] == "train"
    assert args.register and args.champion and args.if_missing
    serve = build_parser().parse_args(services["scorer"]["command"])
    assert args.name == (serve.model or load_settings({}).model)
    assert init.get("restart", "no") == "no"


def test_serve_and_monitor_wait_for_the_init_and_the_topics(services: dict[str, Any]) -> None:
    for name in ("scorer", "monitor"):
        deps = conditions(services[name])
        assert deps.get("model-init") == "service_completed_successfully", name
        assert deps.get("topics") == "service_completed_successfully", name
    # nothing that needs the model starts before it is there
    for name, service in scorer_services(services).items():
        if name not in ("model-init", "topics"):
            assert conditions(service).get("model-init") == "service_completed_successfully"


def test_the_init_writes_where_serve_reads(services: dict[str, Any]) -> None:
    init, serve = services["model-init"], services["scorer"]
    assert init["environment"]["SCORER_REGISTRY"] == serve["environment"]["SCORER_REGISTRY"]
    assert registry_mount(init) == registry_mount(serve) == registry_mount(services["monitor"])
    assert not any(v.endswith(":ro") for v in init["volumes"])


def test_the_init_command_leaves_a_champion_and_is_idempotent(
    services: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SCORER_REGISTRY", str(tmp_path / "registry"))
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")  # the init needs no broker
    command = list(services["model-init"]["command"])
    name = build_parser().parse_args(command).name
    assert main(["models", "show", name]) == 1  # the empty volume serve used to crash on
    for _ in range(2):  # `docker compose up` twice
        assert main(command) == 0
        assert main(["models", "show", name]) == 0
        registry = Registry(tmp_path / "registry")
        assert registry.versions(name) == [1]
        assert registry.aliases(name) == {"champion": 1}
    out = capsys.readouterr().out
    assert "champion -> v1" in out
