"""The workers of ``scorer serve --workers N``: how each is started, restarted and asked.

A worker is an ordinary ``scorer serve`` process in a numbered slot that the supervisor
(:mod:`streams.engine.supervisor`) keeps filled. The slot's number is the worker's identity:
when the user set a static group member id (``group.instance.id``), worker ``i`` runs as
``<id>-w<i>``, before and after every restart, so its exactly-once transactional id stays the
same too and a restarted worker fences its crashed predecessor at once
(:func:`worker_environment`). Each start gets a fresh private metrics port, passed on its
command line, where the supervisor reads the worker's ``/metrics`` and ``/readyz``.

A worker that exits unexpectedly is started again after a backoff (:class:`RestartPolicy`).
On Linux a worker also stops when its supervisor dies, even by SIGKILL: the kernel sends it
SIGTERM (:func:`become_worker`), so no orphan keeps consuming beside a new supervisor.
"""

from __future__ import annotations

import ctypes
import http.client
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from streams.engine.delivery import RetryBackoff

log = logging.getLogger(__name__)

INSTANCE_ID_VARIABLE = "KAFKA_GROUP_INSTANCE_ID"
"""The variable that becomes ``group.instance.id`` (streams.settings); it wins over a file."""
_PR_SET_PDEATHSIG = 1


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def worker_environment(
    environ: Mapping[str, str], index: int, instance_id: str | None
) -> dict[str, str]:
    """The environment of worker ``index``: the supervisor's, with a static member id of its
    own, ``<instance_id>-w<index>``, when one is set.

    >>> worker_environment({"A": "1"}, 1, "scorer-a")
    {'A': '1', 'KAFKA_GROUP_INSTANCE_ID': 'scorer-a-w1'}
    >>> worker_environment({"A": "1"}, 1, None)
    {'A': '1'}
    """
    env = dict(environ)
    if instance_id:
        env[INSTANCE_ID_VARIABLE] = f"{instance_id}-w{index}"
    return env


def free_port() -> int:
    """A TCP port free on every interface now (a worker's HTTP server binds all of them)."""
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        return int(probe.getsockname()[1])


def exit_description(returncode: int) -> str:
    """How a process ended, for a log line.

    >>> exit_description(1), exit_description(-9)
    ('status 1', 'signal SIGKILL')
    """
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"status {returncode}"


class RestartPolicy:
    """How long a worker that exited unexpectedly waits before it is started again: 1 s,
    doubling with each exit up to 30 s; a worker that had run for ``stable_after_s`` before it
    exited starts over at 1 s (a crash an hour later is not part of a crash loop).

    >>> policy = RestartPolicy(initial_s=1.0, max_s=4.0, stable_after_s=60.0)
    >>> [policy.delay(ran_s=2.0) for _ in range(4)]
    [1.0, 2.0, 4.0, 4.0]
    >>> policy.delay(ran_s=60.0), policy.delay(ran_s=0.5)
    (1.0, 2.0)
    """

    def __init__(
        self, initial_s: float = 1.0, max_s: float = 30.0, stable_after_s: float = 60.0
    ) -> None:
        self._backoff = RetryBackoff(initial_s=initial_s, max_s=max_s)
        self.stable_after_s = stable_after_s

    def delay(self, ran_s: float) -> float:
        """The wait before the next start of a worker that ran ``ran_s`` seconds."""
        if ran_s >= self.stable_after_s:
            self._backoff.succeed()
        return self._backoff.fail()


@dataclass(frozen=True)
class WorkerLaunch:
    """What every worker is started with.

    ``argv(index, port)`` is worker ``index``'s command line with its metrics port (-1 when
    the supervisor serves no HTTP, so neither do its workers); ``environ`` and
    ``instance_id`` give its environment (:func:`worker_environment`).
    """

    argv: Callable[[int, int], list[str]]
    environ: Mapping[str, str]
    instance_id: str | None = None
    http: bool = True


class WorkerSlot:
    """Worker ``index``: its process while one runs, else the time it is (re)started at.

    A new slot is due at once; after an exit, :meth:`schedule_restart` sets the next start.
    """

    def __init__(self, index: int, launch: WorkerLaunch, policy: RestartPolicy) -> None:
        self.index = index
        self.launch = launch
        self.policy = policy
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self.start_at: float | None = 0.0
        """Monotonic time of the next start while no process runs (None: none is planned)."""
        self.starts = 0
        self.last_exit = ""
        self._started_at = 0.0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def due(self, now: float) -> bool:
        return self.process is None and self.start_at is not None and now >= self.start_at

    def start(self, now: float) -> None:
        """Start the worker, in a process group of its own (a terminal's Ctrl-C reaches only
        the supervisor, which stops the workers itself). Raises OSError if it cannot."""
        self._started_at = now
        port = free_port() if self.launch.http else -1
        self.process = subprocess.Popen(
            self.launch.argv(self.index, port),
            env=worker_environment(self.launch.environ, self.index, self.launch.instance_id),
            process_group=0,
        )
        self.port = port if self.launch.http else None
        self.start_at = None
        self.starts += 1

    def reap(self) -> int | None:
        """If the process has exited, forget it and return its exit status (else None)."""
        if self.process is None or (code := self.process.poll()) is None:
            return None
        self.process, self.port = None, None
        self.last_exit = exit_description(code)
        return code

    def schedule_restart(self, now: float) -> float:
        """Plan the next start of the worker that just exited (or failed to start) after the
        policy's delay, counted from how long it ran; return the delay."""
        delay = self.policy.delay(now - self._started_at)
        self.start_at = now + delay
        return delay


def worker_get(port: int, path: str, timeout: float) -> tuple[int, bytes]:
    """GET ``path`` from the worker HTTP server on ``port`` (never through a proxy): the
    status and body. Raises OSError when it does not answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    except http.client.HTTPException as exc:
        raise ConnectionError(str(exc) or type(exc).__name__) from exc
    finally:
        connection.close()


def become_worker(index: int, supervisor_pid: int) -> bool:
    """Make this process worker ``index`` of the supervisor ``supervisor_pid``: it is sent
    SIGTERM when the supervisor dies (Linux), and its log records name it (``w<index>``
    before the logger's name).
    False if the supervisor is already gone (the worker should not start)."""
    if sys.platform.startswith("linux"):
        libc: Any = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
    if os.getppid() != supervisor_pid:
        return False
    make_record = logging.getLogRecordFactory()

    def labelled(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        record.name = f"w{index} {record.name}"
        return record

    logging.setLogRecordFactory(labelled)
    return True
