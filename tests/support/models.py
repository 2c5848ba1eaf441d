"""Agrawal models, trained and registered as the tests use them.

The fixtures ``train_model`` and ``register_models`` (``tests/conftest.py``) wrap these: a
model is trained once per session for each (kind, rows, seed, classification function), and
registered in a fresh registry unless the test hands its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from models.datasets import agrawal
from models.manifest import ModelKind, ModelManifest
from models.registry import LoadedModel, Registry
from models.scoring_model import ScoringModel
from models.training import TrainedModel, train


def train_agrawal(
    kind: ModelKind = "logistic",
    *,
    rows: int,
    seed: int,
    classification_function: int | None = None,
) -> TrainedModel:
    """``kind`` trained on ``rows`` Agrawal rows drawn with ``seed`` (also the training seed)."""
    if classification_function is None:
        return train(agrawal(rows, seed=seed), kind, seed=seed)
    return train(agrawal(rows, seed=seed, classification_function=classification_function),
                 kind, seed=seed)  # fmt: skip


@dataclass
class Registered:
    """One registered version: where it is, and (loaded on first use) what it serves."""

    registry: Registry
    name: str
    version: int

    @cached_property
    def manifest(self) -> ModelManifest:
        """The version's manifest, as stored."""
        return self.registry.manifest(self.name, self.version)

    @cached_property
    def loaded(self) -> LoadedModel:
        """The version as the registry loads it, hash-checked."""
        return self.registry.load(self.name, self.version)

    @cached_property
    def model(self) -> ScoringModel:
        """The version as the scorer serves it."""
        return ScoringModel.from_loaded(self.loaded)


def register(
    registry: Registry,
    *trained: TrainedModel,
    name: str = "loans",
    champion: int | None = None,
    actor: str = "test",
) -> list[Registered]:
    """Register each of ``trained`` as the next version of ``name``; with ``champion``, point
    the champion alias at that version (recorded as moved by ``actor``)."""
    versions = []
    for model in trained:
        manifest = registry.register(
            model.estimator, name=name, kind=model.kind, manifest_fields=model.manifest_fields
        )
        versions.append(Registered(registry, name, manifest.version))
    if champion is not None:
        registry.set_alias(name, "champion", champion, actor=actor)
    return versions


TrainModel = Callable[..., TrainedModel]
"""The ``train_model`` fixture: ``train_model(kind="logistic", *, rows, seed,
classification_function=None)``."""

RegisterModels = Callable[..., list[Registered]]
"""The ``register_models`` fixture: ``register_models(*trained, name="loans", registry=None,
champion=None, actor="test")``."""
