"""Safe artifacts: hash-checked bytes, skops with an explicit trusted list, guarded pickles."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from river import linear_model as river_linear
from river import preprocessing as river_pre
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from models.artifacts import (
    SKOPS_TRUSTED_TYPES,
    load_artifact,
    save_artifact,
    skops_types,
    skops_untrusted_types,
)
from models.manifest import ArtifactInfo
from schemas.errors import ArtifactIntegrityError, RegistryError

RNG = np.random.default_rng(7)
X = RNG.normal(size=(120, 4))
Y = (X[:, 0] - X[:, 2] + RNG.normal(scale=0.5, size=120) > 0).astype(int)
RIVER_ROWS = [{f"x{j}": float(v) for j, v in enumerate(row)} for row in X]


def logistic_pipeline() -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(X, Y)


def gbt() -> GradientBoostingClassifier:
    return GradientBoostingClassifier(n_estimators=8, max_depth=2, random_state=0).fit(X, Y)


def river_logistic() -> Any:
    model = river_pre.StandardScaler() | river_linear.LogisticRegression()
    for row, label in zip(RIVER_ROWS, Y, strict=True):
        model.learn_one(row, bool(label))
    return model


def _info_for(data: bytes, name: str, fmt: str) -> ArtifactInfo:
    return ArtifactInfo.model_validate(
        {
            "file": name,
            "format": fmt,
            "sha256": hashlib.sha256(data).hexdigest(),
            "size_bytes": len(data),
        }
    )


@pytest.mark.parametrize(
    ("kind", "build", "fmt", "file"),
    [
        ("logistic", logistic_pipeline, "skops", "artifact.skops"),
        ("gbt", gbt, "skops", "artifact.skops"),
        ("river-logistic", river_logistic, "pickle", "artifact.pkl"),
    ],
)
def test_round_trip_predicts_the_same(tmp_path: Path, kind: str, build: Any, fmt: str, file: str):
    model = build()
    info = save_artifact(model, kind, tmp_path)
    data = (tmp_path / file).read_bytes()
    assert (info.file, info.format) == (file, fmt)
    assert info.size_bytes == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    loaded = load_artifact(tmp_path / file, info)
    assert type(loaded) is type(model)
    if fmt == "skops":
        np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    else:
        assert [loaded.predict_proba_one(r) for r in RIVER_ROWS[:20]] == [
            model.predict_proba_one(r) for r in RIVER_ROWS[:20]
        ]


def test_trusted_list_covers_what_skops_reports_for_our_models():
    for model in (logistic_pipeline(), gbt()):
        data = sio.dumps(model)
        assert set(sio.get_untrusted_types(data=data)) <= SKOPS_TRUSTED_TYPES
        assert skops_types(data) <= SKOPS_TRUSTED_TYPES
        assert skops_untrusted_types(data) == []
    assert "sklearn.tree._tree.Tree" in skops_types(sio.dumps(gbt()))


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, ArtifactInfo]:
    info = save_artifact(logistic_pipeline(), "logistic", tmp_path)
    path = tmp_path / info.file
    os.chmod(path, 0o644)
    return path, info


def test_flipped_byte_is_refused_with_both_digests(saved: tuple[Path, ArtifactInfo]):
    path, info = saved
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    actual = hashlib.sha256(bytes(data)).hexdigest()
    with pytest.raises(ArtifactIntegrityError, match="sha256 mismatch") as caught:
        load_artifact(path, info)
    assert f"expected {info.sha256}, got {actual}" in str(caught.value)


def test_truncated_artifact_is_refused_by_size(saved: tuple[Path, ArtifactInfo]):
    path, info = saved
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ArtifactIntegrityError) as caught:
        load_artifact(path, info)
    assert f"has {info.size_bytes - 10} bytes, manifest says {info.size_bytes}" in str(caught.value)


def test_missing_artifact_is_refused(saved: tuple[Path, ArtifactInfo]):
    path, info = saved
    path.unlink()
    with pytest.raises(ArtifactIntegrityError, match="artifact missing"):
        load_artifact(path, info)


def test_swapped_artifact_is_refused(saved: tuple[Path, ArtifactInfo], tmp_path: Path):
    path, info = saved
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other = save_artifact(gbt(), "gbt", other_dir)
    path.write_bytes((other_dir / other.file).read_bytes())
    with pytest.raises(ArtifactIntegrityError, match=r"manifest says|sha256 mismatch"):
        load_artifact(path, info)


def test_same_size_swap_is_caught_by_the_digest(saved: tuple[Path, ArtifactInfo]):
    path, info = saved
    data = path.read_bytes()
    path.write_bytes(data[1:] + data[:1])  # same length, different bytes
    with pytest.raises(ArtifactIntegrityError, match=f"expected {info.sha256}"):
        load_artifact(path, info)


def test_skops_file_naming_an_untrusted_estimator_is_refused(tmp_path: Path):
    # skops itself trusts every scikit-learn estimator; our explicit list does not.
    data = sio.dumps(SVC().fit(X, Y))
    assert sio.get_untrusted_types(data=data) == []
    path = tmp_path / "artifact.skops"
    path.write_bytes(data)
    with pytest.raises(ArtifactIntegrityError, match=r"untrusted type\(s\) sklearn\.svm\._classes"):
        load_artifact(path, _info_for(data, path.name, "skops"))


def test_untrusted_estimator_is_not_stored(tmp_path: Path):
    with pytest.raises(RegistryError, match=r"sklearn.svm._classes.SVC"):
        save_artifact(SVC().fit(X, Y), "logistic", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_hash_matching_garbage_is_not_a_skops_file(tmp_path: Path):
    data = b"not a zip archive"
    path = tmp_path / "artifact.skops"
    path.write_bytes(data)
    with pytest.raises(ArtifactIntegrityError, match="not a valid skops file"):
        load_artifact(path, _info_for(data, path.name, "skops"))


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (os.system, (f"touch {self.marker}",))


def test_pickle_calling_an_untrusted_global_is_refused_and_not_run(tmp_path: Path):
    marker = tmp_path / "pwned"
    data = pickle.dumps(_Exploit(marker))
    path = tmp_path / "artifact.pkl"
    path.write_bytes(data)
    with pytest.raises(ArtifactIntegrityError, match=r"untrusted global .*system"):
        load_artifact(path, _info_for(data, path.name, "pickle"))
    assert not marker.exists()


def test_tampered_pickle_is_refused_before_unpickling(tmp_path: Path):
    marker = tmp_path / "pwned"
    info = save_artifact(river_logistic(), "river-logistic", tmp_path)
    path = tmp_path / info.file
    os.chmod(path, 0o644)
    path.write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(ArtifactIntegrityError, match=r"manifest says|sha256 mismatch"):
        load_artifact(path, info)
    assert not marker.exists()


def test_river_kind_needs_a_river_model(tmp_path: Path):
    with pytest.raises(RegistryError, match="needs a river model"):
        save_artifact(LogisticRegression(), "river-logistic", tmp_path)


def test_unknown_kind_is_refused(tmp_path: Path):
    with pytest.raises(RegistryError, match="unknown model kind 'svm'"):
        save_artifact(logistic_pipeline(), "svm", tmp_path)
