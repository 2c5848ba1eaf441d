"""What every long-running scorer process shares: a stop flag set from signal handlers, and
the tuning of the garbage collector.

The scoring loop allocates many short-lived dicts per batch. With CPython's default
collector thresholds, those allocations trigger frequent collections that also walk every
long-lived object (models, explainer tables, settings): in the scoring core that cost up to
half the throughput at batch size 1,000. After start-up the long-lived objects are moved to
the permanent generation (``gc.freeze``) and the first-generation threshold is raised, so a
collection runs about once per batch instead of many times within it. Reference counting
still frees the batch's objects as soon as they are dropped; only cycles wait for the
collector.
"""

from __future__ import annotations

import gc
import signal
import threading

GEN0_THRESHOLD = 50_000


class Service:
    """A loop that runs until :meth:`stop` (safe from a signal handler)."""

    def __init__(self) -> None:
        self._stopping = threading.Event()

    def stop(self, *_: object) -> None:
        self._stopping.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)


def tune_garbage_collector() -> None:
    """Freeze what exists now and collect young objects less often. Call after loading."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
