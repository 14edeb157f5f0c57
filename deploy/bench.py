"""``refnet bench``: what refnet costs, measured in one run on the embedded broker.

Prints figures; asserts nothing (speed is a benchmark's business, never a
test's). Each part says what it measured and how; ``--json`` prints them as one
object for machines. Parts:

1. ``passthrough``: a raw aiokafka consume-decode-produce loop on the same
   broker, the ceiling any Kafka consumer in Python meets here;
2. ``pipeline``: screenings published as fast as possible by one clinic,
   through a real ``refnet worker``, until every referral was offered;
3. ``latency``: end-to-end latency (publish to offer) at fixed rates;
4. ``cost``: the worker's CPU seconds per 1,000 screenings and its peak RSS;
5. ``ranking``: cost of ranking one offer with 10, 1,000 and 10,000 services;
6. ``startup``: a worker's start-to-ready with N events of history on the log,
   from the network's snapshot of its view (and the events after it), and
   reading the whole log as the first worker of a network does;
7. ``deadlines``: timer tick cost and firing delay with N open offers;
8. ``restore``: a worker's recovery time for N referrals in its table, and the
   memory each open referral takes.

Sizes default to what runs in a few minutes on a 2-core machine; ``--full``
uses the issue's sizes (10^6 events, referrals and deadlines).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from connectors.kafka.admin import apply_topics
from deploy.settings import Settings
from schemas.codes import Category
from schemas.events import ReferralStateChanged, ScreeningSubmitted, ServiceUpserted, to_bytes
from schemas.topics import TopicKind, Topics, TopicSpec

CLK_TCK = os.sysconf("SC_CLK_TCK")
POSTAL_CODES = ("10451", "10452", "10453", "10454", "10455", "10456")
CLINIC = "bench-clinic"
FOOD = [
    {"question": "88122-7", "answer": "LA28397-0"},
    {"question": "88123-5", "answer": "LA28398-8"},
]
Out = Callable[[str], None]


# ---------------------------------------------------------------- helpers
def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _service(i: int, org: str, *, codes: tuple[str, ...] | None = None) -> ServiceUpserted:
    codes = codes or tuple(POSTAL_CODES[(i + k) % len(POSTAL_CODES)] for k in range(3))
    return ServiceUpserted.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "occurred_at": datetime.now(UTC) - timedelta(days=1),
            "service_id": f"svc-{i:05d}",
            "org_id": org,
            "name": f"Service {i}",
            "status": "active",
            "categories": ["food-insecurity"],
            "postal_codes": list(codes),
            "languages": ["en", "es"] if i % 3 == 0 else ["en"],
            "capacity": {"available": 1_000_000},
            "response_sla": "PT24H",
        }
    )


def _screening(run: str, i: int) -> tuple[str, bytes]:
    patient_id = f"pt-{run}-{i:07d}"
    event = ScreeningSubmitted.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "occurred_at": datetime.now(UTC),
            "screening_id": f"scr-{run}-{i:07d}",
            "patient": {
                "id": patient_id,
                "given_name": "Ana",
                "phone": "+17185550100",
                "preferred_language": "es" if i % 4 == 0 else "en",
                "postal_code": POSTAL_CODES[i % len(POSTAL_CODES)],
            },
            "consent": {"granted": True},
            "instrument": "ahc-hrsn",
            "answers": FOOD,
        }
    )
    return patient_id, to_bytes(event)


class Worker:
    """A real ``refnet worker`` subprocess on its own topics."""

    def __init__(self, bootstrap: str, topics: Topics, data_dir: Path) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.app_id = f"refnet-{topics.prefix}"
        self.log = data_dir / f"worker-{topics.prefix}.log"
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("REFNET_")}
        env.update(
            REFNET_KAFKA_BOOTSTRAP=self.bootstrap,
            REFNET_TOPIC_PREFIX=self.topics.prefix,
            REFNET_PARTITIONS=str(self.topics.partitions),
            REFNET_APP_ID=self.app_id,
            REFNET_DATA_DIR=str(self.data_dir),
            REFNET_LOG_LEVEL="info",
            REFNET_PATTERN_REFRESH="1",
        )
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "deploy.cli", "worker"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

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
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


async def _producer(bootstrap: str, *, linger_ms: int = 5) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    return producer


async def _publish(
    producer: AIOKafkaProducer, topic: str, items: Sequence[tuple[str | None, bytes | None]]
) -> None:
    futures = []
    for key, value in items:
        futures.append(
            await producer.send(topic, value, key=key.encode() if key is not None else None)
        )
        if len(futures) >= 5000:
            await asyncio.gather(*futures)
            futures.clear()
    await asyncio.gather(*futures)


def _topics(partitions: int) -> Topics:
    return Topics(prefix=f"bench{uuid.uuid4().hex[:8]}", partitions=partitions)


async def _network(bootstrap: str, partitions: int, orgs: int) -> Topics:
    topics = _topics(partitions)
    specs = topics.apply_catalog(f"refnet-{topics.prefix}") + topics.clinic_catalog(CLINIC)
    for o in range(orgs):
        specs += topics.org_catalog(f"bench-org-{o}")
    await asyncio.to_thread(apply_topics, bootstrap, specs)
    return topics


# ---------------------------------------------------------------- 1. passthrough
async def passthrough(bootstrap: str, count: int, out: Out) -> dict[str, Any]:
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    source, sink = f"{prefix}.in", f"{prefix}.out"
    await asyncio.to_thread(
        apply_topics,
        bootstrap,
        [
            TopicSpec(source, TopicKind.SCREENINGS, partitions=6),
            TopicSpec(sink, TopicKind.SCREENINGS, partitions=6),
        ],
    )
    producer = await _producer(bootstrap)
    try:
        await _publish(producer, source, [_screening("pass", i) for i in range(count)])
        consumer = AIOKafkaConsumer(
            source,
            bootstrap_servers=bootstrap,
            group_id=f"{prefix}-group",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        moved = 0
        started = time.perf_counter()
        try:
            while moved < count:
                batches = await consumer.getmany(timeout_ms=500, max_records=2000)
                futures = []
                for records in batches.values():
                    for r in records:
                        document = json.loads(r.value)
                        value = json.dumps(document).encode()
                        futures.append(await producer.send(sink, value, key=r.key))
                await asyncio.gather(*futures)
                await consumer.commit()
                moved += len(futures)
        finally:
            await consumer.stop()
        seconds = time.perf_counter() - started
    finally:
        await producer.stop()
    rate = count / seconds
    out(
        f"1. passthrough: {count} messages consumed, decoded and produced in {seconds:.2f}s: "
        f"{rate:,.0f} messages/s"
    )
    return {"messages": count, "seconds": round(seconds, 3), "messages_per_s": round(rate)}


# ---------------------------------------------------------------- 2-4. the pipeline
#: seconds at a latency part's rate before the measured ten
WARM_UP = 2.0


async def _settle(pid: int, *, idle: float = 0.05, limit: float = 60.0) -> None:
    """Wait until the worker uses less than ``idle`` of a core over half a second."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = _cpu(pid)
        await asyncio.sleep(0.5)
        if _cpu(pid) - before < idle * 0.5:
            return


