"""How long the embedded Kafka broker takes to start, become ready and stop.

Each run starts a fresh :class:`deploy.local.broker.LocalBroker` (port 0, a new
temporary data dir, so storage is formatted every time, as in the test
fixtures) with the cached jars, waits until it answers a metadata request, then
stops it. ``--cold`` first resolves the jars into an empty temporary cache dir
and times that (Maven's own ~/.m2 repository is left as it is).

    /tmp/venv/bin/python benchmarks/broker_start.py [--runs 3] [--cold]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploy.local.broker import LocalBroker
from deploy.local.runtime import ensure_jars
from deploy.settings import Settings


class _ReadyTime(logging.Handler):
    """Catches the broker's own "ready in N s" (JVM launch to ready, without format)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seconds: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("kafka broker ready") and isinstance(record.args, tuple):
            self.seconds = float(record.args[1])


def kafka_jvms() -> list[int]:
    out = subprocess.run(["pgrep", "-f", "kafka.Kafka"], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="broker starts (default 3)")
    parser.add_argument("--cold", action="store_true", help="also time jar resolution")
    args = parser.parse_args()

    settings = Settings.from_env()
    version, heap = settings.kafka_version, settings.kafka_heap
    before = set(kafka_jvms())
    print(f"kafka {version}, heap {heap}, cache {settings.cache_dir}")

    if args.cold:
        with tempfile.TemporaryDirectory(prefix="refnet-cold-cache-") as cold:
            t0 = time.perf_counter()
            ensure_jars(Path(cold), version, progress=False)
            print(f"cold jar resolution (empty cache dir, mvn): {time.perf_counter() - t0:.2f}s")

    handler = _ReadyTime()
    broker_log = logging.getLogger("deploy.local.broker")
    broker_log.addHandler(handler)
    broker_log.setLevel(logging.INFO)

    starts: list[float] = []
    stops: list[float] = []
    pids: list[int] = []
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="refnet-bench-broker-") as tmp:
            broker = LocalBroker(
                Path(tmp), cache_dir=settings.cache_dir, version=version, port=0, heap=heap
            )
            handler.seconds = None
            t0 = time.perf_counter()
            try:
                state = broker.start(tie_to_parent=True)
                started = time.perf_counter() - t0
                pids.append(state.pid)
            finally:
                t1 = time.perf_counter()
                broker.stop()
                stopped = time.perf_counter() - t1
            starts.append(started)
            stops.append(stopped)
            jvm = f"{handler.seconds:.2f}s" if handler.seconds is not None else "?"
            print(
                f"run {run}: start-to-ready {started:.2f}s "
                f"(format {started - (handler.seconds or 0):.2f}s + jvm-to-ready {jvm}), "
                f"stop {stopped:.2f}s  [{state.bootstrap}]"
            )

    print(
        f"start-to-ready: min {min(starts):.2f}s  median {statistics.median(starts):.2f}s  "
        f"max {max(starts):.2f}s  (n={len(starts)})"
    )
    print(f"stop: min {min(stops):.2f}s  median {statistics.median(stops):.2f}s")
    left = [p for p in kafka_jvms() if p not in before]
    ours = [p for p in pids if p in set(kafka_jvms())]
    print(
        f"pgrep -f kafka.Kafka: {len(kafka_jvms())} running "
        f"({len(before)} before this benchmark, {len(left)} new, {len(ours)} of ours alive)"
    )
    return 1 if ours else 0


if __name__ == "__main__":
    raise SystemExit(main())
