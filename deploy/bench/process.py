"""A worker process measured: its CPU seconds and memory from /proc, its log."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time
from pathlib import Path

from deploy.launcher import start_worker, stop_worker, worker_env
from schemas.topics import Topics

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Worker:
    """A real ``refnet worker`` subprocess on its own topics."""

    def __init__(
        self, bootstrap: str, topics: Topics, data_dir: Path, *, profile: str | None = None
    ) -> None:
        self.bootstrap = bootstrap
        #: cProfile the worker, its statistics written to this path as it stops
        self.profile = profile
        self.topics = topics
        self.app_id = f"refnet-{topics.prefix}"
        self.log = data_dir / f"worker-{topics.prefix}.log"
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = worker_env(
            {
                "REFNET_KAFKA_BOOTSTRAP": self.bootstrap,
                "REFNET_TOPIC_PREFIX": self.topics.prefix,
                "REFNET_PARTITIONS": str(self.topics.partitions),
                "REFNET_APP_ID": self.app_id,
                "REFNET_DATA_DIR": str(self.data_dir),
                "REFNET_LOG_LEVEL": "info",
                "REFNET_PATTERN_REFRESH": "1",
            }
        )
        self.proc = start_worker(env, self.log, profile=self.profile)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def mark(self) -> int:
        """Where the log ends now: what a later :meth:`wait_for_log` may skip."""
        return self.log.stat().st_size if self.log.exists() else 0

    async def wait_for_log(self, pattern: str, timeout: float, since: int = 0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        compiled = re.compile(pattern)
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")[since:] if self.log.exists() else ""
            found = compiled.search(text)
            if found:
                return found
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"the worker exited: {text[-2000:]}")
            await asyncio.sleep(0.05)
        raise TimeoutError(f"no {pattern!r} in the worker's log after {timeout:.0f}s")

    def stop(self) -> None:
        stop_worker(self.proc)
        self.proc = None
