"""What running Kafka's JVMs on this machine takes: Java, the pinned jars, ports, processes."""

from __future__ import annotations

import base64
import contextlib
import ctypes
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

from schemas.errors import RefnetError

HERE = Path(__file__).resolve().parent
POM = HERE / "pom.xml"


class BrokerError(RefnetError, RuntimeError):
    """The embedded broker could not be prepared, started or stopped."""


#: what the embedded servers create is readable by their owner only
PRIVATE_UMASK = 0o077


def private_dir(path: Path) -> Path:
    """``path`` as a directory only its owner can enter (made, or narrowed, to 0700)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def write_argfile(path: Path, args: list[str]) -> None:
    """A Java launcher argument file (``java @path``), mode 0600 from its first byte:
    one quoted argument per line, so that no argument shows on a command line."""

    def quoted(arg: str) -> str:
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'

    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("".join(quoted(arg) + "\n" for arg in args))


def start_java(java: str, argfile: Path, args: list[str]) -> tuple[subprocess.Popen[bytes], Path]:
    """Run ``java @argfile`` (``args`` written there, owner-only) under umask 077, its
    output piped; the caller removes ``argfile`` once the process is done."""
    write_argfile(argfile, args)
    proc = subprocess.Popen(  # noqa: S603
        [java, f"@{argfile}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        umask=PRIVATE_UMASK,
    )
    return proc, argfile


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
