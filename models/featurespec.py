"""Feature specification of a model, and the vectoriser that turns events into a matrix.

The spec is part of every model's manifest. It names each input feature, its kind and
whether it may be missing; from it follow the design-matrix columns (one per numeric or
boolean feature, one per category of a categorical feature, and a missing-indicator column
for each nullable numeric feature).

Vectorising checks each event against the spec. A missing, unknown or wrong-typed feature
is a per-event rejection with a specific :class:`~schemas.contracts.RejectReason`; it never
fails the batch. ``null`` is how a producer says "missing": it is accepted only for
features declared ``nullable`` and then imputed with the training mean. Categorical values
may be strings or integers (an integer is matched by its decimal text, so ``3`` and ``"3"``
are the same category); booleans are never numbers.

>>> spec = FeatureSpec(features=[
...     Feature(name="income", kind="numeric", nullable=True, impute=50.0),
...     Feature(name="region", kind="categorical", categories=["north", "south"]),
... ])
>>> spec.columns
['income', 'income__missing', 'region=north', 'region=south']
>>> batch = spec.vectorise([{"income": None, "region": "south"}, {"income": 1, "region": "x"}])
>>> batch.X.tolist(), batch.rows
([[50.0, 1.0, 0.0, 1.0]], [0])
>>> batch.rejects[0].reason.value, batch.rejects[0].detail
('UNKNOWN_CATEGORY', "feature 'region': unknown category 'x'")
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.contracts import RejectReason


class FeatureKind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"


class Feature(BaseModel):
    """One input feature of a model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    kind: FeatureKind
    nullable: bool = False
    impute: float = 0.0
    categories: list[str] = Field(default_factory=list)
    description: str = ""

    @model_validator(mode="after")
    def _check(self) -> Feature:
        if self.kind is FeatureKind.CATEGORICAL:
            if not self.categories:
                raise ValueError(f"categorical feature {self.name!r} needs categories")
            if len(set(self.categories)) != len(self.categories):
                raise ValueError(f"categorical feature {self.name!r} repeats a category")
            if self.nullable:
                raise ValueError(f"categorical feature {self.name!r} cannot be nullable")
        elif self.categories:
            raise ValueError(f"{self.kind.value} feature {self.name!r} cannot have categories")
        if self.kind is FeatureKind.BOOLEAN and self.nullable:
            raise ValueError(f"boolean feature {self.name!r} cannot be nullable")
        return self

    def column_names(self) -> list[str]:
        if self.kind is FeatureKind.CATEGORICAL:
            return [f"{self.name}={c}" for c in self.categories]
        if self.nullable:
            return [self.name, f"{self.name}__missing"]
        return [self.name]


@dataclass(frozen=True)
class Reject:
    """Why one event of a batch could not be vectorised."""

    index: int
    reason: RejectReason
    detail: str


@dataclass(frozen=True)
class VectorisedBatch:
    """Rows of ``X`` belong to the input events listed in ``rows``, in order."""

    X: np.ndarray
    rows: list[int]
    rejects: list[Reject]


class FeatureSpec(BaseModel):
    """The ordered input features of a model; column order follows feature order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    features: list[Feature] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> FeatureSpec:
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ValueError("feature names must be unique")
        return self

    @cached_property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @cached_property
    def columns(self) -> list[str]:
        return [column for f in self.features for column in f.column_names()]

    @cached_property
    def column_feature(self) -> np.ndarray:
        """For each column, the index of the feature it belongs to."""
        return np.array(
            [i for i, f in enumerate(self.features) for _ in f.column_names()], dtype=np.intp
        )

    @cached_property
    def grouping(self) -> np.ndarray:
        """(n_columns, n_features) 0/1 matrix: ``contributions @ grouping`` sums per feature."""
        matrix = np.zeros((len(self.columns), len(self.features)))
        matrix[np.arange(len(self.columns)), self.column_feature] = 1.0
        return matrix

    @cached_property
    def _plan(self) -> list[tuple[str, FeatureKind, int, Any]]:
        plan: list[tuple[str, FeatureKind, int, Any]] = []
        offset = 0
        for f in self.features:
            if f.kind is FeatureKind.CATEGORICAL:
                lookup = {c: offset + j for j, c in enumerate(f.categories)}
                plan.append((f.name, f.kind, offset, lookup))
            else:
                plan.append((f.name, f.kind, offset, f.impute if f.nullable else None))
            offset += len(f.column_names())
        return plan

    def vectorise(self, events: Sequence[Mapping[str, Any]]) -> VectorisedBatch:
        """Turn feature mappings into a float64 matrix; invalid events become rejects."""
        names = set(self.names)
        width = len(self.columns)
        plan = self._plan
        rows: list[list[float]] = []
        kept: list[int] = []
        rejects: list[Reject] = []
        for index, features in enumerate(events):
            if features.keys() != names:
                rejects.append(self._key_mismatch(index, features, names))
                continue
            row = [0.0] * width
            problem = None
            for name, kind, offset, extra in plan:
                value = features[name]
                problem = _fill(row, name, kind, offset, extra, value)
                if problem is not None:
                    break
            if problem is not None:
                rejects.append(Reject(index, problem[0], problem[1]))
                continue
            rows.append(row)
            kept.append(index)
        X = np.array(rows, dtype=np.float64) if rows else np.empty((0, width))
        return VectorisedBatch(X=X, rows=kept, rejects=rejects)

    @staticmethod
    def _key_mismatch(index: int, features: Mapping[str, Any], names: set[str]) -> Reject:
        missing = sorted(names - features.keys())
        if missing:
            return Reject(index, RejectReason.MISSING_FEATURE, f"missing feature(s): {missing}")
        unknown = sorted(set(features.keys()) - names)
        return Reject(index, RejectReason.UNKNOWN_FEATURE, f"unknown feature(s): {unknown}")


def _fill(
    row: list[float], name: str, kind: FeatureKind, offset: int, extra: Any, value: Any
) -> tuple[RejectReason, str] | None:
    """Write one feature's value into ``row``; return (reason, detail) when it is invalid."""
    value_type = type(value)
    if kind is FeatureKind.NUMERIC:
        if value_type is float:
            if not math.isfinite(value):
                return RejectReason.NON_FINITE, f"feature {name!r}: {value!r} is not finite"
            row[offset] = value
        elif value_type is int:
            row[offset] = float(value)
        elif value is None:
            if extra is None:
                return RejectReason.NULL_NOT_ALLOWED, f"feature {name!r} may not be null"
            row[offset] = extra
            row[offset + 1] = 1.0
        else:
            return RejectReason.WRONG_TYPE, (
                f"feature {name!r}: expected a number, got {value_type.__name__}"
            )
    elif kind is FeatureKind.CATEGORICAL:
        if value_type is int:
            value = str(value)
        elif value_type is not str:
            return RejectReason.WRONG_TYPE, (
                f"feature {name!r}: expected a category (string), got {value_type.__name__}"
            )
        column = extra.get(value)
        if column is None:
            return RejectReason.UNKNOWN_CATEGORY, f"feature {name!r}: unknown category {value!r}"
        row[column] = 1.0
    else:
        if value_type is not bool:
            return RejectReason.WRONG_TYPE, (
                f"feature {name!r}: expected a boolean, got {value_type.__name__}"
            )
        row[offset] = 1.0 if value else 0.0
    return None