_SCREENING_ID = re.compile(rb'"screening_id":\s*"([^"]+)"')
_KIND = re.compile(rb'"kind":\s*"(submission|open)"')


class OfferReader:
    """Reads every organization's referrals topic; notes when each referral was offered.

    It also reads the two internal topics, for when each hop produced its
    command (record timestamps): the ingress's submission, the patient agent's
    ``open``, the referral agent's offer."""

    def __init__(self, bootstrap: str, topics: list[str], internal: list[str]) -> None:
        self.consumer = AIOKafkaConsumer(
            *topics,
            *internal,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            group_id=None,
        )
        self.internal = set(internal)
        self.offered: dict[str, float] = {}
        #: referral id -> the offer record's timestamp (when the worker produced it)
        self.produced: dict[str, float] = {}
        #: (command kind, screening id) -> the command record's timestamp
        self.hops: dict[tuple[str, str], float] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=100, max_records=5000)
            now = time.perf_counter()
            for tp, records in batch.items():
                if tp.topic in self.internal:
                    for r in records:
                        kind = _KIND.search(r.value or b"")
                        screening = _SCREENING_ID.search(r.value or b"")
                        if kind and screening:
                            hop = (kind.group(1).decode(), screening.group(1).decode())
                            self.hops.setdefault(hop, r.timestamp / 1000)
                    continue
                for r in records:
                    document = json.loads(r.value)
                    if document.get("event_type") == "referral.offered":
                        self.offered.setdefault(document["referral_id"], now)
                        self.produced.setdefault(document["referral_id"], r.timestamp / 1000)

    async def wait(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.offered) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if len(self.offered) < count:
            raise TimeoutError(f"{len(self.offered)} of {count} referrals offered")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.consumer.stop()


