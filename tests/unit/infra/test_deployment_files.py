"""The deployment files (Dockerfile, compose, Prometheus, Grafana) agree with the code.

No Docker engine is needed: the files are parsed and checked against the scorer's real
metric exposition, its default settings and the pinned broker version.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.observability import ScorerMetrics
from streams.settings import load_settings

ROOT = Path(__file__).resolve().parents[3]
INFRA = ROOT / "infra"
COMPOSE = INFRA / "docker-compose.yml"
DASHBOARD = INFRA / "grafana" / "dashboards" / "scorer.json"

IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
METRIC_NAME = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{|\s)", re.MULTILINE)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    result = compose["services"]
    assert isinstance(result, dict)
    return result


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def exported_metric_names() -> set[str]:
    """Every series name of a ScorerMetrics whose metrics have all been touched once."""
    metrics = ScorerMetrics()
    metrics.events.labels("scored").inc()
    metrics.decisions.labels("approve").inc()
    metrics.dlq.labels("INVALID_JSON").inc()
    metrics.errors.labels("delivery").inc()
    metrics.batch_size.observe(10)
    metrics.scoring_seconds.observe(0.01)
    metrics.end_to_end_seconds.observe(0.02)
    metrics.lag.labels("events", "0").set(5)
    metrics.set_model("champion", "loans", 1, "a" * 64)
    metrics.swaps.labels("applied").inc()
    metrics.alerts.labels("psi", "open").inc()
    metrics.fairness.labels("sex", "ok").inc()
    metrics.labels.labels("joined").inc()
    metrics.in_flight.set(3)
    text = metrics.exposition().decode()
    return {m.group(1) for m in METRIC_NAME.finditer(text) if not m.group(1).startswith("#")}


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on", {})
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def test_compose_has_the_seven_services(services: dict[str, Any]) -> None:
    assert set(services) == {
        "kafka",
        "topics",
        "model-init",
        "scorer",
        "monitor",
        "prometheus",
        "grafana",
    }


def test_kafka_image_matches_the_pinned_broker(services: dict[str, Any]) -> None:
    pom = ET.parse(INFRA / "kafka" / "pom.xml").getroot()
    version = next(el.text for el in pom.iter() if el.tag.endswith("kafka.version"))
    assert services["kafka"]["image"] == f"apache/kafka:{version}"


def test_kafka_is_single_node_kraft_without_auto_creation(services: dict[str, Any]) -> None:
    env = services["kafka"]["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert "localhost:9094" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert "9094:9094" in services["kafka"]["ports"]
    assert "healthcheck" in services["kafka"]


def test_topics_and_scorer_point_at_the_kafka_service(services: dict[str, Any]) -> None:
    for name in ("topics", "scorer", "monitor"):
        bootstrap = services[name]["environment"]["KAFKA_BOOTSTRAP_SERVERS"]
        assert bootstrap.split(":")[0] == "kafka"
        assert depends_on(services[name])["kafka"] == "service_healthy"
    assert services["topics"]["command"] == ["topics", "apply"]
    assert services["scorer"]["command"] == ["serve"]
    assert services["monitor"]["command"][0] == "monitor"
    for name in ("scorer", "monitor"):
        assert depends_on(services[name])["topics"] == "service_completed_successfully"
    assert services["monitor"]["environment"]["SCORER_REGISTRY"] == "/registry"  # manifests


def test_scorer_service_exposes_metrics_and_the_registry(services: dict[str, Any]) -> None:
    scorer = services["scorer"]
    port = load_settings({}).metrics_port
    assert scorer["environment"]["SCORER_METRICS_PORT"] == str(port)
    assert scorer["environment"]["SCORER_REGISTRY"] == "/registry"
    assert f"{port}:{port}" in scorer["ports"]
    assert any(v.split(":")[1] == "/registry" for v in scorer["volumes"])
    assert f"{port}/healthz" in " ".join(scorer["healthcheck"]["test"])
    assert (COMPOSE.parent / scorer["build"]["context"] / scorer["build"]["dockerfile"]).is_file()


def test_bind_mounts_name_files_in_the_repo(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    named_volumes = set(compose.get("volumes") or {})
    mounts = [v for s in services.values() for v in s.get("volumes", [])]
    assert mounts
    for mount in mounts:
        source = mount.split(":")[0]
        if source.startswith((".", "/")):
            assert (COMPOSE.parent / source).exists(), mount
        else:
            assert source in named_volumes, mount
    assert services["prometheus"]["image"].startswith("prom/prometheus")
    assert services["grafana"]["image"].startswith("grafana/grafana")


def test_prometheus_scrapes_the_scorer() -> None:
    config = load_yaml(INFRA / "prometheus" / "prometheus.yml")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "scorer"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job["scrape_interval"] == "5s"
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == [f"scorer:{load_settings({}).metrics_port}"]


def test_prometheus_scrapes_the_monitor_owner(services: dict[str, Any]) -> None:
    config = load_yaml(INFRA / "prometheus" / "prometheus.yml")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "monitor"]
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    port = services["monitor"]["command"][
        services["monitor"]["command"].index("--metrics-port") + 1
    ]
    assert targets == [f"monitor:{port}"]


def test_grafana_provisioning_points_at_prometheus_and_the_dashboards(
    services: dict[str, Any],
) -> None:
    provisioning = INFRA / "grafana" / "provisioning"
    (source,) = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    (provider,) = load_yaml(provisioning / "dashboards" / "dashboards.yml")["providers"]
    assert provider["type"] == "file"
    mounted = {v.split(":")[1]: v.split(":")[0] for v in services["grafana"]["volumes"]}
    assert mounted[provider["options"]["path"]] == "./grafana/dashboards"


def test_dashboard_is_well_formed(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "streaming-scorer"
    assert 36 <= dashboard["schemaVersion"] <= 41
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]


def test_dashboard_uses_only_exported_metrics(dashboard: dict[str, Any]) -> None:
    exported = exported_metric_names()
    referenced = {
        name
        for expr in dashboard_exprs(dashboard)
        for name in IDENTIFIER.findall(expr)
        if name.startswith("scorer_")
    }
    assert referenced, "the dashboard references no scorer metric"
    assert referenced <= exported, sorted(referenced - exported)

    # Every metric the scorer exports has a panel (histograms through their buckets).
    def family(name: str) -> str:
        return re.sub(r"_(bucket|sum|count)$", "", name)

    families = {family(n) for n in exported if not n.endswith("_created")}
    shown = {family(n) for n in referenced}
    assert families <= shown, sorted(families - shown)


def test_dockerfile_runs_the_scorer_on_the_metrics_port() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.MULTILINE)
    (entrypoint,) = re.findall(r"^ENTRYPOINT\s+(\[.*\])\s*$", text, re.MULTILINE)
    assert json.loads(entrypoint) == ["scorer"]
    (cmd,) = re.findall(r"^CMD\s+(\[.*\])\s*$", text, re.MULTILINE)
    assert json.loads(cmd) == ["serve"]
    exposed = re.findall(r"^EXPOSE\s+(\d+)", text, re.MULTILINE)
    assert exposed == [str(load_settings({}).metrics_port)]
    assert re.search(r"^USER\s+(?!root\b|0\b)\S+", text, re.MULTILINE)
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".venv", "var", "infra/kafka/lib", ".git"} <= set(ignored)
