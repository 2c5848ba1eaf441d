"""The monitoring layer's one error: inconsistent input, summaries or configuration."""

from __future__ import annotations

from schemas.errors import ScorerError


class MonitoringError(ScorerError):
    """A monitor was given input or summaries it cannot use (wrong shape, model, overlap)."""
