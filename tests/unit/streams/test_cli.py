"""The command line explains itself and fails with a one-line reason."""

from __future__ import annotations

import pytest

from streams.cli import main


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("broker", "topics", "schemas"):
        assert command in out


def test_scorer_error_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    assert main(["topics", "apply"]) == 1
    err = capsys.readouterr().err.strip()
    assert (
        err == "scorer: error: no broker answers at 127.0.0.1:1; start one with `scorer broker up`"
    )


def test_usage_error_exits_2() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["broker", "sideways"])
    assert exit_info.value.code == 2
