"""scikit-learn pipelines: served as predict_proba serves them, explained per raw column.

Every pipeline is fitted on one synthetic frame (two numeric columns, one with NaNs, two text
columns); events are the frame's rows as feature mappings, checked and vectorised by a
FeatureSpec and turned back into the user's columns with ``raw_batch``, as serving does.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, SGDClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    RobustScaler,
    StandardScaler,
)
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits

from models.external.base import RawBatch, raw_batch
from models.external.sklearn_pipeline import (
    SKLEARN_TRUSTED_TYPES,
    SklearnFamily,
    SklearnPipelineModel,
    column_map,
    read_skops_file,
)
from models.featurespec import Feature, FeatureKind, FeatureSpec
from models.scoring_model import probability
from schemas.errors import ArtifactIntegrityError, RegistryError

TOLERANCE = 1e-9
FAMILY = SklearnFamily()
TEXT = ["region", "channel"]
NUMBERS = ["income", "age"]


def _frame(n: int = 240, seed: int = 7) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    income = rng.normal(50.0, 15.0, n)
    age = rng.uniform(20.0, 70.0, n)
    region = rng.choice(["east", "north", "south"], n)
    channel = rng.choice(["branch", "web"], n)
    logit = (
        0.06 * (income - 50) - 0.04 * (age - 45) + (region == "south") - 0.8 * (channel == "web")
    )
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    income[rng.random(n) < 0.15] = np.nan
    frame = pd.DataFrame({"income": income, "age": age, "region": region, "channel": channel})
    return frame, y


FRAME, Y = _frame()
SPEC = FeatureSpec(
    features=[
        Feature(
            name="income",
            kind=FeatureKind.NUMERIC,
            nullable=True,
            impute=float(FRAME.income.mean()),
        ),
        Feature(name="age", kind=FeatureKind.NUMERIC),
        *(
            Feature(
                name=name, kind=FeatureKind.CATEGORICAL, categories=sorted(FRAME[name].unique())
            )
            for name in TEXT
        ),
    ]
)
EVENTS = [
    {
        "income": None if np.isnan(row.income) else float(row.income),
        "age": float(row.age),
        "region": str(row.region),
        "channel": str(row.channel),
    }
    for row in FRAME.itertuples()
]


def _batch(spec: FeatureSpec = SPEC, events: list[dict[str, Any]] = EVENTS) -> RawBatch:
    vectorised = spec.vectorise(events)
    assert not vectorised.rejects
    return raw_batch(spec, vectorised.X)


BATCH = _batch()


def _columns(text: Any, numbers: Any, *, remainder: str = "drop") -> ColumnTransformer:
    return ColumnTransformer(
        [("text", text, TEXT), ("numbers", numbers, NUMBERS)], remainder=remainder
    )


def _imputed(scaler: Any) -> Pipeline:
    return make_pipeline(SimpleImputer(add_indicator=True), scaler)


PIPELINES: dict[str, Callable[[], Any]] = {
    "logistic-standard": lambda: make_pipeline(
        _columns(OneHotEncoder(handle_unknown="ignore"), _imputed(StandardScaler())),
        LogisticRegression(max_iter=1000),
    ),
    "logistic-minmax": lambda: make_pipeline(
        _columns(
            OneHotEncoder(drop="first", sparse_output=False),
            make_pipeline(SimpleImputer(strategy="median"), MinMaxScaler()),
        ),
        LogisticRegressionCV(
            Cs=3, cv=3, l1_ratios=(0.0,), use_legacy_attributes=False, scoring="neg_log_loss"
        ),
    ),
    "logistic-robust": lambda: make_pipeline(
        _columns(OneHotEncoder(drop="if_binary"), _imputed(RobustScaler())),
        LogisticRegression(max_iter=1000),
    ),
    "sgd-log-loss": lambda: make_pipeline(
        _columns(OneHotEncoder(), _imputed(StandardScaler())),
        SGDClassifier(loss="log_loss", alpha=0.01, random_state=0),
    ),
    "gradient-boosting": lambda: make_pipeline(
        _columns(OneHotEncoder(sparse_output=False), SimpleImputer(add_indicator=True)),
        GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0),
    ),
    "hist-gradient-boosting": lambda: make_pipeline(
        _columns(OrdinalEncoder(), "passthrough"),  # NaN reaches the trees, which route it
        HistGradientBoostingClassifier(max_iter=20, random_state=0),
    ),
    "hist-gradient-boosting-categorical": lambda: make_pipeline(
        _columns(OrdinalEncoder(), "passthrough"),
        HistGradientBoostingClassifier(max_iter=20, categorical_features=[0, 1], random_state=0),
    ),
    "random-forest": lambda: make_pipeline(
        _columns(OneHotEncoder(), SimpleImputer(add_indicator=True)),
        RandomForestClassifier(n_estimators=8, max_depth=4, random_state=0),
    ),
    "extra-trees": lambda: make_pipeline(
        _columns(OneHotEncoder(), SimpleImputer(add_indicator=True)),
        ExtraTreesClassifier(n_estimators=8, max_depth=4, random_state=0),
    ),
    "decision-tree": lambda: make_pipeline(
        _columns(OrdinalEncoder(), SimpleImputer(add_indicator=True)),
        DecisionTreeClassifier(max_depth=4, random_state=0),
    ),
}
LINEAR = ["logistic-standard", "logistic-minmax", "logistic-robust", "sgd-log-loss"]
PROBABILITY = ["random-forest", "extra-trees", "decision-tree"]
"""Final steps whose output is a probability (an average of tree class fractions)."""


@pytest.fixture(autouse=True, scope="module")
def one_openmp_thread() -> Iterator[None]:
    """The histogram boosting on one OpenMP thread: on a busy machine its threads wait for
    each other far longer than the small fits and predictions here take."""
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@cache
def fitted(name: str) -> Any:
    """The pipeline ``name`` fitted on the frame, once."""
    return PIPELINES[name]().fit(FRAME, Y)


def compiled(name: str, model: Any = None) -> SklearnPipelineModel:
    """The pipeline (by default the fitted one of ``name``), compiled with constants from
    the frame as registration computes them."""
    model = fitted(name) if model is None else model
    return FAMILY.compile(model, SPEC, FAMILY.constants(model, SPEC, BATCH))


def served(model: SklearnPipelineModel, batch: RawBatch = BATCH) -> np.ndarray:
    raw = model.raw(batch)
    return probability(raw) if model.output_space == "log_odds" else raw


@pytest.mark.parametrize("name", list(PIPELINES))
def test_served_probability_is_predict_proba(name: str) -> None:
    model = compiled(name)
    expected = fitted(name).predict_proba(FRAME)[:, 1]
    assert np.max(np.abs(served(model) - expected)) <= TOLERANCE
    assert np.array_equal(model.library_probability(BATCH), expected)
    assert model.output_space == ("probability" if name in PROBABILITY else "log_odds")


@pytest.mark.parametrize("name", list(PIPELINES))
def test_explanation_is_additive_and_per_raw_column(name: str) -> None:
    model = compiled(name)
    explained = model.explain(BATCH)
    assert explained.per_feature
    assert explained.method == ("linear" if name in LINEAR else "tree_shap")
    assert explained.contributions.shape == (len(BATCH), len(SPEC.features))
    assert np.max(explained.additivity_error()) <= TOLERANCE
    assert np.array_equal(explained.raw, model.raw(BATCH))
    Z = np.asarray(fitted(name)[:-1].transform(FRAME), dtype=np.float64)
    Z = Z.toarray() if hasattr(Z, "toarray") else Z
    per_transformed = model.explainer.explain(Z).contributions
    grouped = per_transformed @ column_map(fitted(name)).grouping
    assert np.max(np.abs(explained.contributions - grouped)) <= TOLERANCE


def test_linear_contributions_are_the_hand_computed_reference() -> None:
    """Weight times centred input of every transformed column, built here from the fitted
    parameters with pandas, then summed by hand into the raw column it comes from."""
    pipeline = fitted("logistic-standard")
    columns, final = pipeline[0], pipeline[-1]
    encoder = columns.named_transformers_["text"]
    imputer, scaler = (
        columns.named_transformers_["numbers"].steps[0][1],
        columns.named_transformers_["numbers"].steps[1][1],
    )
    blocks: list[tuple[str, np.ndarray]] = []
    for name, categories in zip(TEXT, encoder.categories_, strict=True):
        blocks += [(name, (FRAME[name] == c).to_numpy(float)) for c in categories]
    filled = FRAME[NUMBERS].fillna(dict(zip(NUMBERS, imputer.statistics_, strict=True)))
    filled["income__missing"] = FRAME.income.isna().astype(float)
    scaled = (filled.to_numpy() - scaler.mean_) / scaler.scale_
    blocks += [(name, scaled[:, j]) for j, name in enumerate(["income", "age", "income"])]
    Z = np.column_stack([values for _, values in blocks])
    terms = final.coef_[0] * (Z - Z.mean(axis=0))
    reference = {name: np.zeros(len(FRAME)) for name in SPEC.names}
    for (name, _), column in zip(blocks, terms.T, strict=True):
        reference[name] += column
    explained = compiled("logistic-standard").explain(BATCH)
    for j, name in enumerate(SPEC.names):
        assert np.max(np.abs(explained.contributions[:, j] - reference[name])) <= TOLERANCE
    assert explained.base_value == pytest.approx(
        final.intercept_[0] + final.coef_[0] @ Z.mean(axis=0), abs=TOLERANCE
    )


def test_one_hot_groups_and_missing_indicators_map_to_their_column() -> None:
    mapping = column_map(fitted("logistic-standard"))
    names = [SPEC.names[raw] for raw in mapping.source]
    assert names == ["region"] * 3 + ["channel"] * 2 + ["income", "age", "income"]
    assert mapping.grouping.shape == (8, 4)
    assert mapping.grouping.sum(axis=1).tolist() == [1.0] * 8
    dropped = column_map(fitted("logistic-robust"))  # a binary column keeps one one-hot column
    assert [SPEC.names[raw] for raw in dropped.source][:4] == ["region"] * 3 + ["channel"]


def test_inputs_name_the_text_columns_and_missing_handling() -> None:
    inputs = FAMILY.inputs(fitted("logistic-standard"))
    assert inputs.columns == SPEC.names
    assert inputs.categorical == {
        "region": ["east", "north", "south"],
        "channel": ["branch", "web"],
    }
    assert inputs.handles_missing
    assert FAMILY.inputs(fitted("hist-gradient-boosting")).handles_missing  # the trees route NaN
    unimputed = make_pipeline(_columns(OneHotEncoder(), StandardScaler()), LogisticRegression())
    assert not FAMILY.inputs(unimputed.fit(FRAME.fillna(0.0), Y)).handles_missing


def test_one_transform_per_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    model = compiled("logistic-standard")
    preprocessing = model.plan.preprocessing
    assert preprocessing is not None
    transform, calls = preprocessing.transform, []

    def counted(X: Any) -> Any:
        calls.append(len(X))
        return transform(X)

    monkeypatch.setattr(preprocessing, "transform", counted)
    model.explain(BATCH)
    assert calls == [len(BATCH)]


def test_a_pipeline_fitted_on_an_array_reads_the_numbers() -> None:
    numbers = FRAME[NUMBERS].to_numpy()
    pipeline = make_pipeline(
        ColumnTransformer([("income", _imputed(StandardScaler()), [0])], remainder="passthrough"),
        LogisticRegression(),
    ).fit(numbers, Y)
    spec = FeatureSpec(features=SPEC.features[:2])
    batch = _batch(spec, [{k: event[k] for k in NUMBERS} for event in EVENTS])
    assert FAMILY.inputs(pipeline).columns is None
    model = FAMILY.compile(pipeline, spec, FAMILY.constants(pipeline, spec, batch))
    assert np.max(np.abs(served(model, batch) - pipeline.predict_proba(numbers)[:, 1])) <= TOLERANCE
    assert column_map(pipeline).source.tolist() == [0, 0, 1]
    with pytest.raises(RegistryError, match="fit the pipeline on a pandas DataFrame"):
        FAMILY.compile(
            pipeline, SPEC.model_copy(update={"features": [SPEC.features[0], SPEC.features[2]]}), {}
        )


@pytest.mark.parametrize("name", list(PIPELINES))
def test_skops_round_trip(name: str) -> None:
    fmt, data = FAMILY.dumps(fitted(name))
    loaded = FAMILY.loads(fmt, data)
    assert fmt == "skops"
    assert np.array_equal(loaded.predict_proba(FRAME), fitted(name).predict_proba(FRAME))
    model = compiled(name, loaded)
    assert np.array_equal(
        model.explain(BATCH).contributions, compiled(name).explain(BATCH).contributions
    )


def test_read_skops_file_loads_a_users_file(tmp_path: Path) -> None:
    path = tmp_path / "model.skops"
    sio.dump(fitted("logistic-standard"), path)
    loaded = read_skops_file(path)
    assert np.array_equal(
        loaded.predict_proba(FRAME), fitted("logistic-standard").predict_proba(FRAME)
    )


def test_read_skops_file_refuses_a_pickle(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(fitted("logistic-standard")))
    with pytest.raises(
        RegistryError,
        match=re.escape("pickle files are not accepted; save the model with skops.io.dump"),
    ):
        read_skops_file(path)


def test_a_skops_file_naming_an_untrusted_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.skops"
    sio.dump(make_pipeline(StandardScaler(), SVC()).fit(FRAME[["age"]], Y), path)
    assert "sklearn.svm._classes.SVC" not in SKLEARN_TRUSTED_TYPES
    with pytest.raises(
        RegistryError, match=r"untrusted type\(s\) sklearn.svm._classes.SVC; supported families: "
    ) as refused:
        read_skops_file(path)
    assert "\n" not in str(refused.value)
    with pytest.raises(ArtifactIntegrityError, match=re.escape("sklearn.svm._classes.SVC")):
        FAMILY.loads("skops", path.read_bytes())


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            SVC(kernel="rbf"),
            "SVC is not supported as the final step; supported families: scikit-learn",
        ),
        (SGDClassifier(loss="hinge"), "SGDClassifier with loss 'hinge' has no log-odds output"),
    ],
)
def test_an_unsupported_final_step_is_refused(model: Any, message: str) -> None:
    pipeline = make_pipeline(_columns(OneHotEncoder(), SimpleImputer()), model).fit(FRAME, Y)
    assert FAMILY.accepts(pipeline)
    with pytest.raises(RegistryError, match=message):
        FAMILY.inputs(pipeline)


@pytest.mark.parametrize(
    ("labels", "found"), [(Y + Y * (FRAME.age > 50), "[0, 1, 2]"), (Y + 1, "[1, 2]")]
)
def test_classes_other_than_0_1_are_refused(labels: np.ndarray, found: str) -> None:
    pipeline = make_pipeline(
        _columns(OneHotEncoder(), _imputed(StandardScaler())), LogisticRegression()
    )
    expected = f"has classes {found}; only binary classifiers with classes [0, 1]"
    with pytest.raises(RegistryError, match=re.escape(expected)):
        FAMILY.inputs(pipeline.fit(FRAME, labels))


def test_a_transformer_that_mixes_columns_is_refused() -> None:
    numbers = make_pipeline(SimpleImputer(), PolynomialFeatures(degree=2), StandardScaler())
    pipeline = make_pipeline(
        _columns(OneHotEncoder(), numbers), LogisticRegression(max_iter=1000)
    ).fit(FRAME, Y)
    with pytest.raises(RegistryError) as refused:
        FAMILY.compile(pipeline, SPEC, {})
    assert str(refused.value).startswith(
        "PolynomialFeatures is not a supported preprocessing step (only steps whose every "
        "output column comes from exactly one input column are); supported families: scikit-learn"
    )
