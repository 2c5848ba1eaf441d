"""The served raw output: the library's arithmetic without its per-call checks, kept only
where it gives the library's answer on the version's reference rows."""

from __future__ import annotations

import numpy as np
import pytest

from models import scoring_model
from models.datasets import agrawal_events
from models.scoring_model import ScoringModel
from tests.support.models import Registered


@pytest.mark.parametrize("fixture", ["registered_logistic", "registered_gbt"])
def test_the_compiled_raw_output_is_the_librarys(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    registered: Registered = request.getfixturevalue(fixture)
    model: ScoringModel = registered.model
    events = list(agrawal_events(500, seed=31))
    X = model.spec.vectorise([e["features"] for e in events]).X
    library = np.asarray(model.estimator.decision_function(X), dtype=np.float64)
    assert model.raw_output.__qualname__ != scoring_model._sklearn_raw(model.estimator).__qualname__
    compiled = model.raw_output(X)
    assert np.allclose(compiled, library, rtol=0.0, atol=1e-12)
    for row in range(0, 500, 50):  # an event's output does not depend on its batch
        assert model.raw_output(X[row : row + 1])[0] == compiled[row]


def test_a_compiled_output_that_disagrees_is_replaced_by_the_library(
    registered_logistic: Registered,
) -> None:
    manifest, estimator = registered_logistic.manifest, registered_logistic.model.estimator
    wrong = scoring_model._checked(manifest, estimator, lambda X: np.zeros(len(X)))
    failing = scoring_model._checked(manifest, estimator, lambda X: 1 / 0)
    X = manifest.feature_spec.vectorise([e["features"] for e in agrawal_events(5, seed=3)]).X
    expected = estimator.decision_function(X)
    assert np.array_equal(wrong(X), expected)
    assert np.array_equal(failing(X), expected)


def test_other_linear_shapes_are_left_to_the_library(registered_logistic: Registered) -> None:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    final = registered_logistic.model.estimator.steps[-1][1]
    assert scoring_model._linear_raw(final) is not None  # a bare logistic regression
    assert scoring_model._linear_raw(Pipeline([("s", MinMaxScaler()), ("m", final)])) is None
    no_mean = StandardScaler(with_mean=False).fit(np.ones((3, final.coef_.shape[1])))
    assert scoring_model._linear_raw(Pipeline([("s", no_mean), ("m", final)])) is None
