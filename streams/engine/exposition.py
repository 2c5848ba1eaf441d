"""Several processes' Prometheus expositions as one, each sample labelled by its process.

The supervisor of ``scorer serve --workers N`` serves one ``/metrics`` for all its workers:
each worker's text is parsed, every sample gets the worker's label, and samples of the same
family are written under one ``# HELP`` and one ``# TYPE`` line, as the text format requires
(a family repeated per worker would be refused by a Prometheus server).

>>> text = "# HELP jobs_total Jobs.\\n# TYPE jobs_total counter\\njobs_total 3.0\\n"
>>> print(merge_expositions({"0": text, "1": text}).decode(), end="")
# HELP jobs_total Jobs.
# TYPE jobs_total counter
jobs_total{worker="0"} 3.0
jobs_total{worker="1"} 3.0
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

WORKER_LABEL = "worker"


def labelled_families(expositions: Mapping[str, str], label: str = WORKER_LABEL) -> list[Metric]:
    """The families of every exposition, one :class:`Metric` per family name, with each
    sample labelled ``label=<its key in expositions>``; families keep their first-seen order."""
    families: dict[str, Metric] = {}
    for source, text in expositions.items():
        for family in text_string_to_metric_families(text):
            merged = families.get(family.name)
            if merged is None:
                merged = Metric(family.name, family.documentation, family.type, family.unit)
                families[family.name] = merged
            merged.samples.extend(
                sample._replace(labels={**sample.labels, label: source})
                for sample in family.samples
            )
    return list(families.values())


class _Families(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def render(families: Iterable[Metric]) -> bytes:
    """``families`` in the Prometheus text format."""
    registry = CollectorRegistry()
    registry.register(_Families(families))
    return generate_latest(registry)


def merge_expositions(expositions: Mapping[str, str], label: str = WORKER_LABEL) -> bytes:
    """The expositions as one text, each sample labelled by its key (see the module)."""
    return render(labelled_families(expositions, label))
