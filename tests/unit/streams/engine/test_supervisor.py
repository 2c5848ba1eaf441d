"""The supervisor of ``scorer serve --workers N``, without a broker: restart backoff, each
worker's environment, one exposition of many, and the supervisor's health, over stand-in
worker processes (tests/support/workers.py) that serve what a worker serves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.engine.exposition import merge_expositions
from streams.engine.native import transactional_id
from streams.engine.supervisor import Supervisor
from streams.engine.workers import RestartPolicy, worker_environment
from streams.observability import ScorerMetrics
from streams.settings import load_settings
from tests.support.waiting import wait_until
from tests.support.workers import ROOT, standin_launch

# -- restarts ---------------------------------------------------------------------------------


def test_restart_delay_doubles_to_thirty_seconds_and_starts_over_after_a_long_run() -> None:
    policy = RestartPolicy()
    assert [policy.delay(ran_s=0.5) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert policy.delay(ran_s=59.0) == 30
    assert policy.delay(ran_s=60.0) == 1  # ran for a while: not part of a crash loop
    assert policy.delay(ran_s=3.0) == 2


# -- each worker's environment ----------------------------------------------------------------


def test_each_worker_is_its_own_static_member_with_its_own_transactional_id(
    tmp_path: Path,
) -> None:
    config = tmp_path / "kafka.properties"
    config.write_text("group.instance.id=scorer-east\n")
    for environ in (
        {"KAFKA_GROUP_INSTANCE_ID": "scorer-east"},  # the variable ...
        {"SCORER_KAFKA_CONFIG": str(config)},  # ... or a properties file
    ):
        instance = load_settings(environ).kafka_extra["group.instance.id"]
        workers = [load_settings(worker_environment(environ, i, instance)) for i in range(3)]
        assert [w.kafka_extra["group.instance.id"] for w in workers] == [
            "scorer-east-w0", "scorer-east-w1", "scorer-east-w2",
        ]  # fmt: skip
        assert [transactional_id(w) for w in workers] == [
            "scorer-scorer-east-w0", "scorer-scorer-east-w1", "scorer-scorer-east-w2",
        ]  # fmt: skip
        again = load_settings(worker_environment(environ, 1, instance))  # a restart of worker 1
        assert transactional_id(again) == transactional_id(workers[1])


def test_without_a_static_member_id_workers_get_none() -> None:
    environ = {"SCORER_GROUP_ID": "g"}
    assert worker_environment(environ, 0, None) == environ
    ids = {transactional_id(load_settings(worker_environment(environ, i, None))) for i in (0, 1)}
    assert len(ids) == 2  # random, so still one per worker


# -- one exposition of many -------------------------------------------------------------------


def _worker_metrics(scored: int, rejected: int, batch: int) -> str:
    metrics = ScorerMetrics()
    metrics.events.labels("scored").inc(scored)
    metrics.events.labels("rejected").inc(rejected)
    metrics.batch_size.observe(batch)
    metrics.set_model("champion", "loans", 3, "c" * 64)
    return metrics.exposition().decode()


def test_merged_exposition_labels_every_sample_by_worker_and_states_each_family_once() -> None:
    merged = merge_expositions(
        {"0": _worker_metrics(10, 1, 5), "1": _worker_metrics(20, 0, 500)}
    ).decode()

    type_lines = [line for line in merged.splitlines() if line.startswith("# TYPE ")]
    assert len(type_lines) == len(set(type_lines))  # HELP and TYPE once per family
    assert merged.count("# HELP scorer_events_total ") == 1
    families = {f.name: f for f in text_string_to_metric_families(merged)}
    events = {
        (s.labels["worker"], s.labels["outcome"]): s.value
        for s in families["scorer_events"].samples
        if s.name == "scorer_events_total"
    }
    assert events == {("0", "scored"): 10, ("0", "rejected"): 1, ("1", "scored"): 20,
                      ("1", "rejected"): 0}  # fmt: skip
    assert families["scorer_events"].type == "counter"
    batches = families["scorer_batch_size"]
    assert batches.type == "histogram"
    counts = {s.labels["worker"]: s.value for s in batches.samples if s.name.endswith("_count")}
    sums = {s.labels["worker"]: s.value for s in batches.samples if s.name.endswith("_sum")}
    assert counts == {"0": 1, "1": 1} and sums == {"0": 5, "1": 500}
    buckets = [
        s for s in batches.samples if s.name.endswith("_bucket") and s.labels["le"] == "10.0"
    ]
    assert {s.labels["worker"]: s.value for s in buckets} == {"0": 1, "1": 0}
    models = families["scorer_model_info"].samples
    assert {(s.labels["worker"], s.labels["version"]) for s in models} == {("0", "3"), ("1", "3")}
    assert all(set(s.labels) >= {"worker"} for f in families.values() for s in f.samples)


def test_merging_nothing_is_an_empty_exposition() -> None:
    assert merge_expositions({}) == b""


# -- the supervisor over stand-in workers -----------------------------------------------------


@contextmanager
def supervising(
    count: int, modes: Callable[[int], str], **options: float
) -> Iterator[tuple[Supervisor, list[int]]]:
    """A supervisor of ``count`` stand-in workers running in a thread; on leaving, it is
    stopped and its exit status is appended to the yielded list."""
    fast = {"policy": lambda: RestartPolicy(initial_s=0.1, max_s=0.4), "tick_s": 0.05}
    supervisor = Supervisor(count, standin_launch(modes), **{**fast, **options})
    status: list[int] = []
    thread = threading.Thread(target=lambda: status.append(supervisor.run()), daemon=True)
    thread.start()
    try:
        yield supervisor, status
    finally:
        supervisor.stop()
        thread.join(60)
        for slot in supervisor.slots:
            if slot.process is not None:
                slot.process.kill()


def samples(supervisor: Supervisor, name: str) -> dict[str, float]:
    """Value of ``name`` per worker label in the supervisor's exposition."""
    text = supervisor.exposition().decode()
    return {
        s.labels["worker"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists() or "State:\tZ" in _status(pid)


def _status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return ""


def test_ready_once_every_worker_is_and_one_exposition_for_all() -> None:
    with supervising(2, lambda i: "ready") as (supervisor, status):
        wait_until(lambda: supervisor.ready() == (True, "ok"), "both workers ready", 30)
        assert supervisor.live() == (True, "ok")
        scored = samples(supervisor, "scorer_events_total")
        assert scored == {"0": 1.0, "1": 2.0}  # stand-in i counts i + 1
        assert samples(supervisor, "scorer_worker_restarts_total") == {"0": 0.0, "1": 0.0}
        assert samples(supervisor, "scorer_worker_up") == {"0": 1.0, "1": 1.0}
        pids = samples(supervisor, "scorer_worker_pid")
        assert {int(p) for p in pids.values()} == {w.pid for w in supervisor.workers()}
    assert status == [0]
    assert all(gone(int(pid)) for pid in pids.values())


def test_readiness_names_the_worker_that_is_not_ready() -> None:
    with supervising(3, lambda i: "unready" if i == 1 else "ready") as (supervisor, _):
        wait_until(lambda: "not answering" not in supervisor.ready()[1], "workers answering", 30)
        ok, reason = supervisor.ready()
        assert not ok
        assert reason == "worker 1: delivery failed: refused"
        assert supervisor.live() == (True, "ok")  # not ready is not dead


def test_a_killed_worker_is_restarted_with_the_same_index_and_counted() -> None:
    with supervising(2, lambda i: "ready") as (supervisor, status):
        wait_until(lambda: supervisor.ready()[0], "both workers ready", 30)
        first = supervisor.workers()[0].pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        wait_until(
            lambda: samples(supervisor, "scorer_worker_restarts_total") == {"0": 1.0, "1": 0.0},
            "worker 0 restarted", 30,
        )  # fmt: skip
        wait_until(lambda: supervisor.ready()[0], "worker 0 ready again", 30)
        restarted = supervisor.workers()[0]
        assert restarted.pid not in (None, first) and restarted.last_exit == "signal SIGKILL"
        assert samples(supervisor, "scorer_events_total") == {"0": 1.0, "1": 2.0}
    assert status == [0]  # the restarted worker stopped cleanly


def test_health_while_a_worker_waits_for_its_restart() -> None:
    slow = {"policy": lambda: RestartPolicy(initial_s=30.0, max_s=30.0)}
    with supervising(2, lambda i: "ready", **slow) as (supervisor, _):
        wait_until(lambda: supervisor.ready()[0], "both workers ready", 30)
        pid = supervisor.workers()[1].pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: supervisor.workers()[1].pid is None, "the exit noticed", 30)
        live, reason = supervisor.live()
        assert live and reason.startswith("worker 1: exited with signal SIGKILL, restarting in ")
        ready, reason = supervisor.ready()
        assert not ready and reason.startswith("worker 1: exited with signal SIGKILL")
        assert samples(supervisor, "scorer_worker_up") == {"0": 1.0, "1": 0.0}
        assert set(samples(supervisor, "scorer_events_total")) == {"0"}


def test_a_worker_that_ignores_sigterm_is_killed_and_the_exit_status_is_1(
    caplog: pytest.LogCaptureFixture,
) -> None:
    modes = lambda i: "stubborn" if i == 0 else "ready"  # noqa: E731
    with supervising(2, modes, stop_timeout_s=1.0) as (supervisor, status):
        wait_until(lambda: supervisor.ready()[0], "both workers ready", 30)
        pids = [w.pid for w in supervisor.workers()]
    assert status == [1]
    assert all(pid is not None and gone(pid) for pid in pids)
    assert f"worker 0 (pid {pids[0]}) did not stop within 1 s: killing it" in caplog.text


def test_stopping_means_not_live_and_not_ready() -> None:
    with supervising(1, lambda i: "ready") as (supervisor, _):
        wait_until(lambda: supervisor.ready()[0], "the worker ready", 30)
        supervisor.stop()
        assert supervisor.live() == (False, "shutting down")
        assert supervisor.ready() == (False, "shutting down")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_stops_when_its_supervisor_is_killed(tmp_path: Path) -> None:
    """No orphan keeps consuming: the kernel sends the worker SIGTERM."""
    parent = subprocess.Popen(
        [sys.executable, "-c", (
            "import os, subprocess, sys, time\n"
            "from tests.support.workers import standin_launch\n"
            "worker = subprocess.Popen(standin_launch(lambda i: 'ready').argv(0, 0))\n"
            "print(worker.pid, flush=True)\n"
            "time.sleep(600)\n"
        )],
        cwd=ROOT, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    try:
        wait_until(lambda: "tests.support.workers" in _cmdline(worker), "the worker running", 30)
        parent.kill()
        parent.wait(30)
        wait_until(lambda: gone(worker), "the worker gone with its supervisor", 30)
    finally:
        if not gone(worker):
            os.kill(worker, signal.SIGKILL)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
