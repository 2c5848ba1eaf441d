"""The synthetic model of the monitoring tests (:mod:`tests.support.synthetic`) is what it says."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.synthetic import SyntheticModel, design_matrix, draw, feature_rows


def test_design_matrix_matches_the_vectoriser(synthetic: SyntheticModel) -> None:
    d = draw(np.random.default_rng(1), 500)
    vectorised = synthetic.spec.vectorise(feature_rows(synthetic.spec, d))
    assert not vectorised.rejects
    np.testing.assert_array_equal(design_matrix(synthetic.spec, d), vectorised.X)


def test_reference_has_twenty_features_with_their_missing_rates(synthetic: SyntheticModel) -> None:
    features = synthetic.manifest.reference["features"]
    assert len(features) == 20
    assert features["n_nullable"]["missing_rate"] == pytest.approx(0.05, abs=0.01)
    assert features["n_nullable_skew"]["missing_rate"] == pytest.approx(0.2, abs=0.01)
    assert len(features["n_normal"]["edges"]) == 9
    assert len(features["n_poisson"]["edges"]) < 9  # ties merge deciles
    assert synthetic.manifest.reference["score"]["count"] == 5_000
