"""Metrics are exported under their documented names; health endpoints tell the truth."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from streams.observability import Health, ScorerMetrics, serve_http


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_metrics_and_health_endpoints() -> None:
    metrics, health = ScorerMetrics(), Health(stall_after_s=60)
    metrics.events.labels("scored").inc(3)
    metrics.dlq.labels("INVALID_JSON").inc()
    metrics.set_model("champion", "loans", 1, "a" * 64)
    metrics.set_model("champion", "loans", 2, "b" * 64)
    server = serve_http(metrics, health, 0)
    port = server.server_address[1]
    try:
        status, body = get(port, "/metrics")
        text = body.decode()
        assert status == 200
        assert 'scorer_events_total{outcome="scored"} 3.0' in text
        assert 'scorer_dlq_total{reason="INVALID_JSON"} 1.0' in text
        assert 'version="2"' in text and 'version="1"' not in text  # one series per role
        for name in ("scorer_batch_size", "scorer_scoring_seconds", "scorer_end_to_end_seconds",
                     "scorer_consumer_lag", "scorer_errors_total"):  # fmt: skip
            assert name in text

        assert get(port, "/healthz")[0] == 200
        status, body = get(port, "/readyz")
        assert status == 503 and json.loads(body)["reason"] == "starting"
        health.set(True)
        assert get(port, "/readyz")[0] == 200
        health.set(False, "delivery failed: topic missing")
        status, body = get(port, "/readyz")
        assert status == 503 and "topic missing" in json.loads(body)["reason"]
        assert get(port, "/nope")[0] == 404
    finally:
        server.shutdown()


def test_liveness_fails_when_the_loop_stalls() -> None:
    health = Health(stall_after_s=0.0)
    ok, reason = health.live()
    assert not ok and "stalled" in reason
