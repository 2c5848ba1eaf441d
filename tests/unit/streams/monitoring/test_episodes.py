"""Alert lifecycle: one alert per episode, a resolution when it clears, cooldown, escalation."""

from __future__ import annotations

import numpy as np

from schemas.contracts import DriftAlert
from streams.monitoring import MonitorConfig, MonitorSet
from streams.monitoring.base import Verdict
from streams.monitoring.episodes import EpisodeTracker
from streams.monitoring.retrain import RetrainRule
from streams.monitoring.summary import WindowSummary
from tests.support.synthetic import SyntheticModel

CONFIG = MonitorConfig(
    window_seconds=50.0,
    lateness_seconds=5.0,
    event_partitions=4,
    resolve_windows=2,
    cooldown_windows=3,
)


def run(synthetic: SyntheticModel, phases: list[tuple[int, dict]], **batch: object) -> list[dict]:
    monitors = MonitorSet(synthetic.manifest, CONFIG)
    rng = np.random.default_rng(5)
    records, start = [], 0
    for events, options in phases:
        for begin in range(start, start + events, 1_000):
            b, _ = synthetic.batch(rng, begin, 1_000, **{**batch, **options})  # type: ignore[arg-type]
            records += monitors.observe(b)
        start += events
    records += monitors.flush()
    return [r for r in records if "alert_id" in r]


def test_a_shift_gives_one_alert_and_one_resolution(synthetic: SyntheticModel) -> None:
    alerts = run(
        synthetic,
        [(20_000, {}), (10_000, {"shift": {"n_normal": 1.0}}), (20_000, {})],
    )
    assert [(a["monitor_id"], a["status"]) for a in alerts] == [
        ("feature:n_normal", "open"),
        ("feature:n_normal", "resolved"),
    ]
    opened, resolved = (DriftAlert.model_validate(a) for a in alerts)
    assert (
        opened.alert_id
        == resolved.alert_id
        == "feature:n_normal@" + str(opened.current["episode"]["opened_window"])
    )
    assert opened.severity == "warning" and resolved.severity == "info"
    assert not opened.retrain_recommended and resolved.value <= resolved.threshold
    episode = resolved.current["episode"]
    assert episode["breaches"] >= 19  # 10,000 shifted events, 500 per window
    assert episode["peak"] > opened.threshold
    # the shift ends at event 30,000 (t = 3000 s): resolved two clear windows later
    assert resolved.window.end_time.timestamp() - opened.window.start_time.timestamp() < 1200
    assert resolved.window.offsets and all(a <= b for a, b in resolved.window.offsets.values())


def test_cooldown_limits_a_flapping_monitor() -> None:
    tracker = EpisodeTracker(resolve_windows=1, cooldown_windows=3)
    opened = 0
    for window_id in range(40):
        breach = window_id % 2 == 0  # breach, clear, breach, clear, ...
        verdict = Verdict("m", "feature", "x", "g_test", 2.0 if breach else 0.0, 1.0, breach, 500)
        transition = tracker.step(verdict, WindowSummary("events", window_id, 60.0, 500))
        opened += transition is not None and transition.status == "open"
    # open at 0, resolve at 1, cool down through 4, open at 6, ...: every 6 windows
    assert opened == 7 and tracker.suppressed == 13


def test_escalation_re_issues_the_prediction_alert_once_with_r2(synthetic: SyntheticModel) -> None:
    alerts = run(
        synthetic,
        [(10_000, {}), (5_000, {"shift": {"n_normal": 1.0}, "score_beta": (3.0, 2.0)})],
    )
    prediction = [a for a in alerts if a["monitor_id"] == "prediction:score"]
    assert [a["status"] for a in prediction] == ["open", "open"]
    first, escalated = prediction
    assert first["alert_id"] == escalated["alert_id"]
    assert not first["retrain_recommended"] and escalated["retrain_recommended"]
    assert escalated["retrain_rule"] == RetrainRule(1, 3).covariate_text
    assert escalated["severity"] == "critical"
    windows = (
        escalated["current"]["episode"]["escalated_window"]
        - first["current"]["episode"]["opened_window"]
    )
    assert windows == CONFIG.retrain_windows - 1  # met in the third consecutive window
    feature = [a for a in alerts if a["monitor_id"] == "feature:n_normal"]
    assert len(feature) == 1 and not feature[0]["retrain_recommended"]


def test_retrain_rule_needs_enough_features_and_windows() -> None:
    rule = RetrainRule(features=2, windows=2)
    assert rule.events_window(True, 1) is None  # one feature is not enough
    assert rule.events_window(True, 2) is None  # first window of two
    assert rule.events_window(None, 0) is None  # no verdict: streak unchanged
    assert rule.events_window(True, 3) == rule.covariate_text
    assert rule.events_window(False, 3) is None
