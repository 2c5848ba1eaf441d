"""Where the project's files live on disk.

The checkout root holds ``infra/`` (broker jars and configuration) and ``var/`` (broker
data, logs and the default model registry, all ignored by git). ``SCORER_HOME`` moves
the root, e.g. when the package is installed outside a checkout.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The checkout that holds ``infra/`` (or ``SCORER_HOME`` when it is set)."""
    home = os.environ.get("SCORER_HOME")
    if home:
        return Path(home).resolve()
    return Path(__file__).resolve().parent.parent


def infra_dir() -> Path:
    return project_root() / "infra"


def var_dir() -> Path:
    return project_root() / "var"
