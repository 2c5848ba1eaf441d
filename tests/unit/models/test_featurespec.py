"""The vectoriser turns valid events into rows and each invalid event into a named reject."""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest

from models.featurespec import _FEW_ROWS, Feature, FeatureSpec
from schemas.contracts import RejectReason

SPEC = FeatureSpec(
    features=[
        Feature(name="income", kind="numeric"),
        Feature(name="debt", kind="numeric", nullable=True, impute=3.5),
        Feature(name="region", kind="categorical", categories=["n", "s", "7"]),
        Feature(name="owner", kind="boolean"),
    ]
)
GOOD = {"income": 10, "debt": 2.5, "region": "s", "owner": True}


def test_columns_and_grouping() -> None:
    assert SPEC.columns == [
        "income",
        "debt",
        "debt__missing",
        "region=n",
        "region=s",
        "region=7",
        "owner",
    ]
    assert SPEC.column_feature.tolist() == [0, 1, 1, 2, 2, 2, 3]
    contributions = np.arange(7.0).reshape(1, 7)
    assert (contributions @ SPEC.grouping).tolist() == [[0.0, 3.0, 12.0, 6.0]]


def test_valid_rows() -> None:
    batch = SPEC.vectorise([GOOD, {**GOOD, "debt": None, "region": 7, "owner": False}])
    assert batch.rows == [0, 1] and not batch.rejects
    assert batch.X.tolist() == [
        [10.0, 2.5, 0.0, 0.0, 1.0, 0.0, 1.0],
        [10.0, 3.5, 1.0, 0.0, 0.0, 1.0, 0.0],
    ]


@pytest.mark.parametrize(
    ("change", "reason", "detail"),
    [
        ({"income": None}, RejectReason.NULL_NOT_ALLOWED, "'income' may not be null"),
        ({"income": math.nan}, RejectReason.NON_FINITE, "'income': nan is not finite"),
        ({"income": math.inf}, RejectReason.NON_FINITE, "not finite"),
        ({"income": True}, RejectReason.WRONG_TYPE, "expected a number, got bool"),
        ({"income": "10"}, RejectReason.WRONG_TYPE, "expected a number, got str"),
        ({"region": "w"}, RejectReason.UNKNOWN_CATEGORY, "unknown category 'w'"),
        ({"region": 1.0}, RejectReason.WRONG_TYPE, "expected a category"),
        ({"region": None}, RejectReason.WRONG_TYPE, "got NoneType"),
        ({"owner": 1}, RejectReason.WRONG_TYPE, "expected a boolean, got int"),
        ({"extra": 1}, RejectReason.UNKNOWN_FEATURE, "['extra']"),
    ],
)
def test_each_invalid_event_is_rejected_alone(
    change: dict[str, object], reason: RejectReason, detail: str
) -> None:
    bad = {**GOOD, **change}
    batch = SPEC.vectorise([GOOD, bad, GOOD])
    assert batch.rows == [0, 2]
    assert len(batch.rejects) == 1
    reject = batch.rejects[0]
    assert reject.index == 1 and reject.reason is reason and detail in reject.detail


def test_missing_feature() -> None:
    batch = SPEC.vectorise([{k: v for k, v in GOOD.items() if k != "owner"}])
    assert batch.X.shape == (0, 7)
    assert batch.rejects[0].reason is RejectReason.MISSING_FEATURE
    assert "['owner']" in batch.rejects[0].detail


@pytest.mark.parametrize(
    "features",
    [
        [{"name": "a", "kind": "categorical"}],
        [{"name": "a", "kind": "numeric", "categories": ["x"]}],
        [{"name": "a", "kind": "numeric"}, {"name": "a", "kind": "boolean"}],
        [{"name": "a", "kind": "boolean", "nullable": True}],
    ],
)
def test_invalid_specs(features: list[dict[str, object]]) -> None:
    with pytest.raises(ValueError):
        FeatureSpec.model_validate({"features": features})


def test_a_few_events_vectorise_as_a_large_batch_does() -> None:
    """Up to eight events are tried row by row; the column path decides whenever a value
    is not plainly valid. Either way, every event gets the same row or the same reject."""
    cases = [
        GOOD,
        {**GOOD, "debt": None, "region": 7, "owner": False},
        {**GOOD, "income": 2**60, "region": " n "},
        {**GOOD, "income": -0.0, "debt": 1e308},
        {**GOOD, "income": True},
        {**GOOD, "region": "w"},
        {**GOOD, "debt": math.nan},
        {k: v for k, v in GOOD.items() if k != "debt"},
    ]
    large = SPEC.vectorise(cases * 3)
    for index, case in enumerate(cases):
        alone = SPEC.vectorise([case])
        if index in large.rows:
            assert alone.rows == [0] and not alone.rejects
            assert alone.X.tolist() == [large.X[large.rows.index(index)].tolist()]
        else:
            expected = next(r for r in large.rejects if r.index == index)
            assert alone.rows == [] and alone.X.shape == (0, len(SPEC.columns))
            assert (alone.rejects[0].reason, alone.rejects[0].detail) == (
                expected.reason,
                expected.detail,
            )


@pytest.mark.parametrize(
    "odd",
    [
        None,  # every event a dict with the spec's features: values read in one pass
        {k: v for k, v in GOOD.items() if k != "owner"} | {"extra": 1},  # as many keys
        MappingProxyType(GOOD),  # a mapping that is not a dict
        {**GOOD, "region": " n "},  # a category found only once trimmed
        {**GOOD, "region": "w"},
    ],
)
def test_a_large_batch_gives_each_event_its_row_or_reject_as_alone(odd: object) -> None:
    regions: list[object] = ["n", "s", "7", 7]
    events: list[Any] = [{**GOOD, "region": regions[i % 4], "income": i} for i in range(40)]
    if odd is not None:
        events[17] = odd
    large = SPEC.vectorise(events)
    assert sorted([*large.rows, *(r.index for r in large.rejects)]) == list(range(40))
    for index, event in enumerate(events):
        alone = SPEC.vectorise([event] * (_FEW_ROWS + 1))  # the column path, as the batch
        if index in large.rows:
            assert not alone.rejects
            assert alone.X[0].tolist() == large.X[large.rows.index(index)].tolist()
        else:
            (expected,) = (r for r in large.rejects if r.index == index)
            assert (alone.rejects[0].reason, alone.rejects[0].detail) == (
                expected.reason,
                expected.detail,
            )
