"""``scorer train`` on a CSV file: --adverse, --delimiter, --feature, trimming; one-line errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from models.registry import Registry
from streams.cli import main

ROWS = 200
COMMON = ["--model", "logistic", "--name", "loans"]


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "registry"
    monkeypatch.setenv("SCORER_REGISTRY", str(root))
    return root


def _csv(
    tmp_path: Path,
    adverse: str = "1",
    other: str = "0",
    *,
    sep: str = ",",
    identifier: bool = False,
    pad: str = "",
) -> Path:
    rng = random.Random(4)
    header = ["application_id"] * identifier + ["income", "region", "outcome"]
    lines = [sep.join(header)]
    for i in range(ROWS):
        income = round(rng.uniform(10, 100), 1)
        region = f"{pad}{rng.choice(['north', 'south'])}{pad}"
        bad = rng.random() < (0.6 if income < 30 else 0.05)
        cells = [str(5000 + i)] * identifier + [str(income), region, adverse if bad else other]
        lines.append(sep.join(cells))
    path = tmp_path / "loans.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _train(path: Path, *flags: str) -> int:
    return main(["train", "--dataset", str(path), "--target", "outcome", *COMMON, *flags])


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    """The one error line of a failed run (progress lines aside), with no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("scorer: error:")]
    assert len(errors) == 1, err
    return errors[0]


def test_a_good_bad_target_trains_and_registers_with_adverse_bad(
    tmp_path: Path, registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(_csv(tmp_path, "bad", "good"), "--adverse", "bad", "--register", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert "label 1 = adverse (outcome = 'bad')" in summary["description"]
    assert 0.05 < summary["metrics"]["base_rate"] < 0.4  # the defaulters, not the good payers
    manifest = Registry(registry).manifest("loans")
    assert manifest.training.params["dataset"]["adverse"] == "bad"


def test_a_good_bad_target_without_adverse_is_refused_naming_its_values(
    tmp_path: Path, registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(_csv(tmp_path, "bad", "good")) == 1
    error = _error(capsys)
    assert "target column 'outcome' holds" in error and "'good'" in error and "'bad'" in error
    assert "--adverse VALUE" in error
    assert not registry.exists()


def test_a_one_two_target_needs_adverse(
    tmp_path: Path, registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _csv(tmp_path, "2", "1")
    assert _train(path) == 1
    assert "not 0/1" in _error(capsys)
    assert _train(path, "--adverse", "2", "--json") == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["base_rate"] < 0.4


def test_an_adverse_value_missing_from_the_target_is_refused(
    tmp_path: Path, registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(_csv(tmp_path, "bad", "good"), "--adverse", "1") == 1
    assert "--adverse '1' is not a value of target column 'outcome'" in _error(capsys)


def test_a_target_with_three_values_is_refused_naming_them(
    tmp_path: Path, registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "three.csv"
    path.write_text("income,outcome\n" + "".join(f"{i},{i % 3}\n" for i in range(30)))
    assert _train(path) == 1
    assert "has 3 values ('0', '1', '2')" in _error(capsys)


def test_delimiter_semicolon_and_tab(
    tmp_path: Path, registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    semicolons = _csv(tmp_path, sep=";")
    assert _train(semicolons) == 1
    assert "no column 'outcome'" in _error(capsys)
    assert _train(semicolons, "--delimiter", ";", "--json") == 0
    assert json.loads(capsys.readouterr().out)["columns"] == 3
    assert _train(_csv(tmp_path, sep="\t"), "--delimiter", "\\t") == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as usage:
        _train(semicolons, "--delimiter", ";;")
    assert usage.value.code == 2
    assert "one character expected" in capsys.readouterr().err


def test_an_identifier_column_is_refused_until_kept_with_feature(
    tmp_path: Path, registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _csv(tmp_path, identifier=True)
    assert _train(path) == 1
    error = _error(capsys)
    assert "'application_id' look like identifiers" in error
    assert "drop them from the file" in error and "--feature application_id" in error
    assert _train(path, "--feature", "application_id", "--register") == 0
    assert "application_id" in Registry(registry).manifest("loans").feature_spec.names
    assert _train(path, "--context", "application_id", "--register") == 0
    assert "application_id" not in Registry(registry).manifest("loans").feature_spec.names


def test_spaces_around_categories_are_trimmed(
    tmp_path: Path, registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(_csv(tmp_path, pad="  "), "--register") == 0
    spec = Registry(registry).manifest("loans").feature_spec
    assert spec.features[1].categories == ["north", "south"]
    batch = spec.vectorise(
        [{"income": 50.0, "region": "north"}, {"income": 50.0, "region": " south"}]
    )
    assert batch.rejects == []


def test_csv_flags_are_refused_with_agrawal(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--dataset", "agrawal", *COMMON, "--adverse", "bad"]) == 1
    assert "apply to CSV datasets only" in _error(capsys)
