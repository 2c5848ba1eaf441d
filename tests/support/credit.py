"""A small credit data set in a data scientist's own columns, and events made from its rows.

The tests of models trained elsewhere fit scikit-learn, LightGBM and XGBoost models on
:func:`credit_frame` the way a notebook would (a pandas DataFrame with text categories and
missing numbers), and publish :func:`credit_events` carrying the same columns.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

NUMERIC = ["income", "debt_ratio", "age", "open_loans"]
CATEGORICAL = ["region", "employment"]
FEATURES = NUMERIC + CATEGORICAL
TARGET = "outcome"
CONTEXT = "sex"


def credit_frame(rows: int = 1_200, seed: int = 5) -> pd.DataFrame:
    """Features, a ``good``/``bad`` target (``bad`` adverse) and a ``sex`` context column.

    ``income`` is missing for about 5% of rows; ``bad`` depends on every feature.
    """
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10.5, 0.5, rows).round(2)
    debt_ratio = rng.beta(2, 5, rows).round(4)
    age = rng.integers(18, 80, rows).astype(float)
    open_loans = rng.poisson(2, rows).astype(float)
    region = rng.choice(["north", "south", "east", "west"], rows, p=[0.4, 0.3, 0.2, 0.1])
    employment = rng.choice(["salaried", "self-employed", "unemployed"], rows, p=[0.6, 0.3, 0.1])
    logit = (
        -1.0
        - 0.8 * (np.log(income) - 10.5)
        + 4.0 * (debt_ratio - 0.3)
        - 0.02 * (age - 45)
        + 0.3 * (open_loans - 2)
        + np.select([region == "south", region == "west"], [0.5, -0.4], 0.0)
        + np.select([employment == "unemployed", employment == "self-employed"], [1.2, 0.3], 0.0)
    )
    bad = rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))
    income_with_gaps = np.where(rng.random(rows) < 0.05, np.nan, income)
    return pd.DataFrame(
        {
            "income": income_with_gaps,
            "debt_ratio": debt_ratio,
            "age": age,
            "open_loans": open_loans,
            "region": region,
            "employment": employment,
            CONTEXT: rng.choice(["f", "m"], rows),
            TARGET: np.where(bad, "bad", "good"),
        }
    )


def features_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Each row's features as an event carries them: numbers, text, ``None`` when missing."""
    rows = []
    for record in frame[FEATURES].to_dict("records"):
        rows.append(
            {
                name: (None if isinstance(value, float) and np.isnan(value) else value)
                for name, value in record.items()
            }
        )
    return rows


def credit_events(frame: pd.DataFrame, run_id: str) -> list[dict[str, Any]]:
    """ScoringEvent-shaped dicts, one per row, ids ``{run_id}-{i}``."""
    start = datetime.now(UTC) - timedelta(seconds=len(frame))
    events = []
    for i, (features, sex) in enumerate(zip(features_of(frame), frame[CONTEXT], strict=True)):
        when = start + timedelta(seconds=i)
        events.append(
            {
                "event_id": f"{run_id}-{i}",
                "entity_id": f"applicant-{i:05d}",
                "event_time": when.isoformat().replace("+00:00", "Z"),
                "features": features,
                "context": {CONTEXT: str(sex)},
            }
        )
    return events


def adverse_labels(frame: pd.DataFrame) -> np.ndarray:
    """1 where the outcome is ``bad``: what a model of this data must score."""
    return (frame[TARGET] == "bad").to_numpy().astype(int)
