"""Detection: a 0.5 sigma mean shift within 2,000 events, the Agrawal concept switch within
5,000 labelled events."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from models.datasets import agrawal_stream
from models.featurespec import Feature, FeatureSpec
from models.manifest import ModelManifest
from schemas.contracts import DriftAlert
from streams.monitoring import LabelledBatch, MonitorConfig, MonitorSet, ObservedBatch
from streams.monitoring.feature_drift import FeatureDriftMonitor
from tests.support.models import TrainModel
from tests.support.synthetic import SyntheticModel

WINDOW = MonitorConfig(window_seconds=50.0, lateness_seconds=5.0, event_partitions=4)
"""500 events per window at 10 events/s; lateness 50 events."""


def first_alert_after(
    synthetic: SyntheticModel, feature: str, shift_at: int, seed: int
) -> tuple[int | None, list[dict]]:
    """Events from the shift start to the end of the batch whose observation raised the
    feature's alert; and every alert seen."""
    monitors = MonitorSet(synthetic.manifest, WINDOW)
    rng = np.random.default_rng(seed)
    alerts: list[dict] = []
    before, _ = synthetic.batch(rng, 0, shift_at)
    alerts += monitors.observe(before)
    for start in range(shift_at, shift_at + 5_000, 50):
        batch, _ = synthetic.batch(rng, start, 50, shift={feature: 0.5})
        for record in monitors.observe(batch):
            alerts.append(record)
            if record.get("monitor_id") == f"feature:{feature}":
                return start + 50 - shift_at, alerts
    return None, alerts


@pytest.mark.parametrize(
    "feature", ["n_normal", "n_lognormal", "n_gamma", "n_years", "n_zero_inflated", "n_nullable"]
)
@pytest.mark.parametrize("shift_at", [30_000, 30_230, 30_470])
def test_half_sigma_mean_shift_is_alerted_within_2000_events(
    synthetic: SyntheticModel, feature: str, shift_at: int
) -> None:
    delay, records = first_alert_after(synthetic, feature, shift_at, seed=shift_at)
    assert delay is not None and delay <= 2_000, delay
    alerts = [r for r in records if "alert_id" in r]
    assert [a["monitor_id"] for a in alerts] == [f"feature:{feature}"]  # nothing else fired
    alert = DriftAlert.model_validate(alerts[0])
    assert alert.status == "open" and alert.value > alert.threshold
    assert alert.budget_events == 1e7 and alert.statistic == "g_test"
    assert alert.window.events >= WINDOW.min_window_events


@pytest.fixture(scope="module")
def agrawal_run(train_model: TrainModel) -> dict:
    """A logistic model trained on Agrawal function 8; a stream that switches to function
    6 (and multiplies loans by 1.5) at event 10,000; every event labelled at once."""
    trained = train_model(rows=10_000, seed=3)
    manifest = ModelManifest.model_validate(
        {
            **trained.manifest_fields,
            "name": "agrawal",
            "version": 1,
            "kind": "logistic",
            "created_at": datetime(2024, 1, 1, tzinfo=UTC),
            "artifact": {"file": "m", "format": "skops", "sha256": "c" * 64, "size_bytes": 1},
        }
    )
    drift_at, total = 10_000, 20_000
    stream = list(
        agrawal_stream(
            total, seed=11, drift_at=drift_at, start=datetime(2024, 1, 1, tzinfo=UTC), run_id="r"
        )
    )
    X = manifest.feature_spec.vectorise([e.event["features"] for e in stream]).X
    scores = trained.estimator.predict_proba(X)[:, 1]
    decisions = manifest.policy.decide(scores)
    labels = np.array([e.label for e in stream])
    times = [e.event["event_time"] for e in stream]
    context = [e.event["context"] for e in stream]
    index = np.arange(total)
    config = MonitorConfig(
        window_seconds=500.0, lateness_seconds=10.0, event_partitions=3, label_partitions=3
    )
    monitors = MonitorSet(manifest, config)
    raised: list[tuple[int, dict]] = []
    for start in range(0, total, 100):
        rows = slice(start, start + 100)
        part, offset = index[rows] % 3, index[rows] // 3
        records = monitors.observe(
            ObservedBatch(
                X[rows], scores[rows], decisions[rows], times[rows], part, offset, context[rows]
            )
        )
        records += monitors.observe_labels(
            LabelledBatch(
                scores[rows],
                decisions[rows],
                labels[rows],
                times[rows],
                part,
                offset,
                context[rows],
            )
        )
        raised += [(start + 100, r) for r in records if "alert_id" in r]
    return {"drift_at": drift_at, "alerts": raised}