def _hops(reader: OfferReader, sent_wall: dict[str, float]) -> dict[str, tuple[float, float]]:
    """p50 and p99 of each hop, in ms: submission to the ingress's command, to the
    patient agent's ``open``, to the referral agent's offer."""
    spans: dict[str, list[float]] = {"ingress": [], "patient agent": [], "referral agent": []}
    for referral, sent in sent_wall.items():
        screening = referral.split(":", 1)[1].rsplit(".", 1)[0]
        submitted = reader.hops.get(("submission", screening))
        opened = reader.hops.get(("open", screening))
        offered = reader.produced.get(referral)
        if submitted is None or opened is None or offered is None:
            continue
        spans["ingress"].append((submitted - sent) * 1000)
        spans["patient agent"].append((opened - submitted) * 1000)
        spans["referral agent"].append((offered - opened) * 1000)
    return {
        name: (_pct(values, 0.5), _pct(values, 0.99)) for name, values in spans.items() if values
    }


async def pipeline(
    bootstrap: str, data_dir: Path, screenings: int, rates: list[int], out: Out
) -> dict[str, Any]:
    orgs = 4
    topics = await _network(bootstrap, 6, orgs)
    producer = await _producer(bootstrap)
    # for the latency part: the clinic's client sends each screening at once (no
    # linger), so that what is measured is the network, not the bench's batching
    prompt = await _producer(bootstrap, linger_ms=0)
    worker = Worker(bootstrap, topics, data_dir)
    reader = OfferReader(
        bootstrap,
        [topics.org_referrals(f"bench-org-{o}") for o in range(orgs)],
        [topics.network_patients, topics.network_referrals],
    )
    result: dict[str, Any] = {}
    try:
        directory = [_service(i, f"bench-org-{i % orgs}") for i in range(20)]
        await _publish(producer, topics.directory, [(s.service_id, to_bytes(s)) for s in directory])
        worker.start()
        await reader.start()
        await worker.wait_for_log(r"network view ready", 120)
        # warm up: one screening through, so that every part is running
        warm_key, warm = _screening("warm", 0)
        await _publish(producer, topics.clinic_submissions(CLINIC), [(warm_key, warm)])
        await reader.wait(1, 120)

        # 2 and 4: saturation, CPU and RSS
        run = "sat"
        items = [_screening(run, i) for i in range(screenings)]
        cpu_before = _cpu(worker.pid)
        started = time.perf_counter()
        await _publish(producer, topics.clinic_submissions(CLINIC), list(items))
        await reader.wait(1 + screenings, 600)
        seconds = max(reader.offered.values()) - started
        cpu = _cpu(worker.pid) - cpu_before
        rate = screenings / seconds
        out(
            f"2. pipeline: {screenings} screenings, submission to offer, in {seconds:.2f}s: "
            f"{rate:,.1f} screenings/s (one worker, 6 partitions)"
        )
        out(
            f"4. cost: {cpu / screenings * 1000:.2f} CPU seconds per 1,000 screenings; "
            f"worker peak RSS {_status_kb(worker.pid, 'VmHWM') / 1024:.0f} MB"
        )
        result["pipeline"] = {
            "screenings": screenings,
            "seconds": round(seconds, 3),
            "screenings_per_s": round(rate, 1),
        }
        result["cost"] = {
            "cpu_s_per_1000": round(cpu / screenings * 1000, 3),
            "peak_rss_mb": round(_status_kb(worker.pid, "VmHWM") / 1024),
        }

        # 3: latency at fixed rates
        result["latency"] = []
        for per_second in rates:
            # steady state: the worker first finishes what the last part left it
            # (the network view reading the saturation's state changes, ...), then
            # the rate runs for WARM_UP seconds before the ten that are measured
            await _settle(worker.pid)
            warm_up = int(per_second * WARM_UP)
            count = per_second * 10
            sent: dict[str, float] = {}
            sent_wall: dict[str, float] = {}
            run = f"lat{per_second}"
            started = time.perf_counter()
            for i in range(warm_up + count):
                due = started + i / per_second
                pause = due - time.perf_counter()
                if pause > 0:
                    await asyncio.sleep(pause)
                key, value = _screening(run, i)
                referral = f"{CLINIC}:scr-{run}-{i:07d}.food-insecurity"
                if i >= warm_up:
                    sent[referral] = time.perf_counter()
                    sent_wall[referral] = time.time()
                await prompt.send(topics.clinic_submissions(CLINIC), value, key=key.encode())
            await prompt.flush()
            await reader.wait(len(reader.offered) + 0, 1)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not all(r in reader.offered for r in sent):
                await asyncio.sleep(0.05)
            latencies = [
                (reader.offered[r] - at) * 1000 for r, at in sent.items() if r in reader.offered
            ]
            p50, p95, p99 = (_pct(latencies, q) for q in (0.5, 0.95, 0.99))
            # the same, up to the moment the worker produced the offer (its record's
            # timestamp): without the bench's own reader fetching it
            in_network = [
                (reader.produced[r] - at) * 1000
                for r, at in sent_wall.items()
                if r in reader.produced
            ]
            n50, n95, n99 = (_pct(in_network, q) for q in (0.5, 0.95, 0.99))
            out(
                f"3. latency at {per_second} screenings/s ({len(latencies)} of {count}): "
                f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms to the reader; "
                f"p50 {n50:.0f} ms, p95 {n95:.0f} ms, p99 {n99:.0f} ms to the offer produced"
            )
            hops = _hops(reader, sent_wall)
            out(
                "   by hop (to the record each produced), p50 / p99: "
                + "; ".join(f"{name} {h[0]:.0f} / {h[1]:.0f} ms" for name, h in hops.items())
            )
            result["latency"].append(
                {
                    "rate": per_second,
                    "p50_ms": round(p50, 1),
                    "p95_ms": round(p95, 1),
                    "p99_ms": round(p99, 1),
                    "produced_p50_ms": round(n50, 1),
                    "produced_p95_ms": round(n95, 1),
                    "produced_p99_ms": round(n99, 1),
                    "hops_ms": {
                        name: {"p50": round(h[0], 1), "p99": round(h[1], 1)}
                        for name, h in hops.items()
                    },
                    "measured": len(latencies),
                }
            )
    finally:
        await reader.stop()
        worker.stop()
        await producer.stop()
        await prompt.stop()
    return result


