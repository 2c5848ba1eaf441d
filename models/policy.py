"""Decision policy: score bands that turn a model's score into a decision.

The score is the model's probability of the adverse outcome (for loans: default). Scores
below ``review_at`` are approved, scores at or above ``decline_at`` are declined, and the
band between is sent to review. Review and decline are adverse decisions, which carry
reason codes.

>>> policy = Policy(review_at=0.3, decline_at=0.6)
>>> policy.decide(np.array([0.1, 0.3, 0.59, 0.6])).tolist()
['approve', 'review', 'review', 'decline']
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

APPROVE = "approve"
REVIEW = "review"
DECLINE = "decline"
ADVERSE_DECISIONS = frozenset({REVIEW, DECLINE})
DECISIONS = (APPROVE, REVIEW, DECLINE)
"""The decisions in band order: :meth:`Policy.bands` indexes this."""
_BY_BAND = np.array(DECISIONS, dtype=object)


class Policy(BaseModel):
    """Two thresholds on the adverse-outcome probability."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    review_at: float = Field(default=0.35, gt=0.0, lt=1.0)
    decline_at: float = Field(default=0.6, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> Policy:
        if self.review_at > self.decline_at:
            raise ValueError("review_at must not exceed decline_at")
        return self

    @property
    def thresholds(self) -> dict[str, float]:
        return {REVIEW: self.review_at, DECLINE: self.decline_at}

    @property
    def classification_threshold(self) -> float:
        """The score at which the policy acts adversely for good (used for accuracy)."""
        return self.decline_at

    def bands(self, scores: np.ndarray) -> np.ndarray:
        """Each score's decision as its index into :data:`DECISIONS`, vectorised.

        >>> Policy(review_at=0.3, decline_at=0.6).bands(np.array([0.1, 0.3, 0.6])).tolist()
        [0, 1, 2]
        """
        return (scores >= self.review_at).astype(np.intp) + (scores >= self.decline_at)

    @staticmethod
    def labels(bands: np.ndarray) -> np.ndarray:
        """The decision label of each band (an object array of str)."""
        return _BY_BAND[bands]

    def decide(self, scores: np.ndarray) -> np.ndarray:
        """Decision label per score, vectorised."""
        return self.labels(self.bands(scores))
