"""Report data for the rendering tests: a small spec, its reference, and an open alert."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np

from models.featurespec import Feature, FeatureSpec
from models.reference import build_reference
from streams.report.sections import ReportData

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SPEC = FeatureSpec(
    features=[
        Feature(name="salary", kind="numeric", nullable=True, impute=50.0),
        Feature(name="car", kind="categorical", categories=["1", "2", "3"]),
        Feature(name="owner", kind="boolean"),
    ]
)


def rows(n: int, shift: float, seed: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    return [{"salary": float(rng.normal(50 + shift, 10)), "car": str(rng.integers(1, 4)),
             "owner": bool(rng.random() < 0.3)} for _ in range(n)]  # fmt: skip


def alert(monitor: str, status: str, minutes: int) -> dict[str, object]:
    return {"monitor_id": monitor, "status": status, "statistic": "psi", "value": 0.4,
            "detected_at": (T0 + timedelta(minutes=minutes)).isoformat(),
            "window": {"start_time": (T0 + timedelta(minutes=minutes - 5)).isoformat()},
            "retrain_recommended": False}  # fmt: skip


def report_data(**overrides: object) -> ReportData:
    scores = np.random.default_rng(5).random(500)
    values = dict(
        model="loans", version=3, sha256="ab" * 32, spec=SPEC,
        reference=build_reference(SPEC, rows(2000, 0.0, 1), scores=scores),
        features=rows(300, 10.0, 4), events_read=302, events_undecodable=2,
        scores=list(scores[:300]), decisions=Counter({"approve": 200, "decline": 100}),
        alerts=[alert("feature:salary", "open", 10)],
        fairness=[{"attribute": "age_band", "generated_at": "x", "status": "alert",
                   "reference_group": "40-59", "di_threshold": 0.8,
                   "disparate_impact_ratio": 0.61,
                   "groups": [{"group": "<40", "count": 120, "selection_rate": 0.4},
                              {"group": "40-59", "count": 150, "selection_rate": 0.66}]}],
        generated_at=T0 + timedelta(hours=1),
    )  # fmt: skip
    values.update(overrides)
    return ReportData(**values)  # type: ignore[arg-type]