# ---------------------------------------------------------------- 5. ranking
def ranking(sizes: list[int], out: Out) -> list[dict[str, Any]]:
    from streams.decisions.matching import MatchRequest, rank
    from streams.runtime.view import NetworkState

    rng = random.Random(1)
    zips = [f"{75000 + n:05d}" for n in range(300)]  # Texas ZIPs: real centroids
    results = []
    for size in sizes:
        state = NetworkState()
        for i in range(size):
            codes = tuple(rng.sample(zips, 3))
            state.upsert(_service(i, f"org-{i % 50}", codes=codes))
        requests = [
            MatchRequest(
                category=Category.FOOD_INSECURITY,
                postal_code=rng.choice(zips),
                preferred_language="es",
            )
            for _ in range(200)
        ]
        state.candidates(requests[0])  # build the index once, as after a directory change
        started = time.perf_counter()
        for request in requests:
            rank(state.candidates(request), request, org_stats=state.org_stats(), load=state.load())
        per = (time.perf_counter() - started) / len(requests) * 1000
        whole = time.perf_counter()
        rank(state.directory(), requests[0])
        scan = (time.perf_counter() - whole) * 1000
        out(
            f"5. ranking with {size:,} services: {per:.3f} ms per offer "
            f"(a scan of the whole directory: {scan:.1f} ms)"
        )
        results.append(
            {"services": size, "ms_per_offer": round(per, 4), "full_scan_ms": round(scan, 2)}
        )
    return results


