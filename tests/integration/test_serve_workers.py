"""``scorer serve --workers 2`` against the real broker: the supervisor's two workers share the
group's partitions, a SIGKILLed worker is restarted, SIGTERM stops both cleanly; with
``--exactly-once`` each decision is written once, across a restart too.

The supervisor is watched from outside, as an operator would: its one ``/metrics`` (the
workers' samples labelled ``worker``, its own restart counter and worker pids), ``/readyz``,
its log, the group's members and committed offsets.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

from confluent_kafka.admin import AdminClient

from tests.support.kafka import unique, wait_for_members
from tests.support.reliability import (
    EngineProcess,
    OutputReader,
    group_lag,
    produce_in_order,
    static_member,
    valid_records,
)
from tests.support.scorer import ScorerSetup
from tests.support.waiting import wait_until


def start_workers(setup: ScorerSetup, log_dir: Path, *extra: str,
                  env: dict[str, str]) -> EngineProcess:  # fmt: skip
    """``scorer serve --workers 2``, once both workers are ready and own partitions."""
    supervisor = EngineProcess(setup, log_dir, "--workers", "2", "--max-batch", "200", *extra,
                               env=env)  # fmt: skip
    wait_until(lambda: supervisor.readiness()[0] == 200, "both workers ready", 90,
               engines=[supervisor])  # fmt: skip
    wait_for_members(setup.bootstrap, setup.env["SCORER_GROUP_ID"], 2, engines=[supervisor])
    return supervisor


def worker_pid(supervisor: EngineProcess, worker: int) -> int:
    return int(supervisor.metric("scorer_worker_pid", worker=str(worker)))


def gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


def instance_ids(setup: ScorerSetup) -> set[str | None]:
    admin = AdminClient({"bootstrap.servers": setup.bootstrap})
    group = setup.env["SCORER_GROUP_ID"]
    description = admin.describe_consumer_groups([group])[group].result(timeout=10)
    return {m.group_instance_id for m in description.members}


def kill_and_await_restart(setup: ScorerSetup, supervisor: EngineProcess, worker: int) -> int:
    """SIGKILL ``worker``; return its successor's pid once it is ready and in the group."""
    killed = worker_pid(supervisor, worker)
    os.kill(killed, signal.SIGKILL)
    restarted = lambda: supervisor.metric("scorer_worker_restarts_total", worker=str(worker))  # noqa: E731
    wait_until(lambda: restarted() == 1, f"worker {worker} restarted", 60, engines=[supervisor])
    wait_until(lambda: supervisor.readiness()[0] == 200, "both workers ready again", 90,
               engines=[supervisor])  # fmt: skip
    wait_for_members(setup.bootstrap, setup.env["SCORER_GROUP_ID"], 2, engines=[supervisor])
    successor = worker_pid(supervisor, worker)
    assert successor != killed and gone(killed)
    assert f"worker {worker} (pid {killed}) exited with signal SIGKILL: restart 1" in (
        supervisor.log(400)
    )
    return successor


def test_two_workers_share_the_partitions_and_a_killed_one_is_restarted(
    scorer_setup: ScorerSetup, tmp_path: Path
) -> None:
    # Dynamic members (no group.instance.id): a short session lets the group drop the killed
    # worker soon after its successor joins.
    supervisor = start_workers(scorer_setup, tmp_path, env={"KAFKA_SESSION_TIMEOUT_MS": "6000"})
    reader = OutputReader(scorer_setup, "decisions")
    first, first_ids = valid_records(3000, seed=91, run_id="workers-a")
    produce_in_order(scorer_setup, first)
    reader.read_until(lambda r: set(r.event_ids("decisions")) >= set(first_ids),
                      "a decision for every event", engines=[supervisor])  # fmt: skip
    scored = [supervisor.metric("scorer_events_total", worker=str(w), outcome="scored")
              for w in (0, 1)]  # fmt: skip
    assert all(n > 0 for n in scored) and sum(scored) >= len(first_ids), scored  # both scored
    pids = [worker_pid(supervisor, 0), worker_pid(supervisor, 1)]

    pids[0] = kill_and_await_restart(scorer_setup, supervisor, 0)
    assert worker_pid(supervisor, 1) == pids[1]  # the other one went on
    assert supervisor.metric("scorer_worker_restarts_total", worker="1") == 0

    second, second_ids = valid_records(2000, seed=92, run_id="workers-b")
    produce_in_order(scorer_setup, second)
    reader.read_until(lambda r: set(r.event_ids("decisions")) >= set(second_ids),
                      "a decision for every later event", engines=[supervisor])  # fmt: skip
    wait_until(lambda: group_lag(scorer_setup) == 0, "all committed", engines=[supervisor])
    reader.close()

    assert supervisor.terminate() == 0
    assert all(gone(pid) for pid in pids)
    assert group_lag(scorer_setup) == 0
    assert "all workers stopped" in supervisor.log(20)


def test_exactly_once_workers_write_each_decision_once_across_a_restart(
    scorer_setup: ScorerSetup, tmp_path: Path
) -> None:
    # Static members: worker i is <id>-w<i>, so its transactional id survives its restart and
    # the successor fences the killed one.
    member = unique("eos")
    supervisor = start_workers(scorer_setup, tmp_path, "--exactly-once",
                               env=static_member(member))  # fmt: skip
    assert instance_ids(scorer_setup) == {f"{member}-w0", f"{member}-w1"}
    reader = OutputReader(scorer_setup, "decisions", read_committed=True)
    first, first_ids = valid_records(2000, seed=93, run_id="workers-eos-a")
    produce_in_order(scorer_setup, first)
    reader.read_until(lambda r: set(r.event_ids("decisions")) >= set(first_ids),
                      "a decision for every event", engines=[supervisor])  # fmt: skip

    kill_and_await_restart(scorer_setup, supervisor, 1)
    assert instance_ids(scorer_setup) == {f"{member}-w0", f"{member}-w1"}

    second, second_ids = valid_records(2000, seed=94, run_id="workers-eos-b")
    produce_in_order(scorer_setup, second)
    ids = first_ids + second_ids
    reader.read_until(lambda r: set(r.event_ids("decisions")) >= set(ids),
                      "a decision for every later event", engines=[supervisor])  # fmt: skip
    wait_until(lambda: group_lag(scorer_setup) == 0, "all committed", engines=[supervisor])
    reader.settle()
    counts = Counter(reader.event_ids("decisions"))
    reader.close()
    assert supervisor.terminate() == 0

    assert set(counts) == set(ids)
    assert [i for i, n in counts.items() if n > 1] == []  # read_committed: each once
