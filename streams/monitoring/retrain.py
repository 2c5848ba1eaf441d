"""The retrain rule: when the drift evidence is enough to recommend retraining.

Retraining is recommended (``retrain_recommended`` on the alert, with the rule's text in
``retrain_rule``) when either holds:

- **R1 concept drift**: the labelled error rate is above its calibrated threshold (every
  concept-drift alert carries R1: the model is measurably wrong more often than at training);
- **R2 covariate and prediction drift**: in each of ``m`` consecutive evaluated event
  windows, the score distribution breaches its threshold *and* at least ``k`` features'
  distributions breach theirs (defaults ``k = 1``, ``m = 3``): the inputs moved and the
  model's outputs moved with them, persistently, so the training data no longer represents
  the stream even before labels arrive.

Alerts opened in a window where a rule is met carry it. When R2 becomes met during an open
prediction-drift episode that did not carry it, that alert is re-issued once with it.

>>> rule = RetrainRule(features=1, windows=2)
>>> rule.events_window(True, 1), rule.events_window(True, 2) is not None
(None, True)
>>> rule.events_window(False, 3), rule.events_window(None, 0)
(None, None)
"""

from __future__ import annotations


class RetrainRule:
    """Tracks R2 over event windows and words both rules."""

    def __init__(self, features: int, windows: int) -> None:
        self.features = features
        self.windows = windows
        self.streak = 0

    @property
    def covariate_text(self) -> str:
        return (
            f"R2: prediction drift and drift in at least {self.features} feature(s) in each "
            f"of {self.windows} consecutive windows"
        )

    @staticmethod
    def concept_text() -> str:
        return "R1: concept drift: labelled error rate above its calibrated threshold"

    def events_window(self, prediction_breach: bool | None, feature_breaches: int) -> str | None:
        """Update R2 with one final event window; its text when met, else None.

        ``prediction_breach`` is None when the window had no prediction verdict: the streak
        is then left as it is.
        """
        if prediction_breach is None:
            return self.covariate_text if self.streak >= self.windows else None
        met = prediction_breach and feature_breaches >= self.features
        self.streak = self.streak + 1 if met else 0
        return self.covariate_text if self.streak >= self.windows else None
