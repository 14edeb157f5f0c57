"""The embedded PostgreSQL server: a real server shipped by the ``pgserver`` package.

It listens on a Unix socket inside its data directory (no TCP port to clash
with), and is left running between ``refnet dev up`` and ``refnet dev down``.
A server counts as running only when it accepts connections: the pid in
``postmaster.pid`` may be a zombie's or, after a crash, another program's.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.local.runtime import private_dir, process_cmdline
from schemas.errors import RefnetError

log = logging.getLogger(__name__)


class DatabaseError(RefnetError, RuntimeError):
    """The embedded PostgreSQL server could not be started or stopped."""


def _pgserver() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI)
        warnings.simplefilter("ignore")
        import pgserver

        return pgserver


def _pg_isready() -> str | None:
    """pgserver's own ``pg_isready`` (found without importing pgserver), else the PATH's."""
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.origin is not None:
        candidate = Path(spec.origin).parent / "pginstall" / "bin" / "pg_isready"
        if candidate.exists():
            return str(candidate)
    return shutil.which("pg_isready")


@dataclass(frozen=True)
class Postmaster:
    """What ``postmaster.pid`` records: pid, data dir, start time, port, socket dir, ..."""

    pid: int
    port: int
    socket_dir: str

    @property
    def host(self) -> str:
        return self.socket_dir or "127.0.0.1"

    @property
    def url(self) -> str:
        return f"postgresql://postgres:@/postgres?host={self.host}&port={self.port}"


def accepts_connections(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when a PostgreSQL server at ``host`` (socket dir or address) accepts connections."""
    tool = _pg_isready()
    if tool is not None:
        seconds = str(max(1, round(timeout)))
        try:
            done = subprocess.run(  # noqa: S603
                [tool, "-q", "-h", host, "-p", str(port), "-U", "postgres", "-t", seconds],
                capture_output=True,
                timeout=timeout + 2,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0  # 1: starting or shutting down, 2: no answer
    # no pg_isready: a server that answers an SSLRequest ('S' or 'N') is there
    try:
        if host.startswith("/"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(str(Path(host) / f".s.PGSQL.{port}"))
        else:
            sock = socket.create_connection((host, port), timeout=timeout)
        with sock:
            sock.sendall((8).to_bytes(4, "big") + (80877103).to_bytes(4, "big"))
            return sock.recv(1) in {b"S", b"N"}
    except OSError:
        return False


class LocalDatabase:
    """An embedded PostgreSQL whose data lives in ``data_dir / 'pg'``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.absolute()
        self.pgdata = self.data_dir / "pg"

    def start(self, *, timeout: float = 30.0) -> str:
        """Start the server, or reuse the one that accepts connections; return its URL.

        A recorded server that does not answer is replaced: one still starting is
        waited for (up to ``timeout``), a hung one is stopped, a stale
        ``postmaster.pid`` removed.
        """
        url = self.url()
        if url is not None:
            return url
        private_dir(self.data_dir)  # the server's files are its owner's only (0700)
        recorded = self.postmaster()
        if recorded is not None:
            url = self._discard_stale(recorded, timeout=timeout)
            if url is not None:
                return url
        pgserver = _pgserver()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # a handle cached in this process may describe a server that died
                pgserver.PostgresServer._instances.pop(self.pgdata.resolve(), None)
                server = pgserver.get_server(self.pgdata, cleanup_mode=None)
            url = self.url() or str(server.get_uri())
            self._narrow()  # pgserver opens it to all (0755): narrow it again
        except Exception as exc:
            raise DatabaseError(
                f"the embedded PostgreSQL in {self.pgdata} did not start: {exc}; "
                f"see {self.pgdata / 'log'}, or set REFNET_DATABASE_URL to a running server"
            ) from exc
        return url

    def url(self) -> str | None:
        """The URL of the server, if it accepts connections (within about 2 s); else None."""
        recorded = self.postmaster()
        if recorded is None or not accepts_connections(recorded.host, recorded.port):
            return None
        return recorded.url

    def postmaster(self) -> Postmaster | None:
        """What ``postmaster.pid`` records, whether or not that server still runs."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
            return Postmaster(pid=int(lines[0]), port=int(lines[3]), socket_dir=lines[4].strip())
        except (OSError, ValueError, IndexError):
            return None

    def pid(self) -> int | None:
        """The pid of this data dir's running postmaster, or None."""
        recorded = self.postmaster()
        if recorded is None or not self._is_ours(recorded.pid):
            return None
        return recorded.pid

    def _is_ours(self, pid: int) -> bool:
        """True when ``pid`` runs a ``postgres`` server on this data dir."""
        cmdline = process_cmdline(pid)
        if not cmdline or Path(cmdline[0]).name != "postgres":
            return False
        pgdata = str(self.pgdata.resolve())
        return any(arg in {pgdata, str(self.pgdata)} for arg in cmdline)

    def _kill(self, pid: int, *, timeout: float = 5.0) -> None:
        """SIGQUIT (immediate shutdown), SIGKILL after ``timeout``; return once it is gone."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._is_ours(pid):
            time.sleep(0.1)
        if self._is_ours(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            while self._is_ours(pid):
                time.sleep(0.05)

    def _discard_stale(self, recorded: Postmaster, *, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while self._is_ours(recorded.pid) and time.monotonic() < deadline:
            if accepts_connections(recorded.host, recorded.port):
                return recorded.url
            status = self._status()
            if status not in {"starting", "stopping"}:
                break  # up, yet it does not answer: hung
            time.sleep(0.2)
        if self._is_ours(recorded.pid):
            log.warning(
                "the recorded PostgreSQL (pid %d) runs but does not accept connections: "
                "stopping it",
                recorded.pid,
            )
            self._kill(recorded.pid)
        else:
            log.warning(
                "the recorded PostgreSQL (pid %d) is gone: starting a new one", recorded.pid
            )
        self._remove_stale_locks(recorded)
        return None

    def _remove_stale_locks(self, recorded: Postmaster) -> None:
        """Remove lock files whose pid runs no postgres.

        postgres refuses to start while the pid in ``postmaster.pid`` or in its
        socket's lock file exists, even as a zombie or as another program.
        """
        locks = [self.pgdata / "postmaster.pid"]
        if recorded.socket_dir:
            locks.append(Path(recorded.socket_dir) / f".s.PGSQL.{recorded.port}.lock")
        for lock in locks:
            try:
                pid = int(lock.read_text().splitlines()[0])
            except (OSError, ValueError, IndexError):
                continue
            cmdline = process_cmdline(pid)
            if cmdline and Path(cmdline[0]).name == "postgres":
                continue  # a live postgres holds it
            lock.unlink(missing_ok=True)

    def _status(self) -> str:
        with contextlib.suppress(OSError, IndexError):
            return (self.pgdata / "postmaster.pid").read_text().splitlines()[7].strip()
        return ""

    def _narrow(self) -> None:
        """The data directory back to 0700, owned by whoever runs the server: run as
        root, pgserver runs PostgreSQL as its own system user (``pgserver``), which
        must still enter it."""
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            import pwd

            try:
                user = pwd.getpwnam("pgserver")
            except KeyError:
                user = None
            if user is not None:
                os.chown(self.data_dir, user.pw_uid, user.pw_gid)
        private_dir(self.data_dir)

    def stop(self) -> bool:
        """Stop the server if it runs. True if one was running.

        Only a postmaster of this data dir is signalled; a stale ``postmaster.pid``
        (its process gone, a zombie or another program) is removed.
        """
        recorded = self.postmaster()
        if recorded is None:
            return False
        if not self._is_ours(recorded.pid):
            self._remove_stale_locks(recorded)
            return False
        pgserver = _pgserver()
        user = "pgserver" if os.geteuid() == 0 else None
        try:
            pgserver.pg_ctl(
                ["-w", "-t", "30", "-m", "fast", "stop"], pgdata=self.pgdata, user=user, timeout=60
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            log.warning("pg_ctl stop failed (%s); the server is killed", exc)
        if self._is_ours(recorded.pid):
            self._kill(recorded.pid)
        return True
