"""The embedded Apache Kafka broker: a real single-node KRaft broker on this machine.

The pinned Kafka jars are resolved from Maven Central by ``deploy/local/pom.xml``
into a cache outside the repository (once); the broker runs as
``java -cp <jars> kafka.Kafka server.properties`` with its storage formatted by
``kafka.tools.StorageTool``. Shared by ``refnet dev`` and the test fixtures.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from string import Template
from typing import Any

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
POM = HERE / "pom.xml"
PROPERTIES_TEMPLATE = HERE / "server.properties.template"
LOG4J_CONFIG = HERE / "log4j2.properties"
STATE_FILE = "broker.json"
#: How long a broker that was ready, still runs and no longer answers is given
#: before it counts as hung (and ``start`` replaces it).
HUNG_GRACE_SECONDS = 3.0


class BrokerError(RuntimeError):
    """The embedded broker could not be prepared, started or stopped."""


@dataclass(frozen=True)
class BrokerState:
    pid: int
    host: str
    port: int
    controller_port: int
    started_at: float
    #: when it first answered (None while starting): one that answered once and no
    #: longer does is hung, not slow to start
    ready_at: float | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def require_tool(name: str, why: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BrokerError(
            f"'{name}' was not found on PATH: it is needed {why}. "
            "Install Java 17+ and Apache Maven "
            "(Debian: apt-get install openjdk-17-jdk-headless maven), "
            "or point REFNET_KAFKA_BOOTSTRAP at a running Kafka cluster."
        )
    return path


def ensure_jars(cache_dir: Path, version: str, *, progress: bool = True) -> Path:
    """Resolve the Kafka jars into ``cache_dir/kafka-<version>/libs`` once; return that dir.

    A marker file holds a digest of the pom and version, so editing the pom
    resolves again; a half-finished download is never used.
    """
    home = cache_dir / f"kafka-{version}"
    libs = home / "libs"
    digest = hashlib.sha256(POM.read_bytes() + version.encode()).hexdigest()[:16]
    marker = home / ".resolved"
    if marker.exists() and marker.read_text().strip() == digest and any(libs.glob("kafka_*.jar")):
        return libs
    mvn = require_tool("mvn", "to resolve the Kafka jars from Maven Central (first run only)")
    require_tool("java", "to run the Kafka broker")
    home.mkdir(parents=True, exist_ok=True)
    staging = home / "libs.partial"
    shutil.rmtree(staging, ignore_errors=True)
    if progress:
        print(  # noqa: T201 - progress of a long first-run download
            f"refnet: resolving Apache Kafka {version} jars from Maven Central into {libs} "
            "(first run only, about a minute)...",
            file=sys.stderr,
            flush=True,
        )
    cmd = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(POM),
        f"-Dkafka.version={version}",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    if proc.returncode != 0 or not any(staging.glob("kafka_*.jar")):
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise BrokerError(f"Maven could not resolve Kafka {version}:\n{tail}")
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    marker.write_text(digest + "\n")
    return libs


def _kafka_uuid() -> str:
    """A cluster id as Kafka makes them: never starting with '-' (read as an option)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Ask Linux to SIGTERM this child when the process that started it dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def process_cmdline(pid: int) -> list[str] | None:
    """The command line of a running process, or None (no such process, or a zombie)."""
    proc = Path("/proc") / str(pid)
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes()
    except OSError:
        return None
    # "pid (comm) S ...": the state follows the last ')' (comm may hold one)
    state = stat[stat.rfind(")") + 1 :].split()[:1]
    if not state or state[0] in {"Z", "X", "x"}:
        return None
    return [arg.decode(errors="replace") for arg in cmdline.split(b"\0") if arg]


def _reap(pid: int) -> None:
    """Collect the exit status of a child of ours that has exited (else it stays a zombie)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped) does not count."""
    _reap(pid)
    if Path("/proc").is_dir():
        return process_cmdline(pid) is not None
    try:  # pragma: no cover - without /proc
        os.kill(pid, 0)
    except ProcessLookupError:  # pragma: no cover
        return False
    except PermissionError:  # pragma: no cover
        return True
    return True  # pragma: no cover


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts a TCP connection at ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def cluster_id(bootstrap: str, timeout: float = 1.5) -> str | None:
    """The cluster id of the Kafka that answers a metadata request at ``bootstrap``, or None."""
    from confluent_kafka.admin import AdminClient

    quiet = logging.getLogger("refnet.broker.librdkafka")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    config: dict[str, Any] = {"bootstrap.servers": bootstrap, "logger": quiet, "log_level": 0}
    admin = AdminClient(config)
    try:
        meta = admin.list_topics(timeout=timeout)
    except Exception:  # noqa: BLE001 - any failure means "does not answer"
        return None
    if not meta.brokers:
        return None
    return str(meta.cluster_id or "")