# ---------------------------------------------------------------- 6. start-up
def _state_changed(i: int) -> bytes:
    event = ReferralStateChanged.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "occurred_at": datetime.now(UTC),
            "referral_id": f"{CLINIC}:hist-{i:08d}",
            "patient_id": f"pt-{i:08d}",
            "clinic_id": CLINIC,
            "category": "food-insecurity",
            "from_status": "requested",
            "to_status": "accepted" if i % 3 else "requested",
            "business_status": None if i % 3 else "offered",
            "org_id": f"bench-org-{i % 4}",
            "service_id": f"svc-{i % 20:05d}",
            "attempt": 1,
            "actor": "organization" if i % 3 else "network",
        }
    )
    return to_bytes(event)


async def _history(
    producer: AIOKafkaProducer, topics: Topics, template: list[bytes], start: int, stop: int
) -> None:
    for first in range(start, stop, 50_000):
        chunk = [(None, template[i % 1000]) for i in range(first, min(stop, first + 50_000))]
        await _publish(producer, topics.referral_events, chunk)


async def startup(bootstrap: str, data_dir: Path, sizes: list[int], out: Out) -> list[Any]:
    """Start-to-ready twice per size: with no snapshot (the whole log is read), then
    from the snapshot the first worker wrote as it stopped, with 1% more events after it."""
    results = []
    for size in sizes:
        topics = await _network(bootstrap, 6, 4)
        producer = await _producer(bootstrap)
        template = [_state_changed(i) for i in range(1000)]
        after = size // 100

        worker = Worker(bootstrap, topics, data_dir)
        try:
            await _history(producer, topics, template, 0, size)
            started = time.perf_counter()
            worker.start()
            try:
                await worker.wait_for_log(r"network view ready", 1800)
                whole = time.perf_counter() - started
            finally:
                worker.stop()  # it writes the view's snapshot as it stops
            await worker.wait_for_log(r"network view snapshot written", 5)
            await _history(producer, topics, template, size, size + after)
            mark = worker.mark()
            started = time.perf_counter()
            worker.start()
            try:
                await worker.wait_for_log(r"network view ready", 1800, since=mark)
                warm = time.perf_counter() - started
                taken = await worker.wait_for_log(
                    r"snapshot of \S+ taken; (\d+) events of the log after it", 5, since=mark
                )
            finally:
                worker.stop()
        finally:
            await producer.stop()
        out(
            f"6. start-to-ready with {size:,} events of history: {warm:.1f}s from the network's "
            f"snapshot and the {int(taken.group(1)):,} events after it; "
            f"{whole:.1f}s reading the whole log (no snapshot yet)"
        )
        results.append(
            {
                "events": size,
                "seconds": round(warm, 2),
                "events_after_snapshot": int(taken.group(1)),
                "whole_log_seconds": round(whole, 2),
            }
        )
    return results


# ---------------------------------------------------------------- 7. deadlines
def deadlines(sizes: list[int], out: Out) -> list[dict[str, Any]]:
    from streams.decisions.deadlines import DeadlineIndex

    results = []
    for size in sizes:
        index = DeadlineIndex()
        now = datetime.now(UTC)
        entries = [
            (i % 6, f"ref-{i}", now + timedelta(seconds=1 + (i * 7919) % 86_400))
            for i in range(size)
        ]
        # built as a worker rebuilds it after a rebalance (one heapify)
        started = time.perf_counter()
        index.set_many(entries)
        load_s = time.perf_counter() - started
        ticks = []
        for _ in range(200):
            t = time.perf_counter()
            index.pop_due(now)
            ticks.append((time.perf_counter() - t) * 1e6)
        # a second's worth of due entries, popped as the timer would
        later = now + timedelta(seconds=60)
        t = time.perf_counter()
        due = index.pop_due(later)
        burst_ms = (time.perf_counter() - t) * 1000
        out(
            f"7. deadlines with {size:,} open offers: idle tick {statistics.median(ticks):.1f} us, "
            f"{len(due)} due in one tick popped in {burst_ms:.2f} ms; index built in {load_s:.1f}s"
        )
        results.append(
            {
                "open": size,
                "idle_tick_us": round(statistics.median(ticks), 2),
                "due": len(due),
                "due_tick_ms": round(burst_ms, 3),
                "build_s": round(load_s, 2),
            }
        )
    return results


