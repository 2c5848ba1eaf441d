"""Monitoring core: throughput, false alarms against the budget, detection delays, and the
calibrated tests beside river's ADWIN, KSWIN and DDM at their default settings.

Run with ``python tests/bench/bench_monitoring.py [--events N]``. No Kafka. Everything runs
in one process, seeded, so the rows are comparable; the last line is one JSON object with
the headline figures. Windows hold 500 events (50 s at 10 events/s), lateness 50 events.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from river import drift

from models.datasets import agrawal, agrawal_stream
from models.manifest import ModelManifest
from models.training import train
from streams.monitoring import LabelledBatch, MonitorConfig, MonitorSet, ObservedBatch
from tests.support.synthetic import NUMERIC, SyntheticModel

DETECTORS = (("adwin", drift.ADWIN), ("ddm", drift.binary.DDM), ("kswin", drift.KSWIN))
CONFIG = MonitorConfig(window_seconds=50.0, lateness_seconds=5.0, event_partitions=4)


def stationary(synthetic: SyntheticModel, events: int, budget: float, batch: int) -> dict:
    config = CONFIG.model_copy(update={"budget_events": budget})
    monitors = MonitorSet(synthetic.manifest, config)
    rng = np.random.default_rng(1)
    batches = [synthetic.batch(rng, s, min(batch, events - s))[0] for s in range(0, events, batch)]
    started = time.perf_counter()
    alerts = 0
    for b in batches:
        alerts += sum("alert_id" in r for r in monitors.observe(b))
    alerts += sum("alert_id" in r for r in monitors.flush())
    seconds = time.perf_counter() - started
    stats = monitors.stats()
    return {
        "events_per_second": events / seconds,
        "open_alerts": alerts,
        "breaches": {
            k: stats["counters"].get(f"breaches.{k}", 0)
            for k in ("feature", "missing", "prediction")
        },
        "expected": {k: round(v, 3) for k, v in stats["expected_false_breaches"].items()},
        "tests": stats["counters"].get("tests.feature", 0),
    }


def shift_delay(synthetic: SyntheticModel, feature: str, shift_at: int, seed: int) -> int | None:
    monitors = MonitorSet(synthetic.manifest, CONFIG)
    rng = np.random.default_rng(seed)
    monitors.observe(synthetic.batch(rng, 0, shift_at)[0])
    for start in range(shift_at, shift_at + 5_000, 25):
        batch, _ = synthetic.batch(rng, start, 25, shift={feature: 0.5})
        if any(r.get("monitor_id") == f"feature:{feature}" for r in monitors.observe(batch)):
            return start + 25 - shift_at
    return None


def river_on_feature(
    synthetic: SyntheticModel, feature: str, shift_at: int, seed: int, after: int = 5_000
) -> dict[str, tuple[int | None, int]]:
    """ADWIN and KSWIN (river defaults) on the same feature's values: delay after the 0.5 sigma
    shift (None: not within ``after`` events) and alarms before it."""
    rng = np.random.default_rng(seed)
    column = synthetic.manifest.feature_spec.columns.index(feature)
    before = synthetic.batch(rng, 0, shift_at)[0].X[:, column]
    shifted = synthetic.batch(rng, shift_at, after, shift={feature: 0.5})[0].X[:, column]
    values = np.concatenate([before, shifted])
    values = values[np.isfinite(values)].tolist()
    result = {}
    for name, make in (("adwin", drift.ADWIN), ("kswin", lambda: drift.KSWIN(seed=seed))):
        detector, alarms, delay = make(), 0, None
        for i, value in enumerate(values):
            detector.update(value)
            if detector.drift_detected:
                if i < shift_at:
                    alarms += 1
                elif delay is None:
                    delay = i + 1 - shift_at
                    break
        result[name] = (delay, alarms)
    return result


def agrawal_concept(events: int, drift_at: int) -> dict:
    dataset = agrawal(10_000, seed=3)
    trained = train(dataset, "logistic", seed=3)
    manifest = ModelManifest.model_validate(
        {
            **trained.manifest_fields,
            "name": "bench",
            "version": 1,
            "kind": "logistic",
            "created_at": datetime(2024, 1, 1, tzinfo=UTC),
            "artifact": {"file": "m", "format": "skops", "sha256": "c" * 64, "size_bytes": 1},
        }
    )
    start = datetime(2024, 1, 1, tzinfo=UTC)
    stream = list(agrawal_stream(events, seed=11, drift_at=drift_at, start=start, run_id="b"))
    X = manifest.feature_spec.vectorise([e.event["features"] for e in stream]).X
    scores = trained.estimator.predict_proba(X)[:, 1]
    labels = np.array([e.label for e in stream])
    times = np.array([(start.timestamp() + i) for i in range(events)], dtype=float)
    decisions = manifest.policy.decide(scores)
    errors = (scores >= manifest.policy.classification_threshold) != (labels == 1)
    monitors = MonitorSet(
        manifest,
        MonitorConfig(
            window_seconds=500.0, lateness_seconds=10.0, event_partitions=1, label_partitions=1
        ),
    )
    windowed = None
    for a in range(0, events, 50):
        rows = slice(a, a + 50)
        idx = np.arange(a, min(a + 50, events))
        monitors.observe(
            ObservedBatch(X[rows], scores[rows], decisions[rows], times[rows], 0 * idx, idx)
        )
        records = monitors.observe_labels(
            LabelledBatch(scores[rows], decisions[rows], labels[rows], times[rows], 0 * idx, idx)
        )
        if windowed is None and any(r.get("monitor") == "concept" for r in records):
            windowed = idx[-1] + 1 - drift_at
    result = {
        "windowed_g_delay": windowed,
        "error_rate_before": float(errors[:drift_at].mean()),
        "error_rate_after": float(errors[drift_at:].mean()),
    }
    for name, make in DETECTORS:
        detector, false_alarms, delay = make(), 0, None
        for i, error in enumerate(errors.tolist()):
            detector.update(error)
            if detector.drift_detected:
                if i < drift_at:
                    false_alarms += 1
                elif delay is None:
                    delay = i + 1 - drift_at
        result[f"{name}_delay"] = delay
        result[f"{name}_false_alarms_before"] = false_alarms
    # long stationary error stream at the pre-switch error rate
    rng = np.random.default_rng(2)
    long = (rng.random(1_000_000) < result["error_rate_before"]).tolist()
    for name, make in DETECTORS:
        detector, alarms = make(), 0
        for error in long[: 1_000_000 if name != "kswin" else 100_000]:
            detector.update(error)
            alarms += detector.drift_detected
        result[f"{name}_false_alarms_per_1M"] = alarms
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    synthetic = SyntheticModel(seed=0)

    print(f"{'stationary run':<34}{'events/s':>12}{'alerts':>8}  breaches (expected)")
    headline: dict[str, object] = {}
    for budget, batch in ((1e7, 1_000), (1e7, 20_000), (2e4, 20_000)):
        row = stationary(synthetic, args.events, budget, batch)
        label = f"budget {budget:.0e}, batch {batch}"
        pairs = ", ".join(
            f"{k} {row['breaches'][k]} ({row['expected'].get(k, 0)})" for k in row["breaches"]
        )
        print(f"{label:<34}{row['events_per_second']:>12,.0f}{row['open_alerts']:>8}  {pairs}")
        headline[f"alerts_budget{budget:.0e}_batch{batch}"] = row["open_alerts"]
        headline[f"events_per_second_budget{budget:.0e}_batch{batch}"] = round(
            row["events_per_second"]
        )

    print(
        f"\n{'0.5 sigma shift, delay in events':<22}{'ours min':>9}{'median':>8}{'max':>6}"
        f"{'ADWIN delay':>13}{'(alarms)':>9}{'KSWIN delay':>13}{'(alarms)':>9}"
    )
    worst = 0
    for feature in NUMERIC:
        delays = [shift_delay(synthetic, feature, 20_000 + k * 97, seed=k) for k in range(6)]
        found = [d for d in delays if d is not None]
        missed = len(delays) - len(found)
        text = (
            f"{min(found):>9}{int(np.median(found)):>8}{max(found):>6}"
            if found
            else f"{'-':>9}{'-':>8}{'-':>6}"
        )
        river = river_on_feature(synthetic, feature, 20_000, seed=0)
        for name in ("adwin", "kswin"):
            delay, alarms = river[name]
            text += f"{delay if delay is not None else '-'!s:>13}{alarms:>9}"
            headline[f"shift_{feature}_{name}_delay"] = delay
            headline[f"shift_{feature}_{name}_false_alarms_20k"] = alarms
        print(f"{feature:<22}{text}" + (f"   missed {missed}/6" if missed else ""))
        if feature != "n_poisson" and found:
            worst = max(worst, max(found))
    headline["shift_worst_delay_events"] = worst

    concept = agrawal_concept(20_000, 10_000)
    print(
        "\nAgrawal switch at 10,000 (error rate "
        f"{concept['error_rate_before']:.3f} -> {concept['error_rate_after']:.3f})"
    )
    print(f"{'detector':<12}{'delay':>8}{'false alarms before':>22}{'per 1M stationary':>20}")
    print("(KSWIN's stationary row is over 100,000 events: it runs a KS test per update)")
    print(f"{'windowed G':<12}{concept['windowed_g_delay']!s:>8}{0:>22}{'budget 1e-7/event':>20}")
    for name in ("adwin", "ddm", "kswin"):
        print(
            f"{name:<12}{concept[f'{name}_delay']!s:>8}{concept[f'{name}_false_alarms_before']:>22}"
            f"{concept[f'{name}_false_alarms_per_1M']:>20}"
        )
    headline.update({f"concept_{k}": v for k, v in concept.items()})
    print(json.dumps({"benchmark": "monitoring", **headline}, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
