"""CSV training as a data scientist's file has it: the adverse value, identifiers, trimming."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from models.datasets import Dataset, from_csv
from models.featurespec import Feature, FeatureSpec
from models.policy import ADVERSE_DECISIONS, Policy
from models.training import train
from schemas.contracts import RejectReason
from schemas.errors import ContractError

ROWS = 300


def _applicants(seed: int = 3) -> list[tuple[float, str, bool]]:
    """(income, region, defaulted) rows: about a fifth default, mostly the low incomes."""
    rng = random.Random(seed)
    rows = []
    for _ in range(ROWS):
        income = round(rng.uniform(10, 100), 1)
        region = rng.choice(["north", "south", "east"])
        defaulted = rng.random() < (0.6 if income < 30 else 0.05)
        rows.append((income, region, defaulted))
    return rows


def _write(tmp_path: Path, lines: list[str], name: str = "loans.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _file(tmp_path: Path, adverse: str, other: str, name: str = "loans.csv") -> Path:
    lines = ["income,region,outcome"] + [
        f"{income},{region},{adverse if defaulted else other}"
        for income, region, defaulted in _applicants()
    ]
    return _write(tmp_path, lines, name)


def _decisions(data: Dataset, kind: str = "logistic") -> tuple[np.ndarray, dict[str, float]]:
    trained = train(data, kind, seed=1)  # type: ignore[arg-type]
    scores = trained.estimator.predict_proba(data.spec.vectorise(data.features).X)[:, 1]
    return Policy().decide(scores), trained.summary["metrics"]


def test_a_good_bad_target_trains_with_adverse_bad(tmp_path: Path) -> None:
    data = from_csv(_file(tmp_path, "bad", "good"), "outcome", adverse="bad")
    expected = [int(defaulted) for _, _, defaulted in _applicants()]
    assert data.labels.tolist() == expected
    assert data.params["adverse"] == "bad"
    assert "outcome = 'bad'" in data.description


def test_a_one_two_target_is_refused_without_adverse_and_accepted_with_it(tmp_path: Path) -> None:
    path = _file(tmp_path, "2", "1")
    with pytest.raises(ContractError, match=r"holds '1', '2', not 0/1: .*--adverse VALUE"):
        from_csv(path, "outcome")
    data = from_csv(path, "outcome", adverse="2")
    assert data.labels.tolist() == [int(d) for _, _, d in _applicants()]


def test_a_good_bad_target_without_adverse_names_the_values_found(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match=r"target column 'outcome' holds '(good|bad)', '"):
        from_csv(_file(tmp_path, "bad", "good"), "outcome")


def test_an_adverse_value_not_in_the_target_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match=r"--adverse 'yes' is not a value of target column"):
        from_csv(_file(tmp_path, "bad", "good"), "outcome", adverse="yes")


def test_a_target_with_more_than_two_values_names_them(tmp_path: Path) -> None:
    lines = ["income,outcome"] + [
        f"{i},{['a', 'b', 'c', 'd', 'e', 'f', 'g'][i % 7]}" for i in range(30)
    ]
    with pytest.raises(
        ContractError, match=r"line 4: .* has 7 values \('a', 'b', 'c', 'd', 'e' and 2 more\)"
    ):
        from_csv(_write(tmp_path, lines), "outcome", adverse="a")


def test_a_file_where_one_means_good_decides_like_the_recoded_file(tmp_path: Path) -> None:
    good_is_one = from_csv(_file(tmp_path, "0", "1", "good1.csv"), "outcome", adverse="0")
    recoded = from_csv(_file(tmp_path, "1", "0", "bad1.csv"), "outcome")
    assert good_is_one.labels.tolist() == recoded.labels.tolist()
    decisions, metrics = _decisions(good_is_one)
    recoded_decisions, recoded_metrics = _decisions(recoded)
    assert decisions.tolist() == recoded_decisions.tolist()
    assert metrics == recoded_metrics
    declined = np.isin(decisions, list(ADVERSE_DECISIONS)).mean()
    assert declined < 0.5  # about a fifth default: most applicants are not declined


def _with_id(tmp_path: Path, ids: list[str], column: str = "application_id") -> Path:
    lines = [f"{column},income,region,outcome"] + [
        f"{ident},{income},{region},{int(defaulted)}"
        for ident, (income, region, defaulted) in zip(ids, _applicants()[: len(ids)], strict=True)
    ]
    return _write(tmp_path, lines)


@pytest.mark.parametrize(
    ("column", "ids"),
    [
        ("application_id", [str(100_000 + 7 * i) for i in range(ROWS)]),
        ("row", [str(1 + i) for i in range(ROWS)]),
        ("ref", [f"APP-{i:05d}" for i in range(60)]),
    ],
)
def test_an_identifier_column_is_refused_unless_kept_with_feature(
    tmp_path: Path, column: str, ids: list[str]
) -> None:
    path = _with_id(tmp_path, ids, column)
    with pytest.raises(ContractError) as refused:
        from_csv(path, "outcome")
    message = str(refused.value)
    assert f"'{column}' look like identifiers" in message
    assert "drop them from the file" in message and f"--feature {column}" in message
    assert "\n" not in message
    kept = from_csv(path, "outcome", keep_features=[column])
    assert column in kept.spec.names
    as_context = from_csv(path, "outcome", [column])
    assert column not in as_context.spec.names
    # measurements are distinct too, but not identifiers: incomes, evenly spaced salaries
    assert from_csv(_file(tmp_path, "1", "0"), "outcome").spec.names == ["income", "region"]
    salaries = [str(40_000 + 97 * i) for i in range(ROWS)]
    assert "salary" in from_csv(_with_id(tmp_path, salaries, "salary"), "outcome").spec.names


def test_a_text_identifier_too_many_to_be_categories_is_still_refused(tmp_path: Path) -> None:
    path = _with_id(tmp_path, [f"APP-{i:05d}" for i in range(ROWS)], "ref")
    with pytest.raises(ContractError, match="'ref' look like identifiers"):
        from_csv(path, "outcome")
    with pytest.raises(ContractError, match=r"300 distinct text values .* name it a context"):
        from_csv(path, "outcome", keep_features=["ref"])


def test_category_values_are_trimmed_in_training_and_in_events(tmp_path: Path) -> None:
    lines = ["income,region,outcome"] + [
        f"{income}, {region} ,{int(defaulted)}" for income, region, defaulted in _applicants()
    ]
    data = from_csv(_write(tmp_path, lines), "outcome")
    region = data.spec.features[1]
    assert region.categories == ["east", "north", "south"]
    assert {row["region"] for row in data.features} == {"east", "north", "south"}
    events = [
        {"income": 20.0, "region": "north"},
        {"income": 20.0, "region": "  north "},
        {"income": 20.0, "region": "west"},
    ]
    batch = data.spec.vectorise(events)
    assert batch.rows == [0, 1]
    assert batch.X[0].tolist() == batch.X[1].tolist()
    assert [r.reason for r in batch.rejects] == [RejectReason.UNKNOWN_CATEGORY]
    train(data, "logistic", seed=1)  # the trimmed rows fit their own spec


def test_an_event_category_is_looked_up_trimmed() -> None:
    trimmed = FeatureSpec(
        features=[Feature(name="region", kind="categorical", categories=["north", "south"])]
    )
    batch = trimmed.vectorise([{"region": "  north "}, {"region": "south\t"}, {"region": "n"}])
    assert batch.rows == [0, 1]
    assert batch.X.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    # a model trained before categories were trimmed still finds its padded category
    padded = FeatureSpec(
        features=[Feature(name="region", kind="categorical", categories=[" north", " south"])]
    )
    batch = padded.vectorise([{"region": "north"}, {"region": " south"}])
    assert batch.rows == [0, 1] and batch.X.tolist() == [[1.0, 0.0], [0.0, 1.0]]
