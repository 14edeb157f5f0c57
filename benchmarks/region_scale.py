"""A region at 10, 1,000 and 5,000 organizations: provisioning, the worker, the gateway.

For each size, on a fresh embedded broker: a generated Open Referral directory
(``refnet directory generate``: one service per organization, two topics each, of
``--party-partitions`` partitions), then, each timed from outside as an operator runs
it: ``refnet topics apply``, ``refnet directory import`` (and again: nothing new),
``refnet topics apply`` with the parties in place, a ``refnet worker`` from start to
its first offer, the offer latency of ``--screenings`` screenings at ``--rate``, the
worker's RSS, a newly imported organization's first offer (the only service at a
postal code of its own: screenings there are sent every second from the end of its
import until one is offered to it), and ``refnet gateway`` with an API token for
every organization: start-up (to /healthz), RSS and connections to the broker once
they stop growing. Prints a table, with the machine's load (``uptime``).

    .venv/bin/python benchmarks/region_scale.py [--sizes 10,1000,5000]
        [--party-partitions 1] [--screenings 100] [--rate 20] [--no-worker] [--no-gateway]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.network_throughput import pct, tail, wait_for  # noqa: E402
from benchmarks.throughput_checks import CLINIC, UpdatesReader  # noqa: E402
from connectors.files import write_private_json  # noqa: E402
from connectors.gateway.tokens import TOKEN_PREFIX, token_hash, tokens_path  # noqa: E402
from connectors.kafka.admin import apply_topics  # noqa: E402
from connectors.kafka.clients import producer  # noqa: E402
from deploy.bench.events import FOOD_ONLY, patient, screening  # noqa: E402
from deploy.bench.process import cpu, status_kb  # noqa: E402
from deploy.directory.generate import generate  # noqa: E402
from deploy.launcher import start_worker, stop_worker, worker_env  # noqa: E402
from deploy.local.broker import LocalBroker  # noqa: E402
from deploy.local.database import LocalDatabase  # noqa: E402
from deploy.settings import Settings  # noqa: E402
from schemas.events import to_bytes  # noqa: E402
from schemas.topics import Topics  # noqa: E402

#: A postal code no generated service covers (Addison, beside the sample region).
NEW_ORG_POSTAL_CODE = "75001"
COLUMNS = (
    ("organizations", "{:,}"),
    ("load", "{}"),
    ("topics_apply_s", "{:.1f}"),
    ("import_s", "{:.1f}"),
    ("reimport_s", "{:.1f}"),
    ("reimport_published", "{}"),
    ("topics_apply_again_s", "{:.1f}"),
    ("worker_ready_s", "{:.1f}"),
    ("worker_settled_s", "{:.1f}"),
    ("offer_p50_ms", "{:.0f}"),
    ("offer_p95_ms", "{:.0f}"),
    ("worker_rss_mb", "{:.0f}"),
    ("new_org_offer_s", "{:.1f}"),
    ("gateway_start_s", "{:.1f}"),
    ("gateway_rss_mb", "{:.0f}"),
    ("gateway_connections", "{}"),
)


def cli(env: dict[str, str], *words: str, timeout: float = 1800) -> tuple[float, str]:
    """Run ``refnet WORDS...``; its wall time and output (raises when it fails)."""
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "deploy.cli", *words],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"refnet {' '.join(words)}: exit {done.returncode}\n{done.stderr}")
    return time.perf_counter() - t0, done.stdout


def step(what: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {what}", file=sys.stderr, flush=True)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def connections_to(pid: int, port: int) -> int:
    """Established TCP connections of process ``pid`` to ``port`` (its sockets' inodes
    matched against /proc/net/tcp and tcp6)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if fields[3] == "01" and remote_port == port and fields[9] in inodes:
                count += 1
    return count