# ---------------------------------------------------------------- 8. restore
def _referral_record(i: int, partition: int, respond_by: datetime) -> dict[str, Any]:
    rid = f"{CLINIC}:scr-restore-{i:08d}.food-insecurity"
    return {
        "referral_id": rid,
        "clinic_referral_id": rid.split(":", 1)[1],
        "clinic_id": CLINIC,
        "patient": {
            "id": f"pt-{i:08d}",
            "given_name": "Ana",
            "phone": "+17185550100",
            "preferred_language": "en",
            "postal_code": "10451",
        },
        "consent": {"granted": True, "categories": None, "expires_at": None},
        "category": "food-insecurity",
        "screening_id": f"scr-restore-{i:08d}",
        "requested_at": datetime.now(UTC).isoformat(),
        "status": "requested",
        "business_status": "offered",
        "attempt": 1,
        "offer": {
            "service_id": "svc-00001",
            "org_id": "bench-org-1",
            "attempt": 1,
            "offered_at": datetime.now(UTC).isoformat(),
            "respond_by": respond_by.isoformat(),
            "answered": False,
        },
        "tried": ["svc-00001"],
        "step": 1,
        "seen": [f"open:{rid}"],
        "partition": partition,
        "updated_at": datetime.now(UTC).isoformat(),
        "outbox": {"command_id": f"open:{rid}", "messages": []},
    }


async def restore(bootstrap: str, data_dir: Path, size: int, out: Out) -> dict[str, Any]:
    topics = await _network(bootstrap, 6, 4)
    changelog = f"refnet-{topics.prefix}-referrals-changelog"
    producer = await _producer(bootstrap)
    respond_by = datetime.now(UTC) + timedelta(days=1)
    try:
        for start in range(0, size, 20_000):
            items = []
            futures = []
            for i in range(start, min(size, start + 20_000)):
                partition = i % topics.partitions
                record = _referral_record(i, partition, respond_by)
                items.append(
                    (
                        partition,
                        json.dumps(record["referral_id"]).encode(),
                        json.dumps(record).encode(),
                    )
                )
            for partition, key, value in items:
                futures.append(await producer.send(changelog, value, key=key, partition=partition))
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    worker = Worker(bootstrap, topics, data_dir)
    started = time.perf_counter()
    worker.start()
    try:
        found = await worker.wait_for_log(r"deadline index: (\d+) pending", 3600)
        seconds = time.perf_counter() - started
        pending = int(found.group(1))
        await asyncio.sleep(1)
        rss_kb = _status_kb(worker.pid, "VmRSS")
    finally:
        worker.stop()
    per = rss_kb * 1024 / max(pending, 1)
    phases = _restore_phases(worker.log.read_text(errors="replace"))
    out(
        f"8. restore of {size:,} open referrals: {seconds:.1f}s to a rebuilt deadline index "
        f"({pending:,} pending); worker RSS {rss_kb / 1024:.0f} MB, ~{per / 1024:.1f} KiB "
        "per open referral (RSS over referrals, baseline included)"
    )
    if phases:
        out("   " + ", ".join(f"{name} {secs:.1f}s" for name, secs in phases.items()))
    return {
        "referrals": size,
        "seconds": round(seconds, 2),
        "pending": pending,
        "rss_mb": round(rss_kb / 1024),
        "kib_per_referral": round(per / 1024, 2),
    }


_LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]", re.MULTILINE)


def _log_time(stamp: str) -> datetime:
    # the worker logs local wall-clock time; only differences are used
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)


