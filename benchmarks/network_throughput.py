"""End-to-end throughput and latency: screenings in, referral.updated out.

A real broker (embedded, or ``--bootstrap``), topics under a unique prefix, a
directory of services, one real ``refnet worker`` subprocess, and one clinic
publishing screenings of distinct patients (one or two needs each). Measures
until every expected referral has its first ``referral.updated`` on the
clinic's updates topic, then checks that each referral was offered exactly once
and no (referral, service) pair twice.

    /tmp/venv/bin/python benchmarks/network_throughput.py [--screenings 2000]
        [--services 20] [--orgs 4] [--partitions 6] [--bootstrap HOST:PORT]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaProducer  # noqa: E402

from benchmarks.broker_start import kafka_jvms  # noqa: E402
from benchmarks.throughput_checks import (  # noqa: E402
    CLINIC,
    UpdatesReader,
    check_topics,
    check_updates,
)
from connectors.kafka.admin import apply_topics  # noqa: E402
from connectors.kafka.clients import producer  # noqa: E402
from deploy.bench.events import FOOD_AND_TRANSPORT, FOOD_ONLY, patient, screening, service  # noqa: E402
from deploy.bench.process import cpu, status_kb  # noqa: E402
from deploy.launcher import start_worker, stop_worker, worker_env  # noqa: E402
from deploy.local.broker import LocalBroker  # noqa: E402
from deploy.settings import Settings  # noqa: E402
from schemas.events import to_bytes  # noqa: E402
from schemas.topics import Topics  # noqa: E402

POSTAL_CODES = ("10451", "10452", "10453", "10454", "10455", "10456")
FOOD, TRANSPORT = "food-insecurity", "transportation-insecurity"


# ---------------------------------------------------------------- the network
def directory(topics: Topics, services: int, orgs: list[str]) -> list[tuple[str, bytes]]:
    """``services`` services, alternately food and transport, spread over ``orgs``.

    Each covers three consecutive postal codes of 10451-10456 (so every code has
    several services of each category) and has its own capacity and languages.
    """
    out = []
    for i in range(services):
        category = FOOD if i % 2 == 0 else TRANSPORT
        codes = tuple(POSTAL_CODES[(i // 2 + k) % len(POSTAL_CODES)] for k in range(3))
        service_id = f"svc-{i:03d}"
        event = service(
            service_id,
            orgs[i % len(orgs)],
            categories=(category,),
            postal_codes=codes,
            languages=("en", "es") if i % 3 == 0 else ("en",),
            capacity={"available": 5 + (i * 7) % 45, "unit": "households"},
            response_sla="PT24H",
        )
        out.append((service_id, to_bytes(event)))
    return out


def screenings(count: int, run: str) -> list[tuple[str, str, bytes, list[str]]]:
    """(screening_id, patient_id, value, expected referral ids); every other has two needs."""
    out = []
    for i in range(count):
        screening_id = f"scr-{run}-{i:06d}"
        patient_id = f"pt-{run}-{i:06d}"
        two = i % 2 == 1
        event = screening(
            screening_id,
            answers=FOOD_AND_TRANSPORT if two else FOOD_ONLY,
            patient_fields=patient(
                patient_id,
                language="es" if i % 4 == 0 else "en",
                postal_code=POSTAL_CODES[i % len(POSTAL_CODES)],
            ),
        )
        needs = [FOOD, TRANSPORT] if two else [FOOD]
        out.append(
            (screening_id, patient_id, to_bytes(event), [f"{screening_id}.{n}" for n in needs])
        )
    return out


def network_env(bootstrap: str, topics: Topics, data_dir: Path, log_level: str) -> dict[str, str]:
    return worker_env(
        {
            "REFNET_KAFKA_BOOTSTRAP": bootstrap,
            "REFNET_TOPIC_PREFIX": topics.prefix,
            "REFNET_PARTITIONS": str(topics.partitions),
            "REFNET_APP_ID": f"refnet-{topics.prefix}",
            "REFNET_DATA_DIR": str(data_dir),
            "REFNET_LOG_LEVEL": log_level,
        }
    )


def pid_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


async def wait_for(predicate: Any, seconds: float, proc: Any, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if proc.poll() is not None:
            raise RuntimeError(f"the worker exited ({proc.returncode}):\n{tail(log)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {seconds:.0f}s\n{tail(log)}")
        await asyncio.sleep(0.05)


def tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


# ---------------------------------------------------------------- the run
@dataclass
class Run:
    """One run: what it started (so that it stops exactly that) and where."""

    args: argparse.Namespace
    tmp: Path
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    bootstrap: str = ""
    broker: LocalBroker | None = None
    broker_pid: int | None = None
    worker: Any = None
    producer: AIOKafkaProducer | None = None
    reader: UpdatesReader | None = None
    topics: Topics = field(default_factory=lambda: Topics(prefix="unset"))
    orgs: list[str] = field(default_factory=list)

    @property
    def log(self) -> Path:
        return self.tmp / "worker.log"


@dataclass
class Measured:
    """The published batch and what the run saw of it."""

    batch: list[tuple[str, str, bytes, list[str]]]
    expected: set[str]
    published_ms: dict[str, int]
    complete: bool
    wall_s: float
    cpu_worker: float
    cpu_broker: float
    peak_rss: str
    rss: str


async def run(args: argparse.Namespace, tmp: Path) -> int:
    state = Run(args, tmp)
    try:
        await start_broker(state)
        await start_network(state)
        warm_ref = await warm_up(state)
        measured = await measure(state)
        assert state.reader is not None
        ours = state.reader.ours(measured.expected)
        print_figures(state, measured)
        problems = check_updates(state.reader, ours, measured.expected, warm_ref)
        problems += await check_topics(
            state.bootstrap, state.topics, state.orgs, ours, measured.expected
        )
        print("correctness: ok" if not problems else "correctness: FAILED")
        for p in problems:
            print(f"  - {p}")
        return 0 if measured.complete and not problems else 1
    finally:
        await stop(state)


async def start_broker(state: Run) -> None:
    """The embedded broker (port 0, in the run's directory), or ``--bootstrap``."""
    if state.args.bootstrap:
        state.bootstrap = state.args.bootstrap
        return
    settings = Settings.from_env()
    state.broker = LocalBroker(
        state.tmp / "kafka",
        cache_dir=settings.cache_dir,
        version=settings.kafka_version,
        port=0,
        heap=settings.kafka_heap,
    )
    t0 = time.perf_counter()
    started = await asyncio.to_thread(state.broker.start, tie_to_parent=True)
    state.bootstrap, state.broker_pid = started.bootstrap, started.pid
    print(f"broker: embedded on {state.bootstrap}, ready in {time.perf_counter() - t0:.1f}s")


async def start_network(state: Run) -> None:
    """The topics under a prefix of the run's own, the directory, and the updates' reader."""
    args = state.args
    state.topics = Topics(prefix=f"bench{state.run_id}", partitions=args.partitions)
    state.orgs = [f"bench-org-{i}" for i in range(args.orgs)]
    specs = state.topics.network_catalog() + state.topics.clinic_catalog(CLINIC)
    for org in state.orgs:
        specs += state.topics.org_catalog(org)
    await asyncio.to_thread(apply_topics, state.bootstrap, specs)
    print(
        f"topics: prefix {state.topics.prefix}, {len(specs)} topics x {args.partitions} partitions"
    )
    state.producer = producer(state.bootstrap, linger_ms=5)
    await state.producer.start()
    services = directory(state.topics, args.services, state.orgs)
    for key, value in services:
        await state.producer.send(state.topics.directory, value, key=key.encode())
    await state.producer.flush()
    print(f"directory: {len(services)} services across {len(state.orgs)} organizations")
    state.reader = UpdatesReader(state.bootstrap, state.topics.clinic_updates(CLINIC))
    await state.reader.start()


async def warm_up(state: Run) -> str:
    """Start the worker and send one screening through the network: its referral id, once
    it has its first update."""
    assert state.producer is not None and state.reader is not None
    args = state.args
    (state.tmp / "worker").mkdir(parents=True, exist_ok=True)
    env = network_env(state.bootstrap, state.topics, state.tmp / "worker", args.log_level)
    t_worker = time.perf_counter()
    state.worker = start_worker(env, state.log, profile=args.profile_worker, cwd=ROOT)
    run_id = state.run_id
    warm = screening(
        f"warmup-{run_id}", answers=FOOD_ONLY, patient_fields=patient(f"pt-warmup-{run_id}")
    )
    await state.producer.send_and_wait(
        state.topics.clinic_submissions(CLINIC),
        to_bytes(warm),
        key=f"pt-warmup-{run_id}".encode(),
    )
    warm_ref = f"warmup-{run_id}.{FOOD}"
    reader = state.reader
    await wait_for(lambda: warm_ref in reader.first, args.timeout, state.worker, state.log)
    ready_s = time.perf_counter() - t_worker
    print(f"worker: pid {state.worker.pid}, first offer {ready_s:.1f}s after start")
    return warm_ref


async def measure(state: Run) -> Measured:
    """Publish the batch (at once, or at ``--rate``); wait for every referral's update."""
    assert state.producer is not None and state.reader is not None
    args, worker = state.args, state.worker
    batch = screenings(args.screenings, state.run_id)
    expected = {rid for _, _, _, rids in batch for rid in rids}
    published_ms: dict[str, int] = {}
    cpu_worker0, cpu_broker0 = cpu(worker.pid), _cpu(state.broker_pid)
    t_pub = time.perf_counter()
    futures = []
    submissions = state.topics.clinic_submissions(CLINIC)
    for i, (screening_id, patient_id, value, _) in enumerate(batch):
        if args.rate > 0:
            await asyncio.sleep(max(0.0, t_pub + i / args.rate - time.perf_counter()))
        now_ms = time.time_ns() // 1_000_000
        published_ms[screening_id] = now_ms
        futures.append(
            await state.producer.send(
                submissions, value, key=patient_id.encode(), timestamp_ms=now_ms
            )
        )
    await asyncio.gather(*futures)
    publish_s = time.perf_counter() - t_pub
    print(f"published {len(batch)} screenings in {publish_s:.2f}s; waiting for the network...")
    first = state.reader.first
    try:
        await wait_for(lambda: expected <= first.keys(), args.timeout, worker, state.log)
        complete = True
    except TimeoutError:
        complete = False
    wall_s = time.perf_counter() - t_pub
    cpu_worker = cpu(worker.pid) - cpu_worker0
    cpu_broker = _cpu(state.broker_pid) - cpu_broker0
    await asyncio.sleep(args.settle)  # late duplicates, if any, arrive now
    return Measured(
        batch,
        expected,
        published_ms,
        complete,
        wall_s,
        cpu_worker,
        cpu_broker,
        peak_rss=f"{status_kb(worker.pid, 'VmHWM')} kB",
        rss=f"{status_kb(worker.pid, 'VmRSS')} kB",
    )


def _cpu(pid: int | None) -> float:
    return 0.0 if pid is None else cpu(pid)


def print_figures(state: Run, m: Measured) -> None:
    assert state.reader is not None
    first = state.reader.first
    firsts = {rid: first[rid] for rid in m.expected if rid in first}
    by_screening: dict[str, int] = {}
    for u in firsts.values():
        assert u.screening_id is not None
        by_screening[u.screening_id] = min(
            by_screening.get(u.screening_id, u.timestamp_ms), u.timestamp_ms
        )
    latencies = sorted((ts - m.published_ms[sid]) / 1000 for sid, ts in by_screening.items())
    start_ms = min(m.published_ms.values())
    end_ms = max((u.timestamp_ms for u in firsts.values()), default=start_ms)
    span = max((end_ms - start_ms) / 1000, 1e-9)
    outcome = Counter(u.business_status for u in firsts.values())
    print()
    print(
        f"screenings: {len(m.batch)}  referrals expected: {len(m.expected)}  "
        f"first updates: {len(firsts)} {dict(outcome)}  complete: {m.complete}"
    )
    print(
        f"throughput: {len(by_screening) / span:.1f} screenings/s, "
        f"{len(firsts) / span:.1f} referrals opened/s "
        f"(first publish to last first-update: {span:.2f}s; wall {m.wall_s:.2f}s)"
    )
    print(
        f"latency publish->first referral.updated: p50 {pct(latencies, 50):.3f}s  "
        f"p95 {pct(latencies, 95):.3f}s  p99 {pct(latencies, 99):.3f}s  "
        f"max {latencies[-1] if latencies else float('nan'):.3f}s  "
        f"mean {statistics.fmean(latencies) if latencies else float('nan'):.3f}s"
    )
    print(
        f"worker: peak RSS (VmHWM) {m.peak_rss}, RSS now {m.rss}, CPU {m.cpu_worker:.1f}s "
        f"over {m.wall_s:.1f}s ({100 * m.cpu_worker / m.wall_s:.0f}% of a core)"
    )
    if state.broker_pid is not None:
        print(
            f"broker JVM: CPU {m.cpu_broker:.1f}s ({100 * m.cpu_broker / m.wall_s:.0f}% of a core)"
        )


async def stop(state: Run) -> None:
    """Stop what the run started: the reader, the producer, the worker, the broker."""
    if state.reader is not None:
        await state.reader.stop()
    if state.producer is not None:
        await state.producer.stop()
    if state.worker is not None and state.worker.poll() is None:
        t0 = time.perf_counter()
        code = stop_worker(state.worker)
        print(f"worker stopped (SIGTERM, exit {code}) in {time.perf_counter() - t0:.1f}s")
    if state.broker is not None:
        await asyncio.to_thread(state.broker.stop)
        alive = state.broker_pid is not None and pid_alive(state.broker_pid)
        print(
            f"broker stopped ({'STILL ALIVE' if alive else 'gone'}); "
            f"pgrep -f kafka.Kafka: {len(kafka_jvms())} running (others' brokers included)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenings", type=int, default=2000)
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--orgs", type=int, default=4)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument(
        "--rate", type=float, default=0, help="screenings/s to publish at (0: all at once)"
    )
    parser.add_argument("--bootstrap", help="use this Kafka instead of an embedded broker")
    parser.add_argument("--timeout", type=float, default=240, help="seconds to wait (each)")
    parser.add_argument("--settle", type=float, default=2, help="seconds to wait for late dups")
    parser.add_argument("--log-level", default="info", help="worker's REFNET_LOG_LEVEL")
    parser.add_argument(
        "--profile-worker", metavar="PATH", help="run the worker under cProfile, stats to PATH"
    )
    parser.add_argument("--keep-log", action="store_true", help="print the worker log's tail")
    args = parser.parse_args()
    # new topics have no leader for a moment: aiokafka retries, and says so
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="refnet-bench-") as tmp:
        code = asyncio.run(run(args, Path(tmp)))
        if args.keep_log:
            print(tail(Path(tmp) / "worker.log"))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
