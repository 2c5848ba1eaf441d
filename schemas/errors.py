"""The scorer's exception tree.

Every error the scorer raises on purpose derives from :class:`ScorerError`, so a caller
can catch one type. Errors of the layers below (librdkafka, the filesystem, pickle, skops)
are translated at the boundary with ``raise ... from exc``, keeping the original as cause::

    ScorerError
    ├── ConfigError            a setting is missing or invalid
    ├── BrokerError            the Kafka broker cannot be started, stopped or reached
    ├── TopicSpecError         infra/topics.yaml is invalid, or a topic cannot be applied
    ├── ContractError          a record does not satisfy its schema
    ├── RegistryError          the model registry cannot do what was asked
    │   ├── ModelNotFound      no such model, version or alias
    │   ├── ArtifactIntegrityError
    │   │                      an artifact's bytes do not match its manifest
    │   ├── UnservableModel    a version would not load, score or explain as serving does
    │   └── PromotionRefused   a promotion gate failed and the promotion was not forced
    ├── ScoringError           a model could not score a batch
    ├── ExplainerError         a model cannot be explained, or a batch does not fit it
    ├── MonitoringError        a monitor was given input or summaries it cannot use
    ├── RepublishError         dead letters cannot be republished as asked
    │   └── FixFileError       the fix file cannot be read or is invalid
    └── ModelSourceError       a model cannot be taken from MLflow as asked

Every subclass is defined here, so this tree is the whole of it.
"""

from __future__ import annotations


class ScorerError(Exception):
    """Root of every error the scorer raises on purpose."""


class ConfigError(ScorerError):
    """A setting is missing or invalid."""


class BrokerError(ScorerError):
    """The Kafka broker cannot be started, stopped or reached."""


class TopicSpecError(ScorerError):
    """The topic specification is invalid, or a topic cannot be created or altered."""


class ContractError(ScorerError):
    """A record does not satisfy its contract."""


class RegistryError(ScorerError):
    """The model registry cannot do what was asked."""


class ModelNotFound(RegistryError):
    """No such model, version or alias in the registry."""


class ArtifactIntegrityError(RegistryError):
    """An artifact's bytes do not match the sha256 recorded in its manifest."""


class UnservableModel(RegistryError):
    """A version fails a servability check (build, rows, score or additivity).

    ``check`` names the check that failed; the message says what it found.
    """

    def __init__(self, message: str, *, check: str) -> None:
        super().__init__(message)
        self.check = check


class ScoringError(ScorerError):
    """A model failed to score a batch."""


class PromotionRefused(RegistryError):
    """A promotion gate failed and the promotion was not forced; the alias did not move."""


class ExplainerError(ScorerError):
    """A model cannot be explained, or a batch does not fit the explainer."""


class MonitoringError(ScorerError):
    """A monitor was given input or summaries it cannot use (wrong shape, model, overlap)."""


class RepublishError(ScorerError):
    """Dead letters cannot be republished as asked."""


class FixFileError(RepublishError):
    """The fix file cannot be read, or it is not a valid fix."""


class ModelSourceError(ScorerError):
    """A model cannot be taken from where it was trained (an MLflow tracking server or
    registry): the source does not answer, has no such model, version, alias or run, the
    download fails, or the model is in a form that is not read or not trusted."""
