"""The scorer's version, read once from the installed distribution.

Every record the scorer writes names it (the ``scorer_version`` header, dead letters, the
AsyncAPI document's ``info.version``, a model's ``code_version``), so it is read here and
nowhere else.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Final

DISTRIBUTION: Final = "streaming-scorer"


def _installed_version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


SCORER_VERSION: Final = _installed_version()