class Updates(UpdatesReader):
    """The clinic's ``referral.updated`` events (its updates topic also carries
    ``screening.answered``, which names no referral)."""

    def received(self, batch: dict[Any, list[Any]]) -> None:
        mine = {
            tp: [r for r in records if b'"referral.updated"' in r.value]
            for tp, records in batch.items()
        }
        super().received(mine)


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # so that each size's ``finally`` stops what it started


# ---------------------------------------------------------------- one size
class Size:
    """One region size on its own broker: what it started, and what it measured."""

    def __init__(self, args: argparse.Namespace, count: int, tmp: Path) -> None:
        self.args, self.count, self.tmp = args, count, tmp
        self.topics = Topics(prefix=f"region{uuid.uuid4().hex[:6]}", partitions=args.partitions)
        self.broker: LocalBroker | None = None
        self.bootstrap = ""
        self.figures: dict[str, Any] = {"organizations": count, "load": load_average()}
        self.procs: list[subprocess.Popen[bytes]] = []
        self.databases: list[LocalDatabase] = []

    def env(self, **extra: str) -> dict[str, str]:
        return worker_env(
            {
                "REFNET_KAFKA_BOOTSTRAP": self.bootstrap,
                "REFNET_TOPIC_PREFIX": self.topics.prefix,
                "REFNET_PARTITIONS": str(self.topics.partitions),
                "REFNET_APP_ID": f"refnet-{self.topics.prefix}",
                "REFNET_DATA_DIR": str(self.tmp / "data"),
                "REFNET_PATTERN_REFRESH": str(self.args.pattern_refresh),
                **extra,
            }
        )

    def start_broker(self) -> None:
        settings = Settings.from_env()
        self.broker = LocalBroker(
            self.tmp / "kafka",
            cache_dir=settings.cache_dir,
            version=settings.kafka_version,
            port=0,
            heap=self.args.heap,
        )
        self.bootstrap = self.broker.start(tie_to_parent=True).bootstrap

    def provision(self) -> None:
        """topics apply, the import (twice), topics apply again: each timed."""
        env = self.env()
        directory = self.tmp / "region.json"
        directory.write_text(json.dumps(generate(self.count, seed=1)))
        step(f"{self.count}: topics apply")
        self.figures["topics_apply_s"] = cli(env, "topics", "apply")[0]
        step(f"{self.count}: directory import")
        partitions = str(self.args.party_partitions)
        words = ("directory", "import", "--no-progress", "--partitions", partitions)
        self.figures["import_s"] = cli(env, *words, str(directory))[0]
        seconds, out = cli(env, *words, str(directory))
        self.figures["reimport_s"] = seconds
        self.figures["reimport_published"] = _published(out)
        self.figures["topics_apply_again_s"] = cli(env, "topics", "apply")[0]
        apply_topics(self.bootstrap, self.topics.clinic_catalog(CLINIC))

    def stop(self) -> None:
        for proc in self.procs:
            stop_worker(proc)
        for database in self.databases:
            database.stop()
        if self.broker is not None:
            self.broker.stop()


def _published(out: str) -> str:
    for line in out.splitlines():
        if line.startswith("imported:"):
            return line.split(" published")[0].removeprefix("imported: ")
    return "?"


