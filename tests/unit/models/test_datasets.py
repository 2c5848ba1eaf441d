"""Datasets: the Agrawal generator, its event stream, CSV loading and the data hash."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from models.datasets import (
    AGE_BANDS,
    agrawal,
    agrawal_events,
    agrawal_stream,
    data_sha256,
    from_csv,
)
from models.featurespec import FeatureKind
from schemas.contracts import ScoringEvent
from schemas.errors import ContractError, ScorerError

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def test_agrawal_features_match_the_spec_and_age_is_context_only() -> None:
    data = agrawal(rows=300, seed=3)
    assert len(data) == 300
    assert data.spec.names == [
        "salary",
        "commission",
        "hvalue",
        "hyears",
        "loan",
        "elevel",
        "car",
        "zipcode",
    ]
    assert not any("age" in column for column in data.spec.columns)
    assert all(row.keys() == set(data.spec.names) for row in data.features)
    assert {row["age_band"] for row in data.context} == set(AGE_BANDS)
    assert data.context_attributes == ["age_band"]
    assert all(type(row["car"]) is int for row in data.features)
    batch = data.spec.vectorise(data.features)
    assert batch.rejects == [] and batch.X.shape == (300, len(data.spec.columns))
    assert set(data.reason_texts) == set(data.spec.names)


def test_agrawal_label_one_is_the_adverse_outcome_of_function_8() -> None:
    # Function 8: adverse when disposable income does not cover the loan.
    data = agrawal(rows=500, seed=5, classification_function=8, label_noise=0.0)
    for row, label in zip(data.features, data.labels.tolist(), strict=True):
        disposable = (
            2 * (row["salary"] + row["commission"]) / 3
            - 5000 * row["elevel"]
            - row["loan"] / 5
            - 10000
        )
        assert label == (0 if disposable > 1 else 1)


def test_label_noise_flips_about_that_share_and_keeps_features() -> None:
    clean = agrawal(rows=4000, seed=11, label_noise=0.0)
    noisy = agrawal(rows=4000, seed=11, label_noise=0.1)
    assert clean.features == noisy.features
    flipped = float(np.mean(clean.labels != noisy.labels))
    assert 0.08 < flipped < 0.12


def test_same_seed_same_hash_other_seed_other_hash() -> None:
    a, b, c = agrawal(200, seed=1), agrawal(200, seed=1), agrawal(200, seed=2)
    assert data_sha256(a) == data_sha256(b) != data_sha256(c)
    b.labels[0] = 1 - b.labels[0]
    assert data_sha256(a) != data_sha256(b)


def test_invalid_generator_parameters_are_scorer_errors() -> None:
    with pytest.raises(ScorerError, match="classification_function"):
        agrawal(10, seed=1, classification_function=12)
    with pytest.raises(ScorerError, match="rows"):
        agrawal(0, seed=1)


def test_events_satisfy_the_scoring_event_contract() -> None:
    events = list(agrawal_events(50, seed=4, start=T0, run_id="run"))
    assert [e["event_id"] for e in events] == [f"run-{i}" for i in range(50)]
    for event in events:
        parsed = ScoringEvent.model_validate(event)
        assert parsed.event_time.tzinfo is not None
        assert parsed.context["age_band"] in AGE_BANDS
    assert events[1]["event_time"] == "2024-05-01T00:00:01Z"
    # the first events of the stream are the first rows of the dataset with the same seed
    assert [e["features"] for e in events] == agrawal(50, seed=4).features


def test_event_ids_differ_between_runs_unless_the_run_id_is_given() -> None:
    first = next(agrawal_events(1, seed=1))["event_id"]
    second = next(agrawal_events(1, seed=1))["event_id"]
    assert first != second


def _function_6(features: dict, loan_factor: float) -> int:
    """Agrawal's function 6 (1 = adverse), on the loan before the drift's shift."""
    income = 2 * (features["salary"] + features["commission"]) / 3
    return 0 if income - features["loan"] / loan_factor / 5 - 20000 > 1 else 1


def test_drift_switches_the_concept_and_shifts_the_feature() -> None:
    n, at = 4000, 2000
    stream = list(
        agrawal_stream(n, seed=2, drift_at=at, drift_feature="loan", drift_factor=1.5, start=T0)
    )
    loans = np.array([s.event["features"]["loan"] for s in stream])
    assert loans[at:].mean() / loans[:at].mean() == pytest.approx(1.5, rel=0.08)
    assert loans[:at].max() <= 500_000 < loans[at:].max()
    # after the drift, labels follow function 6 (up to the 5% label noise)
    agree = [s.label == _function_6(s.event["features"], 1.5) for s in stream[at:]]
    assert 0.9 < np.mean(agree) < 1.0


def test_unknown_drift_feature_is_refused() -> None:
    with pytest.raises(ScorerError, match="drift_feature"):
        next(agrawal_events(1, drift_at=0, drift_feature="car"))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_infers_feature_kinds_and_keeps_context_apart(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "income,region,owner,debt,sex,y\n"
        "10.5,north,true,1,f,0\n"
        "20,south,false,,m,1\n"
        "30,north,TRUE,NA,f,1\n"
        "\n",
    )
    data = from_csv(path, "y", ["sex"])
    kinds = {f.name: (f.kind, f.nullable) for f in data.spec.features}
    assert kinds == {
        "income": (FeatureKind.NUMERIC, False),
        "region": (FeatureKind.CATEGORICAL, False),
        "owner": (FeatureKind.BOOLEAN, False),
        "debt": (FeatureKind.NUMERIC, True),
    }
    assert data.spec.features[1].categories == ["north", "south"]
    assert data.features[1] == {"income": 20.0, "region": "south", "owner": False, "debt": None}
    assert data.labels.tolist() == [0, 1, 1]
    assert data.context == [{"sex": "f"}, {"sex": "m"}, {"sex": "f"}]
    assert data.name == "data"
    batch = data.spec.vectorise(data.features)
    assert batch.rejects == []
    assert batch.X[1, data.spec.columns.index("debt__missing")] == 1.0


@pytest.mark.parametrize("bad", ["yes", "2", "", "0.5"])
def test_csv_non_binary_target_names_the_line(tmp_path: Path, bad: str) -> None:
    path = _write(tmp_path, f"x,y\n1,0\n2,1\n3,{bad}\n")
    with pytest.raises(ContractError, match=r"line 4: target column 'y' (has 3 values|is empty)"):
        from_csv(path, "y")


def test_csv_unknown_columns_and_missing_files_fail_clearly(tmp_path: Path) -> None:
    path = _write(tmp_path, "x,y\n1,0\n")
    with pytest.raises(ContractError, match=r"no column 'target'; columns are \['x', 'y'\]"):
        from_csv(path, "target")
    with pytest.raises(ContractError, match="no column 'sex'"):
        from_csv(path, "y", ["sex"])
    with pytest.raises(ScorerError, match="dataset file not found"):
        from_csv(tmp_path / "absent.csv", "y")


def test_csv_ragged_rows_and_empty_files_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="line 3 has 3 fields; the header has 2"):
        from_csv(_write(tmp_path, "x,y\n1,0\n2,1,9\n"), "y")
    with pytest.raises(ContractError, match="no data rows"):
        from_csv(_write(tmp_path, "x,y\n"), "y")
    with pytest.raises(ContractError, match="empty file"):
        from_csv(_write(tmp_path, ""), "y")
