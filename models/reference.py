"""Reference statistics of the training data, against which drift monitors compare a stream.

The structure (JSON-serialisable; stored as the manifest's ``reference``)::

    {"version": 1, "rows": N, "bins": 10,
     "features": {
        NAME: {"kind": "numeric", "count": non-missing count, "missing_rate": r,
               "mean": m, "std": s (population), "min": lo, "max": hi,
               "edges": [e1, ..., ek], "proportions": [p0, ..., pk]},
        NAME: {"kind": "categorical" | "boolean", "count": n, "missing_rate": r,
               "frequencies": {category: share of non-missing values}}},
     "score": {numeric statistics of the holdout scores, without missing_rate}}

Numeric bins: ``edges`` are the interior deciles of the values (each an observed value, by
numpy's ``inverted_cdf`` method, so discrete data get no empty interior bins), deduplicated,
without any edge at or below the minimum (it would only bound an empty bin). There are
``len(edges) + 1`` bins, open-ended at both ends: a value ``x`` falls in bin
``searchsorted(edges, x, side="right")``, i.e. bin ``i`` holds ``edges[i-1] <= x < edges[i]``.
A constant column has no edges and one bin. Proportions sum to 1 (empty list if no values).

>>> edges = quantile_edges(np.arange(101.0))
>>> edges
[10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0]
>>> bin_proportions(edges, np.array([-5.0, 10.0, 95.0, 1000.0]))
[0.25, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5]
>>> quantile_edges(np.array([3.0, 3.0, 3.0])), bin_proportions([], np.array([3.0, 3.0, 3.0]))
([], [1.0])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from models.featurespec import Feature, FeatureKind, FeatureSpec
from models.manifest import ModelManifest

REFERENCE_VERSION = 1
DEFAULT_BINS = 10


def quantile_edges(values: np.ndarray, bins: int = DEFAULT_BINS) -> list[float]:
    """Interior quantile edges of finite ``values`` (see module doc)."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return []
    cuts = np.quantile(data, np.arange(1, bins) / bins, method="inverted_cdf")
    edges = np.unique(cuts)
    return [float(e) for e in edges[edges > data.min()]]


def bin_index(edges: Sequence[float], values: np.ndarray) -> np.ndarray:
    """The bin of each value: ``searchsorted(edges, x, side="right")``."""
    return np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right")


def bin_proportions(edges: Sequence[float], values: np.ndarray) -> list[float]:
    """Share of ``values`` in each of the ``len(edges) + 1`` open-ended bins."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return []
    counts = np.bincount(bin_index(edges, data), minlength=len(edges) + 1)
    return [float(c) for c in counts / data.size]


def numeric_reference(values: np.ndarray, bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """Moments, range, quantile edges and bin proportions; NaN counts as missing.

    >>> ref = numeric_reference(np.array([0.0, 0.0, 0.0, 4.0, 4.0, np.nan]))
    >>> ref["count"], ref["missing_rate"], ref["mean"], ref["min"], ref["max"]
    (5, 0.16666666666666663, 1.6, 0.0, 4.0)
    >>> ref["edges"], ref["proportions"]
    ([4.0], [0.6, 0.4])
    """
    data = np.asarray(values, dtype=np.float64)
    present = data[~np.isnan(data)]
    stats: dict[str, Any] = {
        "kind": FeatureKind.NUMERIC.value,
        "count": int(present.size),
        "missing_rate": float(1.0 - present.size / data.size) if data.size else 0.0,
        "mean": None,
        "std": None,
        "min": None,
        "max": None,
    }
    if present.size:
        stats.update(
            mean=float(present.mean()),
            std=float(present.std()),
            min=float(present.min()),
            max=float(present.max()),
        )
    edges = quantile_edges(present, bins)
    stats["edges"] = edges
    stats["proportions"] = bin_proportions(edges, present)
    return stats


def categorical_reference(
    values: Sequence[Any], categories: Sequence[str], kind: str = "categorical"
) -> dict[str, Any]:
    """Share of each category among non-missing values (None is missing).

    Values are matched by text, so the int ``3`` counts for category ``"3"``.

    >>> categorical_reference([1, "1", 2, None], ["1", "2", "3"])["frequencies"]
    {'1': 0.6666666666666666, '2': 0.3333333333333333, '3': 0.0}
    """
    present = [_category_text(v) for v in values if v is not None]
    counts = dict.fromkeys(categories, 0)
    for value in present:
        if value in counts:
            counts[value] += 1
    total = len(present)
    return {
        "kind": kind,
        "count": total,
        "missing_rate": float(1.0 - total / len(values)) if len(values) else 0.0,
        "frequencies": {c: (n / total if total else 0.0) for c, n in counts.items()},
    }


def _category_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def build_reference(
    spec: FeatureSpec,
    rows: Sequence[Mapping[str, Any]],
    scores: np.ndarray | None = None,
    bins: int = DEFAULT_BINS,
) -> dict[str, Any]:
    """Reference statistics of feature dicts ``rows`` and (holdout) ``scores``."""
    features: dict[str, Any] = {}
    for feature in spec.features:
        column = [row.get(feature.name) for row in rows]
        if feature.kind is FeatureKind.NUMERIC:
            numbers = np.array([np.nan if v is None else v for v in column], dtype=np.float64)
            features[feature.name] = numeric_reference(numbers, bins)
        elif feature.kind is FeatureKind.CATEGORICAL:
            features[feature.name] = categorical_reference(column, feature.categories)
        else:
            features[feature.name] = categorical_reference(column, ["false", "true"], "boolean")
    score = None
    if scores is not None:
        score = numeric_reference(np.asarray(scores, dtype=np.float64), bins)
        score["kind"] = "score"
        del score["missing_rate"]
    return {
        "version": REFERENCE_VERSION,
        "rows": len(rows),
        "bins": bins,
        "features": features,
        "score": score,
    }


# --- which features a reference covers ----------------------------------------------------


def has_statistics(feature: Feature, stats: Any) -> bool:
    """Whether ``stats`` describe ``feature``'s distribution: a histogram for a number,
    frequencies for a category or a boolean (what a drift monitor and a sample need).

    >>> numeric = Feature(name="x", kind="numeric")
    >>> has_statistics(numeric, numeric_reference(np.arange(5.0))), has_statistics(numeric, {})
    (True, False)
    >>> has_statistics(numeric, {"mean": 0.0})
    False
    """
    if not isinstance(stats, Mapping) or not stats.get("count"):
        return False
    if feature.kind is FeatureKind.NUMERIC:
        return bool(stats.get("proportions")) and isinstance(stats.get("edges"), list)
    return isinstance(stats.get("frequencies"), Mapping) and bool(stats["frequencies"])


def features_without_statistics(manifest: ModelManifest) -> list[str]:
    """The manifest's features its reference holds no distribution for, in spec order."""
    root = manifest.reference.get("features")
    stats = root if isinstance(root, Mapping) else {}
    return [
        f.name for f in manifest.feature_spec.features if not has_statistics(f, stats.get(f.name))
    ]


