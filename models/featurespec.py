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
are the same category); a string is compared without surrounding whitespace, as CSV training
trims categories, so ``" north "`` is ``"north"``; booleans are never numbers.

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property, reduce
from operator import add, itemgetter
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.explain.base import row_sums
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
    def _spans(self) -> list[tuple[int, int]]:
        """Each feature's columns as a ``[start, end)`` range (its columns are adjacent)."""
        spans, start = [], 0
        for f in self.features:
            end = start + len(f.column_names())
            spans.append((start, end))
            start = end
        return spans

    def sum_per_feature(self, contributions: np.ndarray) -> np.ndarray:
        """``contributions @ grouping`` (n, n_features), each feature's columns added left to
        right, so that an event's sums do not depend on the rows batched with it (a matrix
        product's rounding depends on the batch's shape)."""
        n = contributions.shape[0]
        if n <= _FEW_ROWS:  # Python floats add in the same order, without numpy's per-call cost
            return np.array(
                [[reduce(add, row[a:b]) for a, b in self._spans] for row in contributions.tolist()],
                dtype=np.float64,
            ).reshape(n, len(self.features))
        out = np.empty((n, len(self.features)))
        for k, (a, b) in enumerate(self._spans):
            out[:, k] = row_sums(contributions[:, a:b])
        return out

    @cached_property
    def _name_set(self) -> frozenset[str]:
        return frozenset(self.names)

    @cached_property
    def _getter(self) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
        """An event's feature values in spec order, as a tuple (one C call per event)."""
        names = self.names
        if len(names) == 1:
            return lambda features: (features[names[0]],)
        return itemgetter(*names)

    @cached_property
    def _plan(self) -> list[tuple[Feature, int, dict[Any, int]]]:
        """Per feature: the feature, its first column, and (categorical) value -> column.

        Integer keys are added for categories written as decimal integers, so that ``3`` and
        ``"3"`` find the same column without converting every value; a category with
        surrounding whitespace (a model trained before categories were trimmed) is found by
        its trimmed text too.
        """
        plan = []
        offset = 0
        for f in self.features:
            lookup: dict[Any, int] = {}
            for j, category in enumerate(f.categories):
                lookup[category] = offset + j
                lookup.setdefault(category.strip(), offset + j)
                if category.lstrip("-").isdigit() and str(int(category)) == category:
                    lookup[int(category)] = offset + j
            plan.append((f, offset, lookup))
            offset += len(f.column_names())
        return plan

    @cached_property
    def layout(self) -> list[tuple[str, str, int, float, dict[Any, int] | None]]:
        """Per feature, in spec order: ``(name, kind, first column, impute, lookup)``, with
        kind ``numeric``, ``nullable`` (a numeric feature whose missing indicator is the next
        column), ``boolean`` or ``categorical`` (``lookup``: category value -> column, as
        :meth:`vectorise` matches it before trimming; None for the other kinds). A compiled
        vectoriser reads the spec in this form."""
        layout = []
        for feature, offset, lookup in self._plan:
            kind = feature.kind.value
            if feature.kind is FeatureKind.NUMERIC and feature.nullable:
                kind = "nullable"
            categorical = feature.kind is FeatureKind.CATEGORICAL
            layout.append(
                (feature.name, kind, offset, feature.impute, lookup if categorical else None)
            )
        return layout

    def vectorise(self, events: Sequence[Mapping[str, Any]]) -> VectorisedBatch:
        """Turn feature mappings into a float64 matrix; invalid events become rejects.

        Works column by column: each feature's values are checked and converted for the
        whole batch at once, and only a column holding an unexpected type is walked value by
        value. An event is rejected for the first invalid feature in spec order.
        """
        if len(events) <= _FEW_ROWS:
            X = self._clean_rows(events)
            if X is not None:
                return VectorisedBatch(X=X, rows=list(range(len(events))), rejects=[])
        rejects: list[Reject] = []
        in_order = self._in_spec_order(events)
        if in_order is not None:
            keyed = list(range(len(events)))
        else:
            names = self._name_set
            keyed = [i for i, features in enumerate(events) if features.keys() == names]
            keyed_set = set(keyed)
            rejects = [
                self._key_mismatch(i, events[i], names)
                for i in range(len(events))
                if i not in keyed_set
            ]
            in_order = [self._getter(events[i]) for i in keyed]
        X = np.zeros((len(keyed), len(self.columns)))
        problems: dict[int, tuple[RejectReason, str]] = {}
        by_feature = list(zip(*in_order, strict=True)) if keyed else []
        for k, (feature, offset, lookup) in enumerate(self._plan):
            values = by_feature[k] if keyed else ()
            if feature.kind is FeatureKind.NUMERIC:
                _numeric_column(feature, values, X, offset, problems)
            elif feature.kind is FeatureKind.CATEGORICAL:
                _categorical_column(feature, values, X, lookup, problems)
            else:
                _boolean_column(feature, values, X, offset, problems)
        if problems:
            for position, (reason, detail) in problems.items():
                rejects.append(Reject(keyed[position], reason, detail))
            rejects.sort(key=lambda reject: reject.index)
            keep = np.ones(len(keyed), dtype=bool)
            keep[list(problems)] = False
            X = X[keep]
            keyed = [index for position, index in enumerate(keyed) if keep[position]]
        return VectorisedBatch(X=X, rows=keyed, rejects=rejects)

    def _in_spec_order(self, events: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]] | None:
        """Each event's feature values in spec order, if every event is a dict holding
        exactly the spec's features (as many keys, each found: cheaper than comparing key
        sets), else None."""
        if set(map(type, events)) != {dict} or set(map(len, events)) != {len(self.names)}:
            return None
        try:
            return list(map(self._getter, events))
        except KeyError:
            return None

    def _clean_rows(self, events: Sequence[Mapping[str, Any]]) -> np.ndarray | None:
        """A few events vectorised row by row in plain Python (numpy's per-call cost is what
        a small batch pays), or None as soon as any value is not plainly valid: the batch
        then takes the column path, which gives every reject its reason."""
        names, width = self._name_set, len(self.columns)
        rows: list[list[float]] = []
        for features in events:
            if features.keys() != names:
                return None
            row = [0.0] * width
            for feature, offset, lookup in self._plan:
                value = features[feature.name]
                kind = type(value)
                if feature.kind is FeatureKind.NUMERIC:
                    if kind is float:
                        if value - value != 0.0:
                            return None
                        row[offset] = value
                    elif kind is int and -_EXACT_INT <= value <= _EXACT_INT:
                        row[offset] = float(value)
                    elif value is None and feature.nullable:
                        row[offset], row[offset + 1] = feature.impute, 1.0
                    else:
                        return None
                elif feature.kind is FeatureKind.CATEGORICAL:
                    column = lookup.get(value) if kind is str or kind is int else None
                    if column is None:
                        return None
                    row[column] = 1.0
                elif kind is bool:
                    row[offset] = 1.0 if value else 0.0
                else:
                    return None
            rows.append(row)
        return np.array(rows, dtype=np.float64).reshape(len(rows), width)

    @staticmethod
    def _key_mismatch(index: int, features: Mapping[str, Any], names: frozenset[str]) -> Reject:
        missing = sorted(names - features.keys())
        if missing:
            return Reject(index, RejectReason.MISSING_FEATURE, f"missing feature(s): {missing}")
        unknown = sorted(set(features.keys()) - names)
        return Reject(index, RejectReason.UNKNOWN_FEATURE, f"unknown feature(s): {unknown}")


