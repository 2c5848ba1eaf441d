"""Drift and fairness monitoring of a model's stream: the pure, Kafka-free core.

:class:`MonitorSet` is the facade an engine calls with each scored batch
(:class:`ObservedBatch`) and each batch of joined labels (:class:`LabelledBatch`); it
returns DriftAlert- and FairnessReport-shaped dicts. Statistics and rules are explained in
the modules: windows (:mod:`.windows`), mergeable summaries (:mod:`.summary`), the test
(:mod:`.likelihood_ratio`) and its calibration to a false-alarm budget (:mod:`.calibration`),
the monitors (:mod:`.feature_drift`, :mod:`.prediction_drift`, :mod:`.concept_drift`,
:mod:`.fairness_window`), the alert lifecycle (:mod:`.episodes`) and the retrain rule
(:mod:`.retrain`).
"""

from schemas.errors import MonitoringError
from streams.monitoring.batch import LabelledBatch, ObservedBatch
from streams.monitoring.config import MonitorConfig
from streams.monitoring.monitor_set import MonitorSet
from streams.monitoring.summary import WindowSummary

__all__ = [
    "LabelledBatch",
    "MonitorConfig",
    "MonitorSet",
    "MonitoringError",
    "ObservedBatch",
    "WindowSummary",
]
