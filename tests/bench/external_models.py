"""Models trained elsewhere, fitted on Agrawal rows as a notebook would, for the benchmarks.

Each family is fitted on a pandas DataFrame of the Agrawal features (the categorical ones as
pandas categories where the library reads them so) and registered with
:func:`models.external.register.register_model`, so the benchmarks score the same events
with every family.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from models.datasets import agrawal
from models.external.register import register_model
from models.manifest import ModelManifest
from models.registry import Registry

TARGET = "adverse"


def agrawal_frame(rows: int, seed: int) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Features and target of ``rows`` Agrawal rows; the numeric and categorical names."""
    dataset = agrawal(rows, seed=seed)
    frame = pd.DataFrame(dataset.features)
    categorical = [f.name for f in dataset.spec.features if f.kind.value == "categorical"]
    numeric = [name for name in frame.columns if name not in categorical]
    frame[TARGET] = dataset.labels
    return frame, numeric, categorical


def _linear(numeric: list[str], categorical: list[str]) -> Any:
    prepare = ColumnTransformer([
        ("numbers", StandardScaler(), numeric),
        ("categories", OneHotEncoder(handle_unknown="ignore"), categorical),
    ])  # fmt: skip
    return make_pipeline(prepare, LogisticRegression(max_iter=1_000))


def _hist_gbt(numeric: list[str], categorical: list[str]) -> Any:
    prepare = ColumnTransformer(
        [("categories", OrdinalEncoder(), categorical)], remainder="passthrough"
    )
    return make_pipeline(prepare, HistGradientBoostingClassifier(max_iter=100, random_state=0))


def _forest(numeric: list[str], categorical: list[str]) -> Any:
    prepare = ColumnTransformer(
        [("categories", OneHotEncoder(handle_unknown="ignore"), categorical)],
        remainder="passthrough",
    )
    forest = RandomForestClassifier(n_estimators=50, max_depth=8, random_state=0, n_jobs=1)
    return make_pipeline(prepare, forest)


SKLEARN: dict[str, Callable[[list[str], list[str]], Any]] = {
    "sklearn-linear": _linear,
    "sklearn-hist-gbt": _hist_gbt,
    "sklearn-forest": _forest,
}


def fit_lightgbm(frame: pd.DataFrame, categorical: list[str]) -> Any:
    import lightgbm as lgb

    inputs = frame.drop(columns=[TARGET]).astype({c: "category" for c in categorical})
    params = {"objective": "binary", "num_leaves": 31, "verbose": -1, "seed": 0}
    return lgb.train(params, lgb.Dataset(inputs, frame[TARGET]), num_boost_round=100)


def fit_xgboost(frame: pd.DataFrame, categorical: list[str]) -> Any:
    import xgboost as xgb

    inputs = frame.drop(columns=[TARGET]).astype({c: "category" for c in categorical})
    train = xgb.DMatrix(inputs, label=frame[TARGET], enable_categorical=True)
    params = {"objective": "binary:logistic", "max_depth": 6, "eta": 0.1, "seed": 0}
    return xgb.train(params, train, num_boost_round=100)


FAMILIES = (*SKLEARN, "lightgbm", "xgboost")


def register_external(
    registry: Registry, rows: int, seed: int, families: tuple[str, ...] = FAMILIES
) -> dict[str, ModelManifest]:
    """Fit and register each family as ``bench-<family>``; their manifests by family."""
    frame, numeric, categorical = agrawal_frame(rows, seed)
    manifests = {}
    for family in families:
        if family in SKLEARN:
            features = frame.drop(columns=[TARGET])
            model = SKLEARN[family](numeric, categorical).fit(features, frame[TARGET])
        elif family == "lightgbm":
            model = fit_lightgbm(frame, categorical)
        else:
            model = fit_xgboost(frame, categorical)
        manifests[family] = register_model(
            model, frame, name=f"bench-{family}", target=TARGET, registry=registry
        )
    return manifests