Problems = dict[int, tuple[RejectReason, str]]

_FEW_ROWS = 8
"""Batches up to this size are first tried row by row (:meth:`FeatureSpec._clean_rows`)."""
_EXACT_INT = 2**53
"""Integers up to this magnitude convert to float64 exactly and never overflow."""


def _numeric_column(
    feature: Feature, values: Sequence[Any], X: np.ndarray, offset: int, problems: Problems
) -> None:
    types = set(map(type, values))
    if types <= {float, int}:
        try:
            column = np.array(values, dtype=np.float64)
        except OverflowError:  # an integer beyond float64: walk the column
            column = None
        if column is not None:
            if float in types:
                for position in np.flatnonzero(~np.isfinite(column)).tolist():
                    problems.setdefault(position, _not_finite(feature.name, values[position]))
            X[:, offset] = column
            return
    name = feature.name
    for position, value in enumerate(values):
        value_type = type(value)
        if value_type is float:
            if math.isfinite(value):
                X[position, offset] = value
            else:
                problems.setdefault(position, _not_finite(name, value))
        elif value_type is int:
            try:
                X[position, offset] = float(value)
            except OverflowError:
                problems.setdefault(
                    position, (RejectReason.NON_FINITE, f"feature {name!r}: integer too large")
                )
        elif value is None:
            if feature.nullable:
                X[position, offset] = feature.impute
                X[position, offset + 1] = 1.0
            else:
                problems.setdefault(
                    position, (RejectReason.NULL_NOT_ALLOWED, f"feature {name!r} may not be null")
                )
        else:
            problems.setdefault(position, _wrong_type(name, "a number", value))


def _categorical_column(
    feature: Feature,
    values: Sequence[Any],
    X: np.ndarray,
    lookup: dict[Any, int],
    problems: Problems,
) -> None:
    if set(map(type, values)) <= {str, int}:
        columns: list[int | None] = list(map(lookup.get, values))
        if None not in columns:  # every value found, as usual: one assignment
            X[np.arange(len(values)), columns] = 1.0  # type: ignore[index]
            return
        columns = [  # trimmed strings, as the categories are: stripped on a miss only
            lookup.get(v.strip()) if c is None and type(v) is str else c
            for v, c in zip(values, columns, strict=True)
        ]
    else:  # bool hashes like 0/1, and lists do not hash at all: look at each value
        columns = []
        for position, value in enumerate(values):
            if type(value) is str:
                columns.append(lookup.get(value, lookup.get(value.strip())))
            elif type(value) is int:
                columns.append(lookup.get(value))
            else:
                columns.append(-1)
                problems.setdefault(
                    position, _wrong_type(feature.name, "a category (string)", value)
                )
    hits = [position for position, column in enumerate(columns) if column is not None]
    if len(hits) < len(values):
        for position, column in enumerate(columns):
            if column is None:
                detail = f"feature {feature.name!r}: unknown category {str(values[position])!r}"
                problems.setdefault(position, (RejectReason.UNKNOWN_CATEGORY, detail))
    hits = [position for position in hits if columns[position] != -1]
    X[hits, [columns[position] for position in hits]] = 1.0  # type: ignore[index]


def _boolean_column(
    feature: Feature, values: Sequence[Any], X: np.ndarray, offset: int, problems: Problems
) -> None:
    for position, value in enumerate(values):
        if type(value) is bool:
            X[position, offset] = 1.0 if value else 0.0
        else:
            problems.setdefault(position, _wrong_type(feature.name, "a boolean", value))


def _not_finite(name: str, value: Any) -> tuple[RejectReason, str]:
    return RejectReason.NON_FINITE, f"feature {name!r}: {value!r} is not finite"


def _wrong_type(name: str, expected: str, value: Any) -> tuple[RejectReason, str]:
    return RejectReason.WRONG_TYPE, (
        f"feature {name!r}: expected {expected}, got {type(value).__name__}"
    )