# --- rows drawn from the reference ---------------------------------------------------------


def reference_sample(manifest: ModelManifest, size: int, seed: int = 0) -> list[dict[str, Any]]:
    """Feature dicts drawn from the manifest's reference statistics, valid for its spec.

    Numeric values are drawn bin by bin from the reference's quantile bins (uniform inside
    a bin, within the observed range), categories by their frequencies; a feature without
    statistics gets its imputation value spread by one unit. Nullable features are null at
    their reference missing rate.
    """
    rng = np.random.default_rng(seed)
    stats_root = manifest.reference.get("features")
    stats = stats_root if isinstance(stats_root, Mapping) else {}
    columns = {
        feature.name: _draw(feature, stats.get(feature.name) or {}, size, rng)
        for feature in manifest.feature_spec.features
    }
    return [{name: values[i] for name, values in columns.items()} for i in range(size)]


def _draw(
    feature: Feature, stats: Mapping[str, Any], size: int, rng: np.random.Generator
) -> list[Any]:
    if feature.kind is FeatureKind.NUMERIC:
        values: list[Any] = _draw_numeric(feature, stats, size, rng).tolist()
        if feature.nullable:
            missing = rng.random(size) < float(stats.get("missing_rate") or 0.0)
            values = [None if m else v for v, m in zip(values, missing.tolist(), strict=True)]
        return values
    options = feature.categories if feature.kind is FeatureKind.CATEGORICAL else ["false", "true"]
    frequencies = stats.get("frequencies") or {}
    weights = np.array([float(frequencies.get(o, 0.0)) for o in options])
    weights = (
        weights / weights.sum() if weights.sum() > 0 else np.full(len(options), 1 / len(options))
    )
    picked = rng.choice(len(options), size=size, p=weights)
    if feature.kind is FeatureKind.BOOLEAN:
        return [bool(i) for i in picked.tolist()]
    return [options[i] for i in picked.tolist()]


def _draw_numeric(
    feature: Feature, stats: Mapping[str, Any], size: int, rng: np.random.Generator
) -> np.ndarray:
    low, high = stats.get("min"), stats.get("max")
    proportions = stats.get("proportions") or []
    if low is None or high is None or not proportions:
        centre = stats.get("mean")
        centre = feature.impute if centre is None else centre
        spread = stats.get("std") or 1.0
        return rng.normal(float(centre), float(spread), size)
    bounds = np.array([low, *stats.get("edges", []), high], dtype=np.float64)
    weights = np.asarray(proportions, dtype=np.float64)
    weights = weights / weights.sum()
    bins = rng.choice(len(weights), size=size, p=weights)
    return rng.uniform(bounds[bins], np.maximum(bounds[bins], bounds[bins + 1]))
