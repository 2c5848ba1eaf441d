"""What every model family brought from elsewhere provides, and the batch it reads.

A model trained outside the project reads the user's own columns: numbers as numbers,
categories as their text. Events are still checked and vectorised by the version's
:class:`~models.featurespec.FeatureSpec` (the monitors count that design matrix), and
:func:`raw_batch` turns the validated matrix back into the columns the model reads, once
per batch: a nullable numeric feature is NaN where its missing indicator is set, a
categorical feature is the text of its one-hot column, a boolean is 0.0 or 1.0.

A family (:class:`ModelFamily`) knows how to store its models safely, which columns a model
reads, and how to build the :class:`ExternalModel` that scores and explains a batch. The
explanation's contributions are per raw column, in feature-spec order: whatever a pipeline
does inside (one-hot groups, a scaled column, an imputed value and its missing indicator),
its contributions are summed back to the column they came from.

>>> from models.featurespec import Feature, FeatureSpec
>>> spec = FeatureSpec(features=[
...     Feature(name="income", kind="numeric", nullable=True, impute=50.0),
...     Feature(name="region", kind="categorical", categories=["north", "south"]),
... ])
>>> batch = raw_batch(spec, spec.vectorise([{"income": None, "region": "south"}]).X)
>>> batch.numeric.tolist(), batch.text["region"].tolist()
([[nan, nan]], ['south'])
>>> batch.frame().to_dict("list")
{'income': [nan], 'region': ['south']}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from models.explain.base import ExplanationBatch, FloatArray
from models.featurespec import FeatureKind, FeatureSpec

if TYPE_CHECKING:
    import pandas as pd

OutputSpace = Literal["log_odds", "probability"]
"""Where a model's raw output and its explanation live: log-odds (boosted and linear models;
the served score is its logistic function) or probability (a random forest's average of
tree probabilities; the served score is the output itself)."""


@dataclass(frozen=True)
class RawBatch:
    """One batch of events as a model trained elsewhere reads them.

    ``numeric`` has one column per feature, in spec order: the value of a numeric or boolean
    feature (NaN when missing), NaN for a categorical one. ``text`` holds each categorical
    feature's values as an object array of strings.
    """

    columns: list[str]
    numeric: FloatArray
    text: dict[str, np.ndarray]

    def __len__(self) -> int:
        return int(self.numeric.shape[0])

    def frame(self, columns: list[str] | None = None) -> pd.DataFrame:
        """The batch as a pandas DataFrame (float64 numbers, text as strings), in ``columns``
        order (default: spec order), as a scikit-learn pipeline fitted on a frame reads it."""
        import pandas as pd

        position = {name: j for j, name in enumerate(self.columns)}
        data = {
            name: self.text[name] if name in self.text else self.numeric[:, position[name]]
            for name in (columns or self.columns)
        }
        return pd.DataFrame(data, copy=False)


def raw_batch(spec: FeatureSpec, X: FloatArray) -> RawBatch:
    """The user's columns of the rows of ``X``, a design matrix made by ``spec.vectorise``."""
    X = np.asarray(X, dtype=np.float64)
    numeric = np.full((X.shape[0], len(spec.features)), np.nan)
    text: dict[str, np.ndarray] = {}
    offset = 0
    for j, feature in enumerate(spec.features):
        width = len(feature.column_names())
        if feature.kind is FeatureKind.CATEGORICAL:
            categories = np.asarray(feature.categories, dtype=object)
            text[feature.name] = categories[np.argmax(X[:, offset : offset + width], axis=1)]
        else:
            values = X[:, offset].copy()
            if feature.nullable:
                values[X[:, offset + 1] == 1.0] = np.nan
            numeric[:, j] = values
        offset += width
    return RawBatch(columns=list(spec.names), numeric=numeric, text=text)


class ExternalModel(Protocol):
    """A loaded model of some family, compiled for one feature spec."""

    method: str
    """The explanation method named in every explanation record."""
    output_space: OutputSpace

    def raw(self, batch: RawBatch) -> FloatArray:
        """The model's output for every row, in :attr:`output_space`."""
        ...

    def explain(self, batch: RawBatch) -> ExplanationBatch:
        """Exact attributions of :meth:`raw`, one contribution per raw column (spec order);
        ``per_feature`` is True on the batch returned."""
        ...

    def library_probability(self, batch: RawBatch) -> FloatArray:
        """The library's own probability of the adverse class (label 1) for every row,
        computed by the library's public prediction call, not by our compiled path."""
        ...


@dataclass(frozen=True)
class ModelInputs:
    """What a family reads from a fitted model about the columns it expects."""

    columns: list[str] | None
    """The input columns in the model's order; None when the model was fitted without
    names (then the data file's column order is the model's)."""
    categorical: dict[str, list[str] | None]
    """Columns the model reads as categories, with the categories it knows when it keeps
    them (an encoder's ``categories_``), else None."""
    handles_missing: bool
    """Whether the model accepts NaN in its numeric inputs (an imputer, a tree that routes
    missing values, a booster)."""


class ModelFamily(Protocol):
    """One family of models from elsewhere: how it is recognised, stored and compiled."""

    kind: str
    """The manifest's model kind."""
    description: str
    """What the family accepts, as the refusal of an unsupported model lists it."""

    def accepts(self, model: Any) -> bool: ...

    def inputs(self, model: Any) -> ModelInputs: ...

    def dumps(self, model: Any) -> tuple[str, bytes]:
        """The artifact format and bytes to store (never a pickle)."""
        ...

    def loads(self, fmt: str, data: bytes) -> Any:
        """The model from bytes written by :meth:`dumps` (already hash-checked)."""
        ...

    def compile(self, model: Any, spec: FeatureSpec, constants: dict[str, Any]) -> ExternalModel:
        """The scoring view of ``model`` for events of ``spec`` (whose names are the model's
        columns, in the model's order). ``constants`` are the manifest's explainer
        constants, as :meth:`constants` computed them at registration."""
        ...

    def constants(self, model: Any, spec: FeatureSpec, background: RawBatch) -> dict[str, Any]:
        """Explainer constants computed once at registration from ``background`` (the rows
        of the registration data), stored in the manifest (e.g. a linear model's mean
        transformed input); JSON-serialisable."""
        ...