def test_agrawal_concept_switch_is_alerted_within_5000_labelled_events(agrawal_run: dict) -> None:
    drift_at = agrawal_run["drift_at"]
    concept = [(n, a) for n, a in agrawal_run["alerts"] if a["monitor"] == "concept"]
    assert concept, "no concept alert"
    seen, alert = concept[0]
    assert drift_at < seen <= drift_at + 5_000
    parsed = DriftAlert.model_validate(alert)
    assert parsed.statistic == "error_rate_g" and parsed.status == "open"
    assert (
        parsed.retrain_recommended and parsed.retrain_rule and parsed.retrain_rule.startswith("R1")
    )
    assert parsed.severity == "critical"
    assert parsed.current["error_rate"] > parsed.reference["error_rate"]
    assert 0.5 < parsed.current["roc_auc"] <= 1.0


def test_agrawal_stream_is_quiet_before_the_switch(agrawal_run: dict) -> None:
    drift_at = agrawal_run["drift_at"]
    early = [a["alert_id"] for n, a in agrawal_run["alerts"] if n <= drift_at]
    assert early == []


def test_agrawal_loan_shift_opens_feature_and_prediction_episodes_and_r2(agrawal_run: dict) -> None:
    alerts = [a for _, a in agrawal_run["alerts"]]
    ids = {(a["monitor_id"], a["status"]) for a in alerts}
    assert ("feature:loan", "open") in ids and ("prediction:score", "open") in ids
    escalations = [a for a in alerts if a["current"]["episode"].get("escalated_window")]
    assert len(escalations) == 1
    assert escalations[0]["monitor_id"] == "prediction:score"
    assert escalations[0]["retrain_rule"].startswith("R2")
    # the escalation re-issues the same episode: one alert id per episode
    opened = [a for a in alerts if a["monitor_id"] == "prediction:score"]
    assert len({a["alert_id"] for a in opened}) == 1


def test_a_categorical_features_cells_are_the_categories_the_events_hold() -> None:
    """Each event's cell is the index of its category (and a boolean's is false/true),
    read back from the one-hot design matrix."""
    spec = FeatureSpec(
        features=[
            Feature(name="x", kind="numeric"),
            Feature(name="c", kind="categorical", categories=["a", "b", "c", "d"]),
            Feature(name="f", kind="boolean"),
        ]
    )
    rng = np.random.default_rng(3)
    chosen = rng.integers(0, 4, 300)
    flags = rng.random(300) < 0.5
    events = [
        {"x": float(i), "c": "abcd"[k], "f": bool(f)}
        for i, (k, f) in enumerate(zip(chosen, flags, strict=True))
    ]
    X = spec.vectorise(events).X
    category = FeatureDriftMonitor(
        spec.features[1], spec, {"frequencies": dict.fromkeys("abcd", 0.25), "count": 100}, 10
    )
    boolean = FeatureDriftMonitor(
        spec.features[2], spec, {"frequencies": {"false": 0.5, "true": 0.5}, "count": 100}, 10
    )
    assert category._cells(X)[0].tolist() == chosen.tolist()
    assert boolean._cells(X)[0].tolist() == flags.astype(int).tolist()
