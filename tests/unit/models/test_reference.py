"""Reference statistics: bins, proportions, categorical frequencies, serialisability."""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import pytest

from models.datasets import agrawal
from models.featurespec import Feature, FeatureKind, FeatureSpec
from models.reference import (
    bin_index,
    bin_proportions,
    build_reference,
    numeric_reference,
    quantile_edges,
)


@pytest.fixture(scope="module")
def reference() -> dict:
    data = agrawal(rows=2000, seed=9)
    scores = np.random.default_rng(0).beta(2, 5, size=500)
    return build_reference(data.spec, data.features, scores)


def test_numeric_bins_are_monotone_and_proportions_sum_to_one(reference: dict) -> None:
    numeric = [s for s in reference["features"].values() if s["kind"] == "numeric"]
    assert len(numeric) == 5
    for stats in [*numeric, reference["score"]]:
        edges = stats["edges"]
        assert all(a < b for a, b in itertools.pairwise(edges))
        assert len(stats["proportions"]) == len(edges) + 1
        assert sum(stats["proportions"]) == pytest.approx(1.0)
        assert stats["min"] < edges[0] <= edges[-1] <= stats["max"]
        assert min(stats["proportions"]) > 0.0  # no empty bins on the training data


def test_continuous_features_get_ten_even_bins(reference: dict) -> None:
    salary = reference["features"]["salary"]
    assert len(salary["edges"]) == 9
    assert salary["proportions"] == pytest.approx([0.1] * 10, abs=0.002)


def test_heavily_tied_feature_gets_fewer_bins(reference: dict) -> None:
    # commission is exactly 0 for every salary of at least 75k (a little over half the rows)
    commission = reference["features"]["commission"]
    assert commission["min"] == 0.0
    assert len(commission["edges"]) < 9
    assert commission["proportions"][0] > 0.5


def test_categorical_frequencies_cover_every_category(reference: dict) -> None:
    car = reference["features"]["car"]
    assert car["kind"] == "categorical"
    assert list(car["frequencies"]) == [str(c) for c in range(1, 21)]
    assert sum(car["frequencies"].values()) == pytest.approx(1.0)
    assert car["missing_rate"] == 0.0


def test_reference_is_json_serialisable(reference: dict) -> None:
    again = json.loads(json.dumps(reference, allow_nan=False))
    assert again["version"] == 1 and again["rows"] == 2000 and again["bins"] == 10
    assert again["score"]["kind"] == "score" and "missing_rate" not in again["score"]


def test_missing_values_are_counted_not_binned() -> None:
    spec = FeatureSpec(
        features=[
            Feature(name="x", kind=FeatureKind.NUMERIC, nullable=True),
            Feature(name="flag", kind=FeatureKind.BOOLEAN),
        ]
    )
    rows: list[dict[str, Any]] = [
        {"x": 1.0, "flag": True},
        {"x": None, "flag": False},
        {"x": 3.0, "flag": True},
    ]
    ref = build_reference(spec, rows)
    x = ref["features"]["x"]
    assert x["count"] == 2 and x["missing_rate"] == pytest.approx(1 / 3)
    assert x["mean"] == 2.0 and sum(x["proportions"]) == pytest.approx(1.0)
    assert ref["features"]["flag"]["frequencies"] == {
        "false": pytest.approx(1 / 3),
        "true": pytest.approx(2 / 3),
    }
    assert ref["score"] is None


def test_bins_are_open_ended_and_left_closed() -> None:
    edges = [1.0, 2.0]
    values = np.array([-100.0, 0.999, 1.0, 1.5, 2.0, 100.0])
    assert bin_index(edges, values).tolist() == [0, 0, 1, 1, 2, 2]
    assert bin_proportions(edges, values) == pytest.approx([2 / 6, 2 / 6, 2 / 6])


def test_degenerate_columns() -> None:
    assert quantile_edges(np.array([5.0] * 20)) == []
    assert numeric_reference(np.array([5.0] * 20))["proportions"] == [1.0]
    empty = numeric_reference(np.array([np.nan, np.nan]))
    assert empty["count"] == 0 and empty["missing_rate"] == 1.0
    assert empty["mean"] is None and empty["proportions"] == []