def metadata_ready(bootstrap: str, timeout: float = 1.0) -> bool:
    """True when the broker answers a metadata request and lists itself."""
    return cluster_id(bootstrap, timeout=timeout) is not None


class LocalBroker:
    """A single-node KRaft broker whose state lives in ``data_dir``."""

    def __init__(
        self,
        data_dir: Path,
        *,
        cache_dir: Path,
        version: str = "4.3.1",
        host: str = "127.0.0.1",
        port: int = 9092,
        heap: str = "512m",
    ) -> None:
        self.data_dir = data_dir.absolute()  # the broker's command line names it: see _is_ours
        self.cache_dir = cache_dir
        self.version = version
        self.host = host
        self.port = port
        self.heap = heap
        self._proc: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ paths
    @property
    def state_path(self) -> Path:
        return self.data_dir / STATE_FILE

    @property
    def log_path(self) -> Path:
        return self.data_dir / "logs" / "server.log"

    @property
    def console_path(self) -> Path:
        return self.data_dir / "logs" / "console.log"

    @property
    def properties_path(self) -> Path:
        return self.data_dir / "server.properties"

    # ------------------------------------------------------------------ state
    def recorded(self) -> BrokerState | None:
        """The broker recorded in ``data_dir`` by the last start, whether or not it still runs."""
        try:
            return BrokerState(**json.loads(self.state_path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def state(self) -> BrokerState | None:
        """The recorded broker, if it answers at its address (within about 2 s); else None.

        A recorded pid proves nothing: the process may have died (a zombie keeps its
        pid until reaped) or the pid may belong to another program by now.
        """
        recorded = self.recorded()
        if recorded is None or not self.answers(recorded):
            return None
        return recorded

    def cluster_id(self) -> str | None:
        """The cluster id this data dir was formatted with (kraft/meta.properties)."""
        with contextlib.suppress(OSError):
            for line in (self.data_dir / "kraft" / "meta.properties").read_text().splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "cluster.id":
                    return value.strip()
        return None

    def answers(self, state: BrokerState, *, timeout: float = 1.5) -> bool:
        """True when a Kafka broker of this data dir's cluster answers at ``state.bootstrap``."""
        if not port_open(state.host, state.port, timeout=0.5):
            return False
        found = cluster_id(state.bootstrap, timeout=timeout)
        if found is None:
            return False
        expected = self.cluster_id()
        # another cluster on the recorded port (ours died, its port was reused) is not ours
        return expected is None or not found or found == expected

    def _is_ours(self, pid: int) -> bool:
        """True when ``pid`` runs this data dir's ``java ... kafka.Kafka server.properties``."""
        cmdline = process_cmdline(pid)
        return (
            cmdline is not None
            and "kafka.Kafka" in cmdline
            and str(self.properties_path) in cmdline
        )

    def _kill(self, pid: int, *, timeout: float) -> None:
        """SIGTERM ``pid``, SIGKILL after ``timeout``; return once it is gone."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            os.kill(pid, signal.SIGCONT)  # a stopped process acts on SIGTERM only once continued
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)

    def _discard_stale(self, recorded: BrokerState, *, timeout: float) -> BrokerState | None:
        """Deal with a recorded broker that does not answer (yet).

        One still starting (ours, never ready, started less than ``timeout`` ago) is
        waited for, and returned once it answers; one that was ready gets a short
        grace. Otherwise: if the recorded pid still runs our broker (hung), it is
        stopped; the state file is removed; None is returned.
        """
        if recorded.ready_at is None:
            grace = recorded.started_at + timeout - time.time()
        else:
            grace = HUNG_GRACE_SECONDS
        wait_until = time.monotonic() + min(timeout, grace)
        while self._is_ours(recorded.pid) and time.monotonic() < wait_until:
            if self.answers(recorded):
                return recorded
            time.sleep(0.2)
        if self._is_ours(recorded.pid):
            log.warning(
                "the recorded Kafka broker (pid %d) runs but does not answer on %s: stopping it",
                recorded.pid,
                recorded.bootstrap,
            )
            self._kill(recorded.pid, timeout=10.0)
        else:
            log.warning(
                "the recorded Kafka broker (pid %d, %s) is gone: starting a new one",
                recorded.pid,
                recorded.bootstrap,
            )
        self.state_path.unlink(missing_ok=True)
        return None

    def start(self, *, timeout: float = 90.0, tie_to_parent: bool = False) -> BrokerState:
        """Start the broker (or return the one already running) and wait until ready.

        A recorded broker that does not answer is replaced: stopped first if its
        process still runs. ``tie_to_parent`` makes the JVM exit when this Python
        process dies (tests); ``refnet dev up`` leaves it running on its own.
        """
        recorded = self.recorded()
        if recorded is not None:
            if self.answers(recorded):
                return recorded
            running = self._discard_stale(recorded, timeout=timeout)
            if running is not None:
                return running
        java = require_tool("java", "to run the Kafka broker")
        libs = ensure_jars(self.cache_dir, self.version)
        port = self.port or free_port(self.host)
        if port_in_use(self.host, port):
            raise BrokerError(
                f"port {self.host}:{port} is already in use by another program; set "
                "REFNET_KAFKA_PORT to a free port (0 picks one), or REFNET_KAFKA_BOOTSTRAP "
                "to use that Kafka"
            )
        controller_port = free_port(self.host)
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        kraft_dir = self.data_dir / "kraft"
        properties = self.properties_path
        properties.write_text(
            Template(PROPERTIES_TEMPLATE.read_text()).substitute(
                host=self.host,
                port=port,
                controller_port=controller_port,
                log_dirs=str(kraft_dir),
            )
        )
        classpath = f"{libs}/*"
        jvm = [
            java,
            f"-Xmx{self.heap}",
            "-Xms128m",
            "-XX:+UseG1GC",
            "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            f"-Dkafka.logs.dir={self.data_dir / 'logs'}",
            "-cp",
            classpath,
        ]
        if not (kraft_dir / "meta.properties").exists():
            fmt = subprocess.run(  # noqa: S603
                [
                    *jvm,
                    "kafka.tools.StorageTool",
                    "format",
                    "--ignore-formatted",
                    "-t",
                    _kafka_uuid(),
                    "-c",
                    str(properties),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if fmt.returncode != 0:
                raise BrokerError(f"formatting Kafka storage failed:\n{fmt.stdout}{fmt.stderr}")
        started = time.monotonic()
        with self.console_path.open("ab") as console:
            self._proc = subprocess.Popen(  # noqa: S603
                [*jvm, "kafka.Kafka", str(properties)],
                stdout=console,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent if tie_to_parent else None,
            )
        state = BrokerState(
            pid=self._proc.pid,
            host=self.host,
            port=port,
            controller_port=controller_port,
            started_at=time.time(),
        )
        self.state_path.write_text(json.dumps(asdict(state)))
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self.state_path.unlink(missing_ok=True)
                raise BrokerError(
                    f"the Kafka broker exited with code {self._proc.returncode} while starting; "
                    f"last lines of {self.log_path}:\n{self._tail()}"
                )
            if metadata_ready(state.bootstrap, timeout=0.5):
                log.info(
                    "kafka broker ready on %s in %.1fs", state.bootstrap, time.monotonic() - started
                )
                state = replace(state, ready_at=time.time())
                self.state_path.write_text(json.dumps(asdict(state)))
                return state
            time.sleep(0.1)
        self.stop()
        raise BrokerError(f"the Kafka broker was not ready after {timeout:.0f}s:\n{self._tail()}")

    def stop(self, *, timeout: float = 30.0) -> bool:
        """Stop the recorded broker; SIGKILL after ``timeout``. True if one was running.

        Only a process that runs this data dir's broker is signalled: a recorded pid
        that is gone, a zombie or another program's is left alone.
        """
        recorded = self.recorded()
        self.state_path.unlink(missing_ok=True)
        stopped = False
        if recorded is not None and self._is_ours(recorded.pid):
            self._kill(recorded.pid, timeout=timeout)
            stopped = True
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=1)
            self._proc = None
        return stopped

    def _tail(self, lines: int = 30) -> str:
        texts = []
        for path in (self.log_path, self.console_path):
            with contextlib.suppress(OSError):
                texts.append("\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(texts)
