"""``scorer serve --workers``: how many, what each worker is started with, and the errors."""

from __future__ import annotations

import argparse
import os
import sys

import pytest

from streams.cli import build_parser, main
from streams.commands.serve import FORWARDED, worker_argv
from streams.engine.workers import usable_cores


def serve_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    subparsers = next(
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    )  # the public API has no accessor for a sub-parser
    return subparsers.choices["serve"]


def test_workers_default_to_one_and_auto_is_the_usable_cores() -> None:
    parse = build_parser().parse_args
    assert parse(["serve"]).workers == 1
    assert parse(["serve", "--workers", "3"]).workers == 3
    assert parse(["serve", "--workers", "auto"]).workers == usable_cores()
    assert usable_cores() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5", ""])
def test_a_bad_number_of_workers_is_a_usage_error(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["serve", "--workers", value])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == (
        "scorer serve: error: argument --workers: expected a whole number of workers "
        f"(1 or more) or auto, got {value!r}"
    )


def test_help_explains_workers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--workers N|auto N engines in the consumer group under a supervisor" in out
    assert "--worker-index" not in out and "--supervisor-pid" not in out  # internal


def test_a_worker_gets_the_supervisors_options_and_its_own_port() -> None:
    parse = build_parser().parse_args
    args = parse(["-v", "serve", "--workers", "4", "--engine", "native", "--model", "m",
                  "--exactly-once", "--group-id", "g", "--max-batch", "7", "--max-wait-ms", "3",
                  "--metrics-port", "9000", "--registry", "/srv/registry"])  # fmt: skip
    argv = worker_argv(args, 2, 41234, supervisor_pid=77)
    assert argv[:3] == [sys.executable, "-m", "streams.cli"]  # what `scorer` runs
    worker = parse(argv[3:])
    assert worker.verbose and worker.workers == 1 and worker.exactly_once
    assert (worker.worker_index, worker.supervisor_pid, worker.metrics_port) == (2, 77, 41234)
    assert {dest: getattr(worker, dest) for dest in FORWARDED} == {
        "engine": "native", "model": "m", "group_id": "g", "max_batch": 7, "max_wait_ms": 3,
        "registry": "/srv/registry",
    }  # fmt: skip


def test_an_option_left_out_keeps_its_variable_in_force_in_the_worker() -> None:
    args = build_parser().parse_args(["serve", "--workers", "2"])
    worker = build_parser().parse_args(worker_argv(args, 0, 5000, supervisor_pid=1)[3:])
    assert (worker.model, worker.group_id, worker.exactly_once, worker.verbose) == (
        None, None, None, False,
    )  # fmt: skip


def test_every_serve_option_reaches_the_workers() -> None:
    """A new ``scorer serve`` option must be passed on to the workers (FORWARDED)."""
    dests = {a.dest for a in serve_parser()._actions} - {"help"}
    own = {"workers", "metrics_port", "worker_index", "supervisor_pid", "exactly_once"}
    assert dests == set(FORWARDED) | own


def test_faust_workers_cannot_be_exactly_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    code = main(["serve", "--engine", "faust", "--exactly-once", "--workers", "2"])
    assert code == 1
    assert capsys.readouterr().err.strip() == (
        "scorer: error: --engine faust does not support --exactly-once; use --engine native"
    )


def test_without_a_broker_no_worker_is_started(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    assert main(["serve", "--workers", "2", "--metrics-port", "-1"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "scorer: error: no broker answers at 127.0.0.1:1"
    assert "worker 0 started" not in err
