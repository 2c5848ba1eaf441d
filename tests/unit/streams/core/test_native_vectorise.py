"""streams.core._native.dense_rows: the compiled vectoriser against the spec's own.

Whenever ``dense_rows`` takes a batch, its matrix must equal ``FeatureSpec.vectorise``'s bit
for bit with no reject; any value it is not sure of must make it decline, so the spec's own
vectoriser (and its reject reasons) decides. A malformed layout or buffer must raise.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import numpy as np
import pytest

from models.datasets import agrawal_events
from models.featurespec import Feature, FeatureSpec
from streams.core._native import dense_rows
from streams.core.scoring import _vectorise, score_batch
from tests.support.models import Registered

SPEC = FeatureSpec(
    features=[
        Feature(name="income", kind="numeric", nullable=True, impute=50.5),
        Feature(name="debt", kind="numeric"),
        Feature(name="owner", kind="boolean"),
        Feature(name="region", kind="categorical", categories=["north", " south ", "east"]),
        Feature(name="grade", kind="categorical", categories=["1", "2", "10"]),
    ]
)


class Text(str):
    pass


class Number(float):
    pass


class Mapping(dict):
    pass


def ordinary(seed: int, count: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "income": rng.choice([None, rng.uniform(-1e6, 1e6), rng.randint(-(2**53), 2**53)]),
            "debt": rng.choice([-0.0, 0.0, rng.random(), rng.randint(-5, 5)]),
            "owner": rng.random() < 0.5,
            "region": rng.choice(["north", "south", " south ", "east"]),
            "grade": rng.choice(["1", "2", "10", 1, 2, 10]),
        }
        for _ in range(count)
    ]


def compiled(spec: FeatureSpec, events: list[Any]) -> np.ndarray | None:
    X = np.zeros((len(events), len(spec.columns)))
    return X if dense_rows(events, spec.layout, X) else None


def assert_same_as_the_spec(spec: FeatureSpec, events: list[Any]) -> None:
    X = compiled(spec, events)
    assert X is not None
    reference = spec.vectorise(events)
    assert reference.rejects == []
    assert reference.rows == list(range(len(events)))
    assert X.tobytes() == reference.X.tobytes()


def test_the_layout_names_each_feature_kind_and_column() -> None:
    layout = SPEC.layout
    assert [entry[:4] for entry in layout] == [
        ("income", "nullable", 0, 50.5),
        ("debt", "numeric", 2, 0.0),
        ("owner", "boolean", 3, 0.0),
        ("region", "categorical", 4, 0.0),
        ("grade", "categorical", 7, 0.0),
    ]
    assert [entry[4] for entry in layout[:3]] == [None, None, None]
    assert layout[3][4] == {"north": 4, " south ": 5, "south": 5, "east": 6}
    assert layout[4][4] == {"1": 7, 1: 7, "2": 8, 2: 8, "10": 9, 10: 9}


@pytest.mark.parametrize("count", [1, 2, 1000])
def test_ordinary_batches_equal_the_specs_matrix(count: int) -> None:
    assert_same_as_the_spec(SPEC, ordinary(seed=count, count=count))


def test_keys_in_another_order_are_found_by_name() -> None:
    events = ordinary(seed=7, count=50)
    shuffled = [dict(reversed(list(e.items()))) for e in events]
    assert_same_as_the_spec(SPEC, shuffled)
    X = compiled(SPEC, shuffled)
    assert X is not None and X.tobytes() == compiled(SPEC, events).tobytes()


def test_a_key_of_a_str_subclass_is_found_by_name() -> None:
    events = ordinary(seed=8, count=5)
    events[2][Text("debt")] = events[2].pop("debt")
    assert_same_as_the_spec(SPEC, events)


def test_an_empty_batch_is_an_empty_matrix() -> None:
    X = compiled(SPEC, [])
    assert X is not None and X.shape == (0, len(SPEC.columns))


def test_agrawal_events_equal_the_specs_matrix(registered_logistic: Registered) -> None:
    spec = registered_logistic.model.spec
    features = [e["features"] for e in agrawal_events(500, seed=3)]
    assert_same_as_the_spec(spec, features)


HOSTILE: list[tuple[str, Any]] = [
    ("income", True),
    ("income", float("nan")),
    ("income", float("inf")),
    ("income", 2**53 + 1),
    ("income", -(2**53) - 1),
    ("income", 10**400),
    ("income", "12"),
    ("debt", None),
    ("debt", float("-inf")),
    ("debt", [1.0]),
    ("owner", 1),
    ("owner", None),
    ("owner", np.bool_(True)),
    ("region", "North"),
    ("region", "  north  "),
    ("region", 1.0),
    ("region", None),
    ("region", True),
    ("grade", 1.0),
    ("grade", True),
    ("grade", 3),
    ("grade", " 1 "),
    ("grade", ["1"]),
]


HOSTILE += [("region", Text("north")), ("debt", Number(1.0)), ("income", np.float64(1.0))]


@pytest.mark.parametrize(("name", "value"), HOSTILE, ids=[f"{n}={v!r}" for n, v in HOSTILE])
def test_a_value_it_is_not_sure_of_makes_it_decline(name: str, value: Any) -> None:
    events = ordinary(seed=11, count=20)
    events[13][name] = value
    assert compiled(SPEC, events) is None


@pytest.mark.parametrize(
    "change",
    [
        lambda e: e.pop("debt"),
        lambda e: e.update(extra=1.0),
        lambda e: e.update({1: 1.0}) or e.pop("debt"),
    ],
    ids=["missing", "extra", "non-str key"],
)
def test_a_missing_or_unknown_feature_makes_it_decline(change: Any) -> None:
    events = ordinary(seed=5, count=20)
    change(events[0])
    assert compiled(SPEC, events) is None


def test_anything_but_a_plain_dict_makes_it_decline() -> None:
    events: list[Any] = ordinary(seed=6, count=3)
    for other in (Mapping(events[1]), list(events[1].items()), None, "event"):
        batch = list(events)
        batch[1] = other
        assert compiled(SPEC, batch) is None


def test_whatever_it_takes_from_random_batches_equals_the_spec() -> None:
    """Random mixes of good and hostile values: a batch is taken only when it is valid."""
    rng = random.Random(2026)
    taken = declined = 0
    for seed in range(300):
        events = ordinary(seed, count=rng.randint(1, 8))
        if rng.random() < 0.5:
            name, value = rng.choice(HOSTILE)
            rng.choice(events)[name] = value
        X = compiled(SPEC, events)
        if X is None:
            declined += 1
            continue
        taken += 1
        reference = SPEC.vectorise(events)
        assert reference.rejects == [] and X.tobytes() == reference.X.tobytes()
    assert taken > 100 and declined > 100


def test_scoring_outcomes_are_the_specs_with_or_without_it(
    registered_gbt: Registered,
) -> None:
    model = registered_gbt.model
    events = list(agrawal_events(40, seed=9))
    bad = copy.deepcopy(events)
    bad[3]["features"]["salary"] = True
    bad[8]["features"].pop("loan")
    bad[9]["features"]["car"] = 99
    good, mixed = score_batch(model, events), score_batch(model, bad)
    assert good.rejects == [] and len(good.decisions) == 40
    assert [r.index for r in mixed.rejects] == [3, 8, 9]
    assert [d["event_id"] for d in mixed.decisions] == [
        e["event_id"] for i, e in enumerate(bad) if i not in (3, 8, 9)
    ]
    features = [e["features"] for e in events]
    fast, reference = _vectorise(model.spec, features), model.spec.vectorise(features)
    assert fast.X.tobytes() == reference.X.tobytes() and fast.rows == reference.rows


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ([("a", "numeric", 0, 0.0)], "expected 5 fields"),
        ([("a", "numeric", 3, 0.0, None)], "outside the matrix"),
        ([("a", "nullable", 2, 0.0, None)], "outside the matrix"),
        ([("a", "ordinal", 0, 0.0, None)], "unknown kind"),
        ([(1, "numeric", 0, 0.0, None)], "the name must be str"),
        ([("a", "categorical", 0, 0.0, None)], "needs a dict lookup"),
        ([("a", "categorical", 0, 0.0, {"x": 9})], "a lookup column is outside"),
        ([("a", "numeric", -1, 0.0, None)], "the column must be an int"),
    ],
)
def test_a_malformed_layout_raises(layout: list[tuple[Any, ...]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dense_rows([{"a": 1.0}], layout, np.zeros((1, 3)))


def test_a_wrong_buffer_raises() -> None:
    layout = [("a", "numeric", 0, 0.0, None)]
    with pytest.raises(ValueError, match="shape"):
        dense_rows([{"a": 1.0}], layout, np.zeros((2, 1)))
    with pytest.raises(ValueError, match="shape"):
        dense_rows([{"a": 1.0}], layout, np.zeros(1))
    with pytest.raises(ValueError, match="C-contiguous"):
        dense_rows([{"a": 1.0}] * 2, layout, np.zeros((2, 2))[:, :1])
    with pytest.raises((TypeError, BufferError, ValueError)):
        dense_rows([{"a": 1.0}], layout, np.zeros((1, 1), dtype=np.float32))
    readonly = np.zeros((1, 1))
    readonly.flags.writeable = False
    with pytest.raises((TypeError, BufferError, ValueError)):
        dense_rows([{"a": 1.0}], layout, readonly)
    with pytest.raises(TypeError):
        dense_rows([{"a": 1.0}], [["a", "numeric", 0, 0.0, None]], np.zeros((1, 1)))
