"""Fixtures of the monitoring tests: the synthetic model and a stream it makes."""

from __future__ import annotations

import pytest

from streams.monitoring import LabelledBatch, ObservedBatch
from tests.support.synthetic import SyntheticModel, split_batches


@pytest.fixture(scope="session")
def synthetic() -> SyntheticModel:
    """The synthetic 20-feature model (seed 0, 20,000 reference rows); read-only."""
    return SyntheticModel(seed=0)


@pytest.fixture(scope="module")
def batches(synthetic: SyntheticModel) -> list[tuple[ObservedBatch, LabelledBatch]]:
    """:func:`~tests.support.synthetic.split_batches` of :func:`synthetic`."""
    return split_batches(synthetic)