# ---------------------------------------------------------------- the worker
async def worker_figures(size: Size) -> None:
    """Start to first offer, offer latency, RSS, and a new organization's first offer."""
    log = size.tmp / "worker.log"
    step(f"{size.count}: worker")
    env = size.env(REFNET_LOG_LEVEL=size.args.log_level)
    proc = start_worker(env, log, cwd=ROOT, profile=size.args.profile_worker)
    size.procs.append(proc)
    reader = Updates(size.bootstrap, size.topics.clinic_updates(CLINIC))
    await reader.start()
    send = producer(size.bootstrap, linger_ms=1)
    await send.start()
    codes = sorted(
        {c for o in generate(size.count, seed=1) for c in _codes(o)} - {NEW_ORG_POSTAL_CODE}
    )
    try:
        t0 = time.perf_counter()
        published = await _screen(size, send, "warm", codes[0])
        await wait_for(lambda: f"{published}.food-insecurity" in reader.first, 300, proc, log)
        size.figures["worker_ready_s"] = time.perf_counter() - t0
        # offer latency in a steady state: not while the worker still takes its
        # thousands of partitions in (the updates' group on its thread, the view)
        await _settle(proc.pid)
        size.figures["worker_settled_s"] = time.perf_counter() - t0
        step(f"{size.count}: {size.args.screenings} screenings")
        sent: dict[str, float] = {}
        for i in range(size.args.screenings):
            await asyncio.sleep(1 / size.args.rate)
            sid = await _screen(size, send, f"s{i}", codes[i % len(codes)])
            sent[f"{sid}.food-insecurity"] = time.time() * 1000
        await wait_for(lambda: sent.keys() <= reader.first.keys(), 300, proc, log)
        latencies = sorted(reader.first[r].timestamp_ms - ms for r, ms in sent.items())
        size.figures["offer_p50_ms"] = pct(latencies, 50)
        size.figures["offer_p95_ms"] = pct(latencies, 95)
        size.figures["worker_rss_mb"] = status_kb(proc.pid, "VmRSS") / 1024
        step(f"{size.count}: a new organization")
        size.figures["new_org_offer_s"] = await _new_org(size, send, reader, proc, log)
    finally:
        await reader.stop()
        await send.stop()
        stop_worker(proc)


async def _settle(pid: int, *, idle: float = 0.1, limit: float = 120.0) -> None:
    """Wait until the worker uses less than ``idle`` of a core over a second."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = cpu(pid)
        await asyncio.sleep(1.0)
        if cpu(pid) - before < idle:
            return


def _codes(organization: dict[str, Any]) -> list[str]:
    area = organization["services"][0]["service_areas"][0]["name"]
    return [word.strip(",") for word in area.split() if word.strip(",").isdigit()]


async def _screen(size: Size, send: Any, name: str, postal_code: str) -> str:
    screening_id = f"scr-{name}-{uuid.uuid4().hex[:6]}"
    patient_id = f"pt-{screening_id}"
    event = screening(
        screening_id,
        answers=FOOD_ONLY,
        patient_fields=patient(patient_id, postal_code=postal_code),
    )
    await send.send_and_wait(
        size.topics.clinic_submissions(CLINIC), to_bytes(event), key=patient_id.encode()
    )
    return screening_id


async def _new_org(size: Size, send: Any, reader: Updates, proc: Any, log: Path) -> float:
    """Seconds from the end of a new organization's import to its first offer."""
    (organization,) = generate(1, seed=size.count + 17)
    service = organization["services"][0]
    service["service_areas"][0]["name"] = f"ZIP code {NEW_ORG_POSTAL_CODE}"
    service["attributes"][0]["taxonomy_term"]["name"] = "Food Pantry"
    path = size.tmp / "new-org.json"
    path.write_text(json.dumps([organization]))
    partitions = str(size.args.party_partitions)
    words = ("directory", "import", "--no-progress", "--partitions", partitions, str(path))
    await asyncio.to_thread(cli, size.env(), *words)
    imported = time.perf_counter()
    deadline = imported + 300
    while time.perf_counter() < deadline:
        await _screen(size, send, "new", NEW_ORG_POSTAL_CODE)
        await asyncio.sleep(1)
        if any(u.service_id == service["id"] for u in reader.updates):
            return time.perf_counter() - imported
        if proc.poll() is not None:
            raise RuntimeError(f"the worker exited:\n{tail(log)}")
    return float("nan")


