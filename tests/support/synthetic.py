"""A synthetic 20-feature model for the monitoring tests (checked in
``tests/unit/streams/monitoring/test_synthetic.py``).

:class:`SyntheticModel` draws events from fixed distributions (12 numeric features, two of
them nullable, 6 categorical, 2 boolean; scores from a beta distribution): a reference
sample gives the manifest's ``reference`` (via :func:`models.reference.build_reference`,
as at training), and :meth:`SyntheticModel.batch` draws fresh events from the *same*
distributions straight into a design matrix with numpy, optionally with one feature
shifted by a multiple of its standard deviation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from models.featurespec import Feature, FeatureKind, FeatureSpec
from models.manifest import ModelManifest
from models.policy import Policy
from models.reference import build_reference
from streams.monitoring import LabelledBatch, MonitorConfig, MonitorSet, ObservedBatch

NUMERIC = {  # name: (sampler, nullable missing rate)
    "n_normal": (lambda r, n: r.normal(50.0, 10.0, n), 0.0),
    "n_normal_wide": (lambda r, n: r.normal(-3.0, 100.0, n), 0.0),
    "n_normal_small": (lambda r, n: r.normal(0.0, 0.01, n), 0.0),
    "n_lognormal": (lambda r, n: r.lognormal(10.0, 0.8, n), 0.0),
    "n_zero_inflated": (lambda r, n: np.where(r.random(n) < 0.5, 0.0, r.exponential(5.0, n)), 0.0),
    "n_student": (lambda r, n: r.standard_t(3, n), 0.0),
    "n_uniform": (lambda r, n: r.uniform(0.0, 1.0, n), 0.0),
    "n_poisson": (lambda r, n: r.poisson(3.0, n).astype(np.float64), 0.0),
    "n_years": (lambda r, n: r.integers(1, 31, n).astype(np.float64), 0.0),
    "n_gamma": (lambda r, n: r.gamma(2.0, 3.0, n), 0.0),
    "n_nullable": (lambda r, n: r.normal(100.0, 15.0, n), 0.05),
    "n_nullable_skew": (lambda r, n: r.lognormal(3.0, 1.0, n), 0.2),
}
CATEGORICAL = {  # name: probabilities of categories "0", "1", ...
    "c_even5": np.full(5, 0.2),
    "c_zipf20": (1.0 / np.arange(1, 21)) / (1.0 / np.arange(1, 21)).sum(),
    "c_rare3": np.array([0.95, 0.045, 0.005]),
    "c_even9": np.full(9, 1 / 9),
    "c_two": np.array([0.7, 0.3]),
    "c_skew12": np.array([0.3, 0.2, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.04, 0.03, 0.02, 0.01]),
}
BOOLEAN = {"b_common": 0.3, "b_rare": 0.02}
GROUPS = (("a", 0.5), ("b", 0.3), ("c", 0.2))
T0 = datetime(2024, 1, 1, tzinfo=UTC).timestamp()


def synthetic_spec() -> FeatureSpec:
    features = [
        Feature(name=name, kind=FeatureKind.NUMERIC, nullable=rate > 0.0, impute=0.0)
        for name, (_, rate) in NUMERIC.items()
    ]
    features += [
        Feature(name=name, kind=FeatureKind.CATEGORICAL, categories=[str(i) for i in range(len(p))])
        for name, p in CATEGORICAL.items()
    ]
    features += [Feature(name=name, kind=FeatureKind.BOOLEAN) for name in BOOLEAN]
    return FeatureSpec(features=features)


def _scores(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.beta(2.0, 3.0, n)


@dataclass
class Draw:
    """Raw columns of ``n`` events: value arrays, missing masks, category indices."""

    numeric: dict[str, np.ndarray]
    missing: dict[str, np.ndarray]
    categorical: dict[str, np.ndarray]
    boolean: dict[str, np.ndarray]
    scores: np.ndarray
    groups: np.ndarray


def draw(rng: np.random.Generator, n: int, shift: dict[str, float] | None = None) -> Draw:
    """``n`` events; ``shift`` adds ``k`` reference standard deviations to a numeric feature."""
    shift = shift or {}
    numeric, missing = {}, {}
    for name, (sample, rate) in NUMERIC.items():
        values = sample(rng, n)
        if name in shift:
            values = values + shift[name] * STD[name]
        numeric[name] = values
        missing[name] = rng.random(n) < rate if rate else np.zeros(n, dtype=bool)
    categorical = {name: rng.choice(len(p), size=n, p=p) for name, p in CATEGORICAL.items()}
    boolean = {name: rng.random(n) < p for name, p in BOOLEAN.items()}
    names, shares = zip(*GROUPS, strict=True)
    groups = np.asarray(names)[rng.choice(len(names), size=n, p=np.asarray(shares))]
    return Draw(numeric, missing, categorical, boolean, _scores(rng, n), groups)


def design_matrix(spec: FeatureSpec, d: Draw) -> np.ndarray:
    """What ``spec.vectorise`` gives for the same events, built column-wise."""
    columns = []
    for feature in spec.features:
        name = feature.name
        if feature.kind is FeatureKind.NUMERIC:
            values = d.numeric[name]
            if feature.nullable:
                columns.append(np.where(d.missing[name], feature.impute, values))
                columns.append(d.missing[name].astype(np.float64))
            else:
                columns.append(values)
        elif feature.kind is FeatureKind.CATEGORICAL:
            one_hot = np.zeros((d.scores.size, len(feature.categories)))
            one_hot[np.arange(d.scores.size), d.categorical[name]] = 1.0
            columns.extend(one_hot.T)
        else:
            columns.append(d.boolean[name].astype(np.float64))
    return np.column_stack(columns)


def feature_rows(spec: FeatureSpec, d: Draw) -> list[dict[str, Any]]:
    """The same events as feature dicts (what a producer sends)."""
    rows: list[dict[str, Any]] = [{} for _ in range(d.scores.size)]
    for feature in spec.features:
        name = feature.name
        if feature.kind is FeatureKind.NUMERIC:
            values: list[Any] = d.numeric[name].tolist()
            for i in np.flatnonzero(d.missing[name]).tolist():
                values[i] = None
        elif feature.kind is FeatureKind.CATEGORICAL:
            values = [str(i) for i in d.categorical[name].tolist()]
        else:
            values = d.boolean[name].tolist()
        for row, value in zip(rows, values, strict=True):
            row[name] = value
    return rows


def _std() -> dict[str, float]:
    big = np.random.default_rng(12345)
    return {name: float(sample(big, 200_000).std()) for name, (sample, _) in NUMERIC.items()}


STD = _std()
"""Population standard deviation of each numeric feature (the unit of a shift)."""


@dataclass
class SyntheticModel:
    """Manifest with a reference from ``reference_rows`` events, and a stream to match."""

    reference_rows: int = 20_000
    holdout_rows: int = 5_000
    seed: int = 0
    spec: FeatureSpec = field(default_factory=synthetic_spec)
    policy: Policy = field(default_factory=Policy)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        sample = draw(rng, self.reference_rows)
        holdout = _scores(rng, self.holdout_rows)
        labels = rng.random(self.holdout_rows) < holdout
        accuracy = float(((holdout >= self.policy.classification_threshold) == labels).mean())
        reference = build_reference(self.spec, feature_rows(self.spec, sample), holdout)
        self.manifest = ModelManifest.model_validate(
            {
                "name": "synthetic",
                "version": 1,
                "kind": "logistic",
                "created_at": datetime(2024, 1, 1, tzinfo=UTC),
                "artifact": {
                    "file": "model.skops",
                    "format": "skops",
                    "sha256": "a" * 64,
                    "size_bytes": 1,
                },
                "feature_spec": self.spec,
                "context_attributes": ["group"],
                "policy": self.policy,
                "metrics": {
                    "accuracy": accuracy,
                    "holdout_rows": float(self.holdout_rows),
                    "roc_auc": 0.75,
                },
                "reference": reference,
                "training": {
                    "dataset": "synthetic",
                    "rows": self.reference_rows,
                    "holdout_rows": self.holdout_rows,
                    "seed": self.seed,
                    "data_sha256": "b" * 64,
                    "code_version": "test",
                },
            }
        )

    def batch(
        self,
        rng: np.random.Generator,
        start: int,
        n: int,
        *,
        shift: dict[str, float] | None = None,
        rate: float = 10.0,
        partitions: int = 4,
        jitter: float = 0.0,
        score_beta: tuple[float, float] | None = None,
    ) -> tuple[ObservedBatch, Draw]:
        """Events ``start .. start + n - 1``: event ``i`` at ``T0 + i / rate`` seconds (less
        up to ``jitter`` seconds, so out of order), on partition ``i % partitions`` at offset
        ``i // partitions``; ``score_beta`` replaces the score distribution."""
        d = draw(rng, n, shift)
        if score_beta is not None:
            d.scores = rng.beta(*score_beta, n)
        index = np.arange(start, start + n)
        lag = rng.uniform(0.0, jitter, n) if jitter else 0.0
        batch = ObservedBatch(
            X=design_matrix(self.spec, d),
            scores=d.scores,
            decisions=self.policy.decide(d.scores),
            event_time=T0 + index / rate - lag,
            partition=index % partitions,
            offset=index // partitions,
            context={"group": d.groups},
        )
        return batch, d

    def labels(
        self, rng: np.random.Generator, batch: ObservedBatch, d: Draw, *, flip: float = 0.0
    ) -> LabelledBatch:
        """Immediate labels for ``batch`` (label time = event time); ``flip`` adds noise."""
        labels = rng.random(len(batch)) < batch.scores
        labels ^= rng.random(len(batch)) < flip
        return LabelledBatch(
            scores=batch.scores,
            decisions=batch.decisions,
            labels=labels.astype(int),
            label_time=batch.event_time,
            partition=batch.partition,
            offset=batch.offset,
            context={"group": d.groups},
        )


