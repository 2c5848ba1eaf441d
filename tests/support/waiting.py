"""Waiting for something observable: poll a condition, never sleep a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Protocol


class Watched(Protocol):
    """Something that can die while a test waits for it (an engine, a deployment)."""

    def require_alive(self) -> None:
        """Raise AssertionError, with what is known about the death, if it died."""


def wait_until(
    condition: Callable[[], bool],
    what: str,
    timeout: float = 120.0,
    engines: Iterable[Watched] = (),
    every: float = 0.5,
) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout`` or if an
    engine in ``engines`` exits."""
    watched = list(engines)
    deadline = time.monotonic() + timeout
    while not condition():
        for engine in watched:
            engine.require_alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)
