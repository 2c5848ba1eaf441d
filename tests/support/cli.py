"""The ``scorer`` command line run in this process (for the ``scorer_cli`` fixture)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from streams.cli import main

ScorerCli = Callable[..., tuple[int, str, str]]
"""``scorer_cli(*argv)``: the exit code, stdout and stderr of ``scorer *argv``."""


def run_scorer(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err
