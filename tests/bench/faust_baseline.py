"""The Faust baseline: the scorer a user writes first with faust-streaming, one event at a time.

``tests/bench/bench_pipeline.py`` runs it beside the native engine, so that the engine's
speed-up is measured against an honest first version rather than a strawman. Per event the
agent decodes the JSON value (Faust's ``json`` serializer), builds the feature row, calls
the scikit-learn pipeline's ``predict_proba`` on that one row, applies the policy bands,
explains the score (coefficient times standardised input, summed per feature: exact for a
logistic model) and sends one decision and one explanation shaped like the contracts, so
the output volume matches the engine's. Everything else is Faust's default: no tables, no
sleeps, no flushes; the web server is off only because the benchmark needs no port.

Configuration comes from the variables ``scorer serve`` reads: KAFKA_BOOTSTRAP_SERVERS,
SCORER_TOPIC_EVENTS, SCORER_TOPIC_DECISIONS, SCORER_TOPIC_EXPLANATIONS, SCORER_REGISTRY and
SCORER_MODEL (a registered ``logistic`` model with a champion), plus FAUST_APP_ID (the
consumer group). Faust keeps its data directory under the working directory.

    python tests/bench/faust_baseline.py worker -l warn
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import faust
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from models.registry import Registry

env = os.environ
loaded = Registry(Path(env["SCORER_REGISTRY"])).load(env.get("SCORER_MODEL", "demo"), "champion")
manifest, pipeline = loaded.manifest, loaded.estimator
spec, policy = manifest.feature_spec, manifest.policy
scaler, logistic = pipeline.named_steps["scale"], pipeline.named_steps["model"]
weights, intercept = logistic.coef_[0], float(logistic.intercept_[0])
model_ref = {"name": manifest.name, "version": manifest.version, "sha256": manifest.artifact.sha256}

app = faust.App(
    env.get("FAUST_APP_ID", "faust-baseline"),
    broker="kafka://" + env.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092"),
    web_enabled=False,
    consumer_auto_offset_reset="earliest",
)
events = app.topic(env.get("SCORER_TOPIC_EVENTS", "events"), value_serializer="json")
decisions = app.topic(env.get("SCORER_TOPIC_DECISIONS", "decisions"), value_serializer="json")
explanations = app.topic(
    env.get("SCORER_TOPIC_EXPLANATIONS", "explanations"), value_serializer="json"
)


def decide(probability: float) -> str:
    if probability >= policy.decline_at:
        return "decline"
    return "review" if probability >= policy.review_at else "approve"


@app.agent(events)
async def score(stream):
    async for event in stream:
        received = time.time()
        features = event["features"]
        X = spec.vectorise([features]).X  # the feature row: numbers and one-hot columns
        if not len(X):
            continue  # the baseline has no dead-letter topic
        probability = float(pipeline.predict_proba(X)[0, 1])
        label = decide(probability)
        per_column = weights * (X[0] - scaler.mean_) / scaler.scale_
        contributions = dict(zip(spec.names, (per_column @ spec.grouping).tolist(), strict=True))
        ranked = sorted(contributions.items(), key=lambda item: -item[1])
        reasons = [
            {"code": f"RC_{name.upper()}", "feature": name, "contribution": value,
             "text": manifest.reason_texts.get(name, name)}
            for name, value in ranked[:4]
            if value > 0.0 and label != "approve"
        ]  # fmt: skip
        now = datetime.now(UTC)
        decision = {
            "schema_version": 1, "event_id": event["event_id"], "entity_id": event["entity_id"],
            "decision": label, "score": probability, "thresholds": policy.thresholds,
            "reason_codes": reasons, "model": model_ref,
            "input_hash": hashlib.sha256(
                orjson.dumps(features, option=orjson.OPT_SORT_KEYS)).hexdigest(),
            "event_time": event["event_time"], "scored_at": now.isoformat(),
            "latency_ms": (now.timestamp() - received) * 1000.0, "shadow": False,
        }  # fmt: skip
        raw = intercept + sum(contributions.values())
        explanation = {
            "schema_version": 1, "event_id": event["event_id"], "entity_id": event["entity_id"],
            "model": model_ref, "method": "linear", "output_space": "log_odds",
            "base_value": intercept, "output_value": raw, "contributions": contributions,
            "top_features": [name for name, _ in sorted(
                contributions.items(), key=lambda item: -abs(item[1]))[:5]],
            "additivity_error": 0.0,
        }  # fmt: skip
        await decisions.send(key=event["entity_id"], value=decision)
        await explanations.send(key=event["entity_id"], value=explanation)


if __name__ == "__main__":
    app.main()