# ---------------------------------------------------------------- the gateway
def gateway_figures(size: Size) -> None:
    """Start-up to /healthz, then RSS and broker connections once they stop growing."""
    import httpx

    data_dir = size.tmp / "data"
    orgs = sorted(
        line.split(".")[2]
        for line in _topic_names(size)
        if line.startswith(f"{size.topics.prefix}.org.") and line.endswith(".referrals.v1")
    )
    document = {
        token_hash(f"{TOKEN_PREFIX}bench-{org}"): {"party": "org", "id": org} for org in orgs
    }
    write_private_json(tokens_path(data_dir), document, sort_keys=True)
    port = free_port()
    step(f"{size.count}: gateway, {len(orgs)} organizations with a token")
    database = LocalDatabase(size.tmp / "pg")  # the gateway keeps its state in PostgreSQL
    env = size.env(
        REFNET_GATEWAY_PORT=str(port),
        REFNET_LOG_LEVEL="warning",
        REFNET_DATABASE_URL=database.start(),
    )
    size.databases.append(database)
    t0 = time.perf_counter()
    with (size.tmp / "gateway.log").open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "deploy.cli", "gateway"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    size.procs.append(proc)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the gateway exited:\n{tail(size.tmp / 'gateway.log')}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code < 500:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        size.figures["gateway_start_s"] = time.perf_counter() - t0
        broker_port = int(size.bootstrap.rsplit(":", 1)[1])
        seen, steady_since = -1, time.monotonic()
        while time.monotonic() - steady_since < 10 and time.perf_counter() - t0 < 180:
            now = connections_to(proc.pid, broker_port)
            if now != seen:
                seen, steady_since = now, time.monotonic()
            time.sleep(1)
        size.figures["gateway_connections"] = seen
        size.figures["gateway_rss_mb"] = status_kb(proc.pid, "VmRSS") / 1024
    finally:
        stop_worker(proc)


def _topic_names(size: Size) -> list[str]:
    from connectors.kafka.admin import list_topics

    return list(list_topics(size.bootstrap))


# ---------------------------------------------------------------- the run
def measure(args: argparse.Namespace, count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="refnet-region-", dir=args.keep) as tmp:
        size = Size(args, count, Path(tmp))
        try:
            size.start_broker()
            size.provision()
            if not args.no_worker:
                asyncio.run(worker_figures(size))
            if not args.no_gateway:
                gateway_figures(size)
        except Exception as exc:  # noqa: BLE001 - report what was measured, and why it stopped
            size.figures["error"] = f"{type(exc).__name__}: {str(exc)[:2000]}"
        finally:
            size.stop()
            if args.keep:
                for log in ("worker.log", "gateway.log"):
                    if (size.tmp / log).exists():
                        shutil.copy(size.tmp / log, Path(args.keep) / f"{count}-{log}")
        return size.figures


def run_sizes(
    sizes: str,
    measure_one: Callable[[int], dict[str, Any]],
    columns: tuple[tuple[str, str], ...],
) -> None:
    """Measure each of the comma-separated ``sizes`` in turn, print each run's figures as
    a JSON line as it ends, then all of them as a table of ``columns``."""
    rows = []
    for count in (int(n) for n in sizes.split(",")):
        figures = measure_one(count)
        figures["load_after"] = load_average()
        print(json.dumps(figures), flush=True)
        rows.append(figures)
    print()
    print(" | ".join(name for name, _ in columns))
    for row in rows:
        cells = []
        for name, form in columns:
            value = row.get(name)
            cells.append("-" if value is None else form.format(value))
        print(" | ".join(cells))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,1000,5000")
    parser.add_argument("--partitions", type=int, default=6, help="REFNET_PARTITIONS")
    parser.add_argument("--party-partitions", type=int, default=1)
    parser.add_argument("--screenings", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--pattern-refresh", type=float, default=5.0)
    parser.add_argument("--heap", default="1g", help="the embedded broker's heap")
    parser.add_argument("--no-worker", action="store_true")
    parser.add_argument("--profile-worker", metavar="PATH", help="cProfile the worker's CPU")
    parser.add_argument("--no-gateway", action="store_true")
    parser.add_argument("--log-level", default="info", help="the worker's REFNET_LOG_LEVEL")
    parser.add_argument("--keep", metavar="DIR", help="keep each size's files (logs) under DIR")
    args = parser.parse_args()
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    run_sizes(args.sizes, lambda count: measure(args, count), COLUMNS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