def _restore_phases(text: str) -> dict[str, float]:
    """Where a restore's time went, from the worker's log: start-up, the bulk load
    of the changelogs (streams.runtime.store), what Faust's recovery read after it, and
    the deadline index."""

    def at(marker: str, last: bool = False) -> datetime | None:
        index = text.rfind(marker) if last else text.find(marker)
        if index < 0:
            return None
        stamps = list(_LOG_TIME.finditer(text, 0, index + 1))
        if not stamps:
            return None
        return _log_time(stamps[-1].group(1))

    first = _LOG_TIME.search(text)
    marks = [
        at("loading changelog partitions"),
        at("changelog records of partitions", last=True),
        at("Restore complete!"),
        at("deadline index:"),
    ]
    if first is None or None in marks:
        return {}
    start = _log_time(first.group(1))
    loading, loaded, recovered, indexed = (m for m in marks if m is not None)
    return {
        "worker start-up": (loading - start).total_seconds(),
        "loading the changelogs": (loaded - loading).total_seconds(),
        "Faust's recovery after it": (recovered - loaded).total_seconds(),
        "deadline index": (indexed - recovered).total_seconds(),
    }


# ---------------------------------------------------------------- the command
async def run_bench(bootstrap: str, args: argparse.Namespace, out: Out) -> dict[str, Any]:
    full = args.full
    history = [100_000, 1_000_000] if full else [10_000, 100_000]
    opens = [100_000, 1_000_000]
    restored = 1_000_000 if full else 100_000
    results: dict[str, Any] = {
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]}
    }
    with tempfile.TemporaryDirectory(prefix="refnet-bench-") as tmp:
        data_dir = Path(tmp)
        only = set(args.only or [])

        def wanted(name: str) -> bool:
            return not only or name in only

        if wanted("passthrough"):
            results["passthrough"] = await passthrough(bootstrap, args.messages, out)
        if wanted("pipeline"):
            results.update(await pipeline(bootstrap, data_dir, args.screenings, args.rates, out))
        if wanted("ranking"):
            results["ranking"] = ranking([10, 1_000, 10_000], out)
        if wanted("startup"):
            results["startup"] = await startup(bootstrap, data_dir, history, out)
        if wanted("deadlines"):
            results["deadlines"] = deadlines(opens, out)
        if wanted("restore"):
            results["restore"] = await restore(bootstrap, data_dir, restored, out)
    if "passthrough" in results and "pipeline" in results:
        ratio = results["pipeline"]["screenings_per_s"] / results["passthrough"]["messages_per_s"]
        results["pipeline"]["ratio_to_passthrough"] = round(ratio, 4)
        out(f"   pipeline / passthrough = {ratio:.3f}")
    return results


def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    from deploy.local.broker import LocalBroker

    out: Out = (
        (lambda line: print(line, file=sys.stderr, flush=True))
        if args.json
        else (lambda line: print(line, flush=True))
    )
    if settings.kafka_bootstrap:
        bootstrap = settings.kafka_bootstrap
        broker = None
    else:
        broker = LocalBroker(
            Path(tempfile.mkdtemp(prefix="refnet-bench-kafka-")),
            cache_dir=settings.cache_dir,
            version=settings.kafka_version,
            port=0,
            heap="1g",
        )
        out("# starting an embedded broker for the benchmark...")
        bootstrap = broker.start().bootstrap
    try:
        results = asyncio.run(run_bench(bootstrap, args, out))
    finally:
        if broker is not None:
            broker.stop()
    if args.json:
        print(json.dumps(results))
    return 0


def register(sub: Any) -> None:
    bench = sub.add_parser(
        "bench", help="measure refnet on the embedded broker (prints figures; asserts nothing)"
    )
    bench.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    bench.add_argument("--full", action="store_true", help="the issue's sizes (10^6 events)")
    bench.add_argument("--screenings", type=int, default=3000, help="screenings at saturation")
    bench.add_argument("--messages", type=int, default=30000, help="passthrough messages")
    bench.add_argument("--rates", type=int, nargs="+", default=[50, 200], help="latency rates/s")
    bench.add_argument(
        "--only",
        nargs="+",
        choices=["passthrough", "pipeline", "ranking", "startup", "deadlines", "restore"],
        help="run only these parts",
    )
    bench.set_defaults(func=cmd_bench)
