"""The local Apache Kafka broker: one KRaft node on loopback, for development and tests.

The jars come from Maven Central through ``infra/kafka/pom.xml`` (``make setup`` copies them
to ``infra/kafka/lib``). On first start the storage is formatted with
``kafka.tools.StorageTool``; the server is the class ``kafka.Kafka`` run in the background,
with its pid in ``<home>/broker.pid`` and its output in ``<home>/broker.log``. ``up`` returns
once the broker answers a metadata request.

Nothing here is used when ``KAFKA_BOOTSTRAP_SERVERS`` names an existing cluster.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from string import Template

from schemas.errors import BrokerError
from streams.kafka.clients import answers_metadata
from streams.paths import infra_dir, var_dir
from streams.settings import Settings

JVM_OPTIONS = ("-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-Djava.awt.headless=true")
STARTUP_TIMEOUT_S = 90.0
SHUTDOWN_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    address: str
    version: str


class LocalBroker:
    """Lifecycle of one local broker whose files live under ``home``."""

    def __init__(self, port: int, home: Path | None = None, lib: Path | None = None) -> None:
        self.port = port
        self.controller_port = port + 1
        self.home = home or var_dir() / "kafka"
        self.lib = lib or infra_dir() / "kafka" / "lib"
        self.data_dir = self.home / "data"
        self.pid_file = self.home / "broker.pid"
        self.log_file = self.home / "broker.log"
        self.properties_file = self.home / "server.properties"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def version(self) -> str:
        """The Apache Kafka version of the jars (``kafka_2.13-<version>.jar``)."""
        jars = sorted(self.lib.glob("kafka_2.13-*.jar"))
        return jars[0].stem.removeprefix("kafka_2.13-") if jars else "unknown"

    def pid(self) -> int | None:
        """The pid of the running broker, or None (a stale pid file is removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if _alive(pid) and _is_kafka(pid):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def status(self) -> BrokerStatus:
        pid = self.pid()
        return BrokerStatus(pid is not None, pid, self.address, self.version)

    def up(self, timeout: float = STARTUP_TIMEOUT_S) -> BrokerStatus:
        """Start the broker in the background and wait until it answers; refuse a second copy."""
        running = self.pid()
        if running is not None:
            raise BrokerError(
                f"a local broker is already running (pid {running}) at {self.address}"
            )
        for port in (self.port, self.controller_port):
            if _port_taken(port):
                raise BrokerError(
                    f"port {port} on 127.0.0.1 is taken by another process; stop it or set "
                    "SCORER_BROKER_PORT to another port (the controller uses the next one)"
                )
        java = self._java()
        self.home.mkdir(parents=True, exist_ok=True)
        self._render_properties()
        if not (self.data_dir / "meta.properties").exists():
            self._format_storage(java)
        with open(self.log_file, "ab") as log:
            process = subprocess.Popen(
                [java, *JVM_OPTIONS, *self._log_options(), "-cp", self._classpath(),
                 "kafka.Kafka", str(self.properties_file)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        self.pid_file.write_text(f"{process.pid}\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise BrokerError(
                    f"the broker exited with status {process.returncode} while starting; "
                    f"last lines of {self.log_file}:\n{self.tail_log()}"
                )
            if answers_metadata(Settings(bootstrap_servers=self.address), timeout=1.0):
                return self.status()
            time.sleep(0.25)
        self._stop_pid(process.pid)
        raise BrokerError(
            f"the broker did not answer at {self.address} within {timeout:.0f}s; "
            f"last lines of {self.log_file}:\n{self.tail_log()}"
        )

    def down(self, timeout: float = SHUTDOWN_TIMEOUT_S) -> bool:
        """Stop the broker cleanly (SIGTERM, then SIGKILL after ``timeout``); False if none ran."""
        pid = self.pid()
        if pid is None:
            return False
        self._stop_pid(pid, timeout)
        self.pid_file.unlink(missing_ok=True)
        return True

    def tail_log(self, lines: int = 20) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _java(self) -> str:
        if not any(self.lib.glob("kafka_2.13-*.jar")):
            raise BrokerError(
                f"the Kafka jars are missing from {self.lib}; run `make setup` to fetch them"
            )
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
        if not java or not Path(java).exists():
            raise BrokerError("java was not found; install Java 17+ or set JAVA_HOME")
        return java

    def _classpath(self) -> str:
        return str(self.lib / "*")

    def _log_options(self) -> list[str]:
        config = infra_dir() / "kafka" / "log4j2.yaml"
        return [f"-Dlog4j2.configurationFile={config}", f"-Dkafka.logs.dir={self.home}"]

    def _render_properties(self) -> None:
        template = Template((infra_dir() / "kafka" / "server.properties.template").read_text())
        self.properties_file.write_text(
            template.substitute(
                port=self.port, controller_port=self.controller_port, data_dir=self.data_dir
            )
        )

    def _format_storage(self, java: str) -> None:
        base = [java, *self._log_options(), "-cp", self._classpath(), "kafka.tools.StorageTool"]
        cluster_id = _run([*base, "random-uuid"]).strip().splitlines()[-1]
        _run([*base, "format", "--standalone", "-t", cluster_id, "-c", str(self.properties_file)])

    @staticmethod
    def _stop_pid(pid: int, timeout: float = SHUTDOWN_TIMEOUT_S) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)


def free_port_pair() -> int:
    """A port p such that p and p + 1 (the controller's) are both free on 127.0.0.1."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port < 65535 and not _port_taken(port + 1):
            return port
    raise BrokerError("no free pair of ports on 127.0.0.1")


def _run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()[-10:]
        raise BrokerError(f"{command[-1]} failed: " + "\n".join(output))
    return result.stdout


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reap our own child if it exited
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_kafka(pid: int) -> bool:
    try:
        return b"kafka.Kafka" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: trust the pid file


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False
