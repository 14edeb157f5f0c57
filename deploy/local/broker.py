"""The embedded Apache Kafka: real KRaft brokers on this machine (one, or a cluster).

The pinned Kafka jars are resolved from Maven Central by ``deploy/local/pom.xml``
into a cache outside the repository (once); each node runs as
``java -cp <jars> kafka.Kafka server.properties`` with its storage formatted by
``kafka.tools.StorageTool``. Shared by ``refnet dev`` and the test fixtures.

A data dir holds one cluster: one node (the default) or several
(``refnet dev up --brokers 3``), plain or secure (``--secure``: SASL_SSL with
SCRAM, a local CA, the StandardAuthorizer; see :mod:`deploy.local.kraft`).
What it was formatted as is kept in ``layout.json``; asking a data dir for
another layout is refused (its topics and credentials would not fit).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import time
from dataclasses import asdict, replace
from pathlib import Path

from connectors.kafka.auth import PLAINTEXT, KafkaAuth
from deploy.local.ca import CaError, ensure_tls
from deploy.local.kraft import OPERATOR, SCRAM_MECHANISM, NodePorts, render
from deploy.local.operator import OPERATOR_FILE, OperatorFile
from deploy.local.runtime import (
    PRIVATE_UMASK,
    BrokerError,
    _alive,
    _die_with_parent,
    _kafka_uuid,
    ensure_jars,
    free_port,
    port_in_use,
    port_open,
    private_dir,
    process_cmdline,
    require_tool,
    start_java,
)
from deploy.local.state import (
    LAYOUT_FILE,
    STATE_FILE,
    BrokerState,
    Layout,
    NodeState,
    cluster_id,
    metadata_ready,
)

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
LOG4J_CONFIG = HERE / "log4j2.properties"
#: How long a broker that was ready, still runs and no longer answers is given
#: before it counts as hung (and ``start`` replaces it).
HUNG_GRACE_SECONDS = 3.0


class LocalBroker:
    """A KRaft cluster of ``brokers`` nodes whose state lives in ``data_dir``."""

    def __init__(
        self,
        data_dir: Path,
        *,
        cache_dir: Path,
        version: str = "4.3.1",
        host: str = "127.0.0.1",
        port: int = 9092,
        heap: str = "512m",
        brokers: int = 1,
        secure: bool = False,
    ) -> None:
        if brokers < 1:
            raise BrokerError(f"a cluster needs at least one broker, not {brokers}")
        self.data_dir = data_dir.absolute()  # the broker's command line names it: see _is_ours
        self.cache_dir = cache_dir
        self.version = version
        self.host = host
        self.port = port
        self.heap = heap
        self.brokers = brokers
        self.secure = secure
        self._procs: list[subprocess.Popen[bytes]] = []
        self._operator = OperatorFile(self.operator_path, self.ca_path)

    # ------------------------------------------------------------------ paths
    @property
    def state_path(self) -> Path:
        return self.data_dir / STATE_FILE

    def node_dir(self, node_id: int = 1) -> Path:
        """Node 1 lives in the data dir itself, node N in ``node-N/``."""
        return self.data_dir if node_id == 1 else self.data_dir / f"node-{node_id}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "logs" / "server.log"

    @property
    def console_path(self) -> Path:
        return self.data_dir / "logs" / "console.log"

    @property
    def properties_path(self) -> Path:
        return self.node_properties(1)

    def node_properties(self, node_id: int) -> Path:
        return self.node_dir(node_id) / "server.properties"

    @property
    def layout_path(self) -> Path:
        return self.data_dir / LAYOUT_FILE

    @property
    def operator_path(self) -> Path:
        """The operator's credentials file (secure mode), librdkafka keys in ``kafka``."""
        return self.data_dir / OPERATOR_FILE

    @property
    def ca_path(self) -> Path:
        """The local CA's certificate (secure mode): what clients trust."""
        return self.data_dir / "tls" / "ca.pem"

    # ------------------------------------------------------------------ state
    def recorded(self) -> BrokerState | None:
        """The cluster recorded in ``data_dir`` by the last start, whether or not it still runs."""
        try:
            return BrokerState.from_json(self.state_path.read_text())
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def state(self) -> BrokerState | None:
        """The recorded cluster, if it answers at its address (within about 2 s); else None.

        A recorded pid proves nothing: the process may have died (a zombie keeps its
        pid until reaped) or the pid may belong to another program by now.
        """
        recorded = self.recorded()
        if recorded is None or not self.answers(recorded):
            return None
        return recorded

    def layout(self) -> Layout | None:
        """What this data dir was formatted as (None: never formatted)."""
        with contextlib.suppress(OSError, ValueError, TypeError):
            return Layout(**json.loads(self.layout_path.read_text()))
        if (self.data_dir / "kraft" / "meta.properties").exists():
            return Layout()  # formatted without a layout file: one plain node
        return None

    def cluster_id(self) -> str | None:
        """The cluster id this data dir was formatted with (kraft/meta.properties)."""
        with contextlib.suppress(OSError):
            for line in (self.data_dir / "kraft" / "meta.properties").read_text().splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "cluster.id":
                    return value.strip()
        return None

    def auth(self, state: BrokerState | None = None) -> KafkaAuth:
        """How the operator connects: PLAINTEXT, or (secure) SCRAM as ``refnet-operator``."""
        secure = state.secure if state is not None else self.secure
        if not secure:
            return PLAINTEXT
        try:
            return KafkaAuth.from_file(self.operator_path)[1]
        except ValueError as exc:
            raise BrokerError(f"the operator's credentials cannot be read: {exc}") from None

    def answers(self, state: BrokerState, *, timeout: float = 1.5) -> bool:
        """True when a Kafka broker of this data dir's cluster answers at ``state.bootstrap``."""
        if not any(port_open(state.host, n.port, timeout=0.5) for n in state.all_nodes):
            return False
        try:
            auth = self.auth(state)
        except BrokerError:
            return False
        found = cluster_id(state.bootstrap, timeout=timeout, auth=auth)
        if found is None:
            return False
        expected = self.cluster_id()
        # another cluster on the recorded port (ours died, its port was reused) is not ours
        return expected is None or not found or found == expected

    def _is_ours(self, pid: int, node_id: int = 1) -> bool:
        """True when ``pid`` runs this data dir's ``java ... kafka.Kafka server.properties``."""
        cmdline = process_cmdline(pid)
        return (
            cmdline is not None
            and "kafka.Kafka" in cmdline
            and str(self.node_properties(node_id)) in cmdline
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

    def _ours_running(self, recorded: BrokerState) -> list[NodeState]:
        return [n for n in recorded.all_nodes if self._is_ours(n.pid, n.node_id)]

    def _discard_stale(self, recorded: BrokerState, *, timeout: float) -> BrokerState | None:
        """Deal with a recorded cluster that does not answer (yet).

        One still starting (ours, never ready, started less than ``timeout`` ago) is
        waited for, and returned once it answers; one that was ready gets a short
        grace. Otherwise: nodes that still run our broker (hung) are stopped; the
        state file is removed; None is returned.
        """
        if recorded.ready_at is None:
            grace = recorded.started_at + timeout - time.time()
        else:
            grace = HUNG_GRACE_SECONDS
        wait_until = time.monotonic() + min(timeout, grace)
        while self._ours_running(recorded) and time.monotonic() < wait_until:
            if self.answers(recorded):
                return recorded
            time.sleep(0.2)
        hung = self._ours_running(recorded)
        if hung:
            log.warning(
                "the recorded Kafka broker (pid %s) runs but does not answer on %s: stopping it",
                ", ".join(str(n.pid) for n in hung),
                recorded.bootstrap,
            )
            for node in hung:
                self._kill(node.pid, timeout=10.0)
        else:
            log.warning(
                "the recorded Kafka broker (pid %d, %s) is gone: starting a new one",
                recorded.pid,
                recorded.bootstrap,
            )
        self.state_path.unlink(missing_ok=True)
        return None

    def _check_layout(self, running: BrokerState | None = None) -> None:
        wanted = Layout(self.brokers, self.secure)
        if running is not None:
            have = Layout(len(running.all_nodes), running.secure)
            if have != wanted:
                raise BrokerError(
                    f"the embedded Kafka in {self.data_dir} runs as {have.describe()}, not "
                    f"{wanted.describe()}: stop it first ('refnet dev down')"
                )
            return
        formatted = self.layout()
        if formatted is not None and formatted != wanted:
            raise BrokerError(
                f"the embedded Kafka in {self.data_dir} was made as {formatted.describe()}, not "
                f"{wanted.describe()}; start it as it was, or remove {self.data_dir} to make a "
                "new one (its topics, offsets and credentials are lost)"
            )

    def start(self, *, timeout: float = 90.0, tie_to_parent: bool = False) -> BrokerState:
        """Start the cluster (or return the one already running) and wait until ready.

        A recorded cluster that does not answer is replaced: its nodes are stopped
        first if their processes still run. ``tie_to_parent`` makes the JVMs exit when
        this Python process dies (tests); ``refnet dev up`` leaves them running.
        """
        recorded = self.recorded()
        if recorded is not None:
            if self.answers(recorded):
                self._check_layout(recorded)
                return recorded
            running = self._discard_stale(recorded, timeout=timeout)
            if running is not None:
                self._check_layout(running)
                return running
        self._check_layout()
        java = require_tool("java", "to run the Kafka broker")
        libs = ensure_jars(self.cache_dir, self.version)
        nodes = self._ports()
        tls = None
        private_dir(self.data_dir)
        if self.secure:
            try:
                tls = ensure_tls(private_dir(self.data_dir / "tls"), self.host)
            except CaError as exc:
                raise BrokerError(str(exc)) from None
        for node in nodes:
            directory = self.node_dir(node.node_id)
            for made in (directory, directory / "logs", directory / "kraft"):
                private_dir(made)
            self.node_properties(node.node_id).write_text(
                render(
                    host=self.host,
                    node=node,
                    nodes=nodes,
                    log_dirs=directory / "kraft",
                    tls=tls,
                )
            )
        self._format(java, libs, nodes)
        started = time.monotonic()
        self._procs = [self._launch(java, libs, node, tie_to_parent) for node in nodes]
        first = nodes[0]
        state = BrokerState(
            pid=self._procs[0].pid,
            host=self.host,
            port=first.port,
            controller_port=first.controller_port,
            started_at=time.time(),
            secure=self.secure,
            nodes=tuple(
                NodeState(n.node_id, proc.pid, n.port, n.controller_port, n.internal_port)
                for n, proc in zip(nodes, self._procs, strict=True)
            ),
        )
        self.state_path.write_text(json.dumps(asdict(state)))
        if self.secure:
            self._operator.write(state.bootstrap)
        auth = self.auth(state)
        deadline = started + timeout
        while time.monotonic() < deadline:
            for node, proc in zip(nodes, self._procs, strict=True):
                if proc.poll() is not None:
                    self.stop()
                    raise BrokerError(
                        f"Kafka node {node.node_id} exited with code {proc.returncode} while "
                        f"starting; last lines of its log:\n{self._tail(node.node_id)}"
                    )
            if metadata_ready(state.bootstrap, timeout=0.5, auth=auth, brokers=len(nodes)):
                log.info("kafka ready on %s in %.1fs", state.bootstrap, time.monotonic() - started)
                state = replace(state, ready_at=time.time())
                self.state_path.write_text(json.dumps(asdict(state)))
                return state
            time.sleep(0.1)
        self.stop()
        raise BrokerError(f"the Kafka broker was not ready after {timeout:.0f}s:\n{self._tail()}")

    def _ports(self) -> list[NodePorts]:
        """Client ports ``port``, ``port+1``, ... (or free ones for port 0); others free."""
        nodes = []
        taken: set[int] = set()

        def fresh() -> int:
            while True:
                port = free_port(self.host)
                if port not in taken:
                    taken.add(port)
                    return port

        for node_id in range(1, self.brokers + 1):
            port = self.port + node_id - 1 if self.port else fresh()
            taken.add(port)
            if self.port and port_in_use(self.host, port):
                raise BrokerError(
                    f"port {self.host}:{port} is already in use by another program; set "
                    "REFNET_KAFKA_PORT to a free port (0 picks one), or REFNET_KAFKA_BOOTSTRAP "
                    "to use that Kafka"
                )
            internal = fresh() if self.secure else None
            nodes.append(NodePorts(node_id, port, fresh(), internal))
        return nodes

    def _jvm(self, java: str, libs: Path, node_id: int) -> list[str]:
        return [
            java,
            f"-Xmx{self.heap}",
            "-Xms64m",
            "-XX:+UseG1GC",
            "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            f"-Dkafka.logs.dir={self.node_dir(node_id) / 'logs'}",
            "-cp",
            f"{libs}/*",
        ]

    def _format(self, java: str, libs: Path, nodes: list[NodePorts]) -> None:
        """Format the storage of every node not formatted yet, with one cluster id.

        A secure cluster's operator gets its SCRAM credentials here, in the
        cluster's first metadata (no unauthenticated door is ever opened).
        """
        pending = [
            n
            for n in nodes
            if not (self.node_dir(n.node_id) / "kraft" / "meta.properties").exists()
        ]
        if not pending:
            return
        cluster = self.cluster_id() or _kafka_uuid()
        extra: list[str] = []
        if self.secure:
            password = self._operator.password()
            extra = ["--add-scram", f"{SCRAM_MECHANISM}=[name={OPERATOR},password={password}]"]
        # each command is in an owner-only argument file: the password is never on a
        # command line (/proc/*/cmdline is readable by every local user)
        procs = [
            (
                node,
                start_java(
                    java,
                    self.node_dir(node.node_id) / "format.args",
                    [
                        *self._jvm(java, libs, node.node_id)[1:],
                        "kafka.tools.StorageTool",
                        "format",
                        "--ignore-formatted",
                        *("-t", cluster, "-c", str(self.node_properties(node.node_id))),
                        *extra,
                    ],
                ),
            )
            for node in pending
        ]
        failures = []
        for node, (proc, argfile) in procs:
            try:
                out, _ = proc.communicate()
            finally:
                argfile.unlink(missing_ok=True)
            if proc.returncode != 0:
                text = out.decode(errors="replace")
                if self.secure:
                    text = text.replace(self._operator.password(), "***")
                failures.append(f"node {node.node_id}:\n{text}")
        if failures:
            raise BrokerError("formatting Kafka storage failed:\n" + "\n".join(failures))
        self.layout_path.write_text(json.dumps(asdict(Layout(self.brokers, self.secure))))

    def _launch(
        self, java: str, libs: Path, node: NodePorts, tie_to_parent: bool
    ) -> subprocess.Popen[bytes]:
        console_path = self.node_dir(node.node_id) / "logs" / "console.log"
        fd = os.open(console_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "ab") as console:
            return subprocess.Popen(  # noqa: S603
                [
                    *self._jvm(java, libs, node.node_id),
                    "kafka.Kafka",
                    str(self.node_properties(node.node_id)),
                ],
                stdout=console,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                umask=PRIVATE_UMASK,
                preexec_fn=_die_with_parent if tie_to_parent else None,
            )

    # ------------------------------------------------------------------ stop
    def stop(self, *, timeout: float = 30.0) -> bool:
        """Stop the recorded cluster; SIGKILL after ``timeout``. True if a node was running.

        Only a process that runs this data dir's broker is signalled: a recorded pid
        that is gone, a zombie or another program's is left alone.
        """
        recorded = self.recorded()
        self.state_path.unlink(missing_ok=True)
        stopped = False
        if recorded is not None:
            running = self._ours_running(recorded)
            for node in running:  # SIGTERM to all first: they shut down side by side
                with contextlib.suppress(ProcessLookupError):
                    os.kill(node.pid, signal.SIGTERM)
            for node in running:
                self._kill(node.pid, timeout=timeout)
            stopped = bool(running)
        for proc in self._procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1)
        self._procs = []
        return stopped

    def _tail(self, node_id: int = 1, lines: int = 30) -> str:
        texts = []
        logs = self.node_dir(node_id) / "logs"
        for path in (logs / "server.log", logs / "console.log"):
            with contextlib.suppress(OSError):
                texts.append("\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(texts)
