"""The embedded PostgreSQL server: a real server shipped by the ``pgserver`` package.

It listens on a Unix socket inside its data directory (no TCP port to clash
with), and is left running between ``refnet dev up`` and ``refnet dev down``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class DatabaseError(RuntimeError):
    """The embedded PostgreSQL server could not be started or stopped."""


def _pgserver() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI)
        warnings.simplefilter("ignore")
        import pgserver

        return pgserver


class LocalDatabase:
    """An embedded PostgreSQL whose data lives in ``data_dir / 'pg'``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.pgdata = data_dir / "pg"

    def start(self) -> str:
        """Start (or reuse) the server; return its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pgserver = _pgserver()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                server = pgserver.get_server(self.pgdata, cleanup_mode=None)
            return self.url() or str(server.get_uri())
        except Exception as exc:
            raise DatabaseError(
                f"the embedded PostgreSQL in {self.pgdata} did not start: {exc}; "
                f"see {self.pgdata / 'log'}, or set REFNET_DATABASE_URL to a running server"
            ) from exc

    def url(self) -> str | None:
        """The running server's URL, or None."""
        if self.pid() is None:
            return None
        # postmaster.pid: pid, data dir, start time, port, socket directory, ...
        lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        port, socket_dir = lines[3].strip(), lines[4].strip()
        host = socket_dir or "127.0.0.1"
        return f"postgresql://postgres:@/postgres?host={host}&port={port}"

    def pid(self) -> int | None:
        pidfile = self.pgdata / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def stop(self) -> bool:
        """Stop the server if it runs. True if one was running."""
        if self.pid() is None:
            return False
        pgserver = _pgserver()
        user = "pgserver" if os.geteuid() == 0 else None
        try:
            pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=user)
        except subprocess.CalledProcessError as exc:
            pid = self.pid()
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
            log.warning("pg_ctl stop failed (%s); the server was killed", exc)
        return True