# --- one stream on three partitions, as the merge and checkpoint tests run it ---------------

SPLIT_CONFIG = MonitorConfig(
    window_seconds=50.0,
    lateness_seconds=5.0,
    event_partitions=3,
    label_partitions=3,
    min_window_labels=100,
)


def split_batches(synthetic: SyntheticModel) -> list[tuple[ObservedBatch, LabelledBatch]]:
    """60,000 events on 3 partitions, out of order by up to 8 s (lateness 5 s, so some are
    late), with a feature shift and then noisier labels (concept drift)."""
    rng = np.random.default_rng(11)
    out = []
    for start in range(0, 60_000, 600):
        shift = {"n_lognormal": 1.0} if 20_000 <= start < 32_000 else None
        batch, draw = synthetic.batch(rng, start, 600, shift=shift, partitions=3, jitter=8.0)
        labels = synthetic.labels(rng, batch, draw, flip=0.35 if start >= 40_000 else 0.0)
        out.append((batch, labels))
    return out


def comparable(records: list[dict]) -> list[dict]:
    """Records without their wall-clock stamps, in a canonical order."""
    stripped = [
        {k: v for k, v in r.items() if k not in ("detected_at", "generated_at")} for r in records
    ]
    return sorted(stripped, key=lambda r: json.dumps(r, sort_keys=True))


def run_single(synthetic: SyntheticModel, batches: list) -> tuple[list[dict], MonitorSet]:
    """Every record one monitor set (:data:`SPLIT_CONFIG`) makes of ``batches``."""
    monitors = MonitorSet(synthetic.manifest, SPLIT_CONFIG)
    records: list[dict] = []
    for events, labels in batches:
        records += monitors.observe(events)
        records += monitors.observe_labels(labels)
    return records + monitors.flush(), monitors
