"""2-4. The pipeline: saturation, latency at fixed rates, and the worker's cost.

Screenings go through a real ``refnet worker`` until every referral is offered;
:class:`OfferReader` notes when, and when each hop produced its command.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

from deploy.bench.kafka import (
    CLINIC,
    BackgroundReader,
    Out,
    bench_service,
    network,
    new_producer,
    pct,
    publish,
    screening_record,
)
from deploy.bench.process import Worker, cpu, status_kb
from schemas.events import to_bytes
from schemas.topics import Topics

# ---------------------------------------------------------------- 2-4. the pipeline
#: seconds at a latency part's rate before the measured ten
WARM_UP = 2.0


async def _settle(pid: int, *, idle: float = 0.05, limit: float = 60.0) -> None:
    """Wait until the worker uses less than ``idle`` of a core over half a second."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = cpu(pid)
        await asyncio.sleep(0.5)
        if cpu(pid) - before < idle * 0.5:
            return


_SCREENING_ID = re.compile(rb'"screening_id":\s*"([^"]+)"')
_KIND = re.compile(rb'"kind":\s*"(submission|open)"')
#: the suffix a screening's referral id may carry to land in its patient's partition
#: (streams.decisions.commands.placed_referral_id): the bench's ids are short, so
#: a referral is known by its id without it
_PLACED = re.compile(r"~[0-9]+$")


def plain(referral_id: str) -> str:
    """``referral_id`` without a placement suffix."""
    return _PLACED.sub("", referral_id)


class OfferReader(BackgroundReader):
    """Reads every organization's referrals topic; notes when each referral was offered.

    It also reads the two internal topics, for when each hop produced its
    command (record timestamps): the ingress's submission, the patient agent's
    ``open``, the referral agent's offer."""

    timeout_ms = 100
    max_records = 5000

    def __init__(self, bootstrap: str, topics: list[str], internal: list[str]) -> None:
        super().__init__(bootstrap, *topics, *internal)
        self.internal = set(internal)
        self.offered: dict[str, float] = {}
        #: referral id -> the offer record's timestamp (when the worker produced it)
        self.produced: dict[str, float] = {}
        #: (command kind, screening id) -> the command record's timestamp
        self.hops: dict[tuple[str, str], float] = {}

    def received(self, batch: dict[Any, list[Any]]) -> None:
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
                    referral = plain(document["referral_id"])
                    self.offered.setdefault(referral, now)
                    self.produced.setdefault(referral, r.timestamp / 1000)

    async def wait(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.offered) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if len(self.offered) < count:
            raise TimeoutError(f"{len(self.offered)} of {count} referrals offered")


def _hops(reader: OfferReader, sent_wall: dict[str, float]) -> dict[str, tuple[float, float]]:
    """p50 and p99 of each hop, in ms: submission to the ingress's command, to the
    patient agent's ``open``, to the referral agent's offer; or, for a referral the
    patient agent decided itself (no ``open`` on the topic), to its offer."""
    spans: dict[str, list[float]] = {
        "ingress": [],
        "patient agent": [],
        "referral agent": [],
        "patient agent with the referral": [],
    }
    for referral, sent in sent_wall.items():
        screening = referral.split(":", 1)[1].rsplit(".", 1)[0]
        submitted = reader.hops.get(("submission", screening))
        opened = reader.hops.get(("open", screening))
        offered = reader.produced.get(referral)
        if submitted is None or offered is None:
            continue
        spans["ingress"].append((submitted - sent) * 1000)
        if opened is None:
            spans["patient agent with the referral"].append((offered - submitted) * 1000)
            continue
        spans["patient agent"].append((opened - submitted) * 1000)
        spans["referral agent"].append((offered - opened) * 1000)
    return {name: (pct(values, 0.5), pct(values, 0.99)) for name, values in spans.items() if values}


async def pipeline(
    bootstrap: str,
    data_dir: Path,
    screenings: int,
    rates: list[int],
    out: Out,
    *,
    profile: str | None = None,
) -> dict[str, Any]:
    """Saturation, then each rate, through one worker (``profile``: cProfile it,
    the statistics written to that path)."""
    orgs = 4
    topics = await network(bootstrap, 6, orgs)
    producer = await new_producer(bootstrap)
    # for the latency part: the clinic's client sends each screening at once (no
    # linger), so that what is measured is the network, not the bench's batching
    prompt = await new_producer(bootstrap, linger_ms=0)
    worker = Worker(bootstrap, topics, data_dir, profile=profile)
    reader = OfferReader(
        bootstrap,
        [topics.org_referrals(f"bench-org-{o}") for o in range(orgs)],
        [topics.network_patients, topics.network_referrals],
    )
    try:
        directory = [bench_service(i, f"bench-org-{i % orgs}") for i in range(20)]
        await publish(producer, topics.directory, [(s.service_id, to_bytes(s)) for s in directory])
        worker.start()
        await reader.start()
        await worker.wait_for_log(r"network view ready", 120)
        # warm up: one screening through, so that every part is running
        warm_key, warm = screening_record("warm", 0)
        await publish(producer, topics.clinic_submissions(CLINIC), [(warm_key, warm)])
        await reader.wait(1, 120)
        result = await _saturation(producer, topics, worker, reader, screenings, out)
        result["latency"] = []
        for per_second in rates:
            # steady state: the worker first finishes what the last part left it
            # (the network view reading the saturation's state changes, ...), then
            # the rate runs for WARM_UP seconds before the ten that are measured
            await _settle(worker.pid)
            result["latency"].append(
                await _latency(prompt, topics, reader, per_second, out, worker.pid)
            )
    finally:
        await reader.stop()
        worker.stop()
        await producer.stop()
        await prompt.stop()
    return result


async def _saturation(
    producer: Any, topics: Topics, worker: Worker, reader: OfferReader, screenings: int, out: Out
) -> dict[str, Any]:
    """2 and 4: every screening published at once; the rate, CPU and RSS."""
    items = [screening_record("sat", i) for i in range(screenings)]
    cpu_before = cpu(worker.pid)
    started = time.perf_counter()
    await publish(producer, topics.clinic_submissions(CLINIC), list(items))
    await reader.wait(1 + screenings, 600)
    seconds = max(reader.offered.values()) - started
    cpu_s = cpu(worker.pid) - cpu_before
    rate = screenings / seconds
    out(
        f"2. pipeline: {screenings} screenings, submission to offer, in {seconds:.2f}s: "
        f"{rate:,.1f} screenings/s (one worker, 6 partitions)"
    )
    out(
        f"4. cost: {cpu_s / screenings * 1000:.2f} CPU seconds per 1,000 screenings; "
        f"worker peak RSS {status_kb(worker.pid, 'VmHWM') / 1024:.0f} MB"
    )
    return {
        "pipeline": {
            "screenings": screenings,
            "seconds": round(seconds, 3),
            "screenings_per_s": round(rate, 1),
        },
        "cost": {
            "cpu_s_per_1000": round(cpu_s / screenings * 1000, 3),
            "peak_rss_mb": round(status_kb(worker.pid, "VmHWM") / 1024),
        },
    }


async def _latency(
    prompt: Any, topics: Topics, reader: OfferReader, per_second: int, out: Out, pid: int
) -> dict[str, Any]:
    """3: latency at a fixed rate, to the bench's reader and to the offer produced,
    and the worker's CPU per screening at that rate (small batches cost more each)."""
    warm_up = int(per_second * WARM_UP)
    count = per_second * 10
    sent: dict[str, float] = {}
    sent_wall: dict[str, float] = {}
    run = f"lat{per_second}"
    cpu_before = cpu(pid)
    started = time.perf_counter()
    for i in range(warm_up + count):
        due = started + i / per_second
        pause = due - time.perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
        key, value = screening_record(run, i)
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
    cpu_ms = (cpu(pid) - cpu_before) / (warm_up + count) * 1000
    latencies = [(reader.offered[r] - at) * 1000 for r, at in sent.items() if r in reader.offered]
    p50, p95, p99 = (pct(latencies, q) for q in (0.5, 0.95, 0.99))
    # the same, up to the moment the worker produced the offer (its record's
    # timestamp): without the bench's own reader fetching it
    in_network = [
        (reader.produced[r] - at) * 1000 for r, at in sent_wall.items() if r in reader.produced
    ]
    n50, n95, n99 = (pct(in_network, q) for q in (0.5, 0.95, 0.99))
    out(
        f"3. latency at {per_second} screenings/s ({len(latencies)} of {count}): "
        f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms to the reader; "
        f"p50 {n50:.0f} ms, p95 {n95:.0f} ms, p99 {n99:.0f} ms to the offer produced"
    )
    hops = _hops(reader, sent_wall)
    out(
        "   by hop (to the record each produced), p50 / p99: "
        + "; ".join(f"{name} {h[0]:.0f} / {h[1]:.0f} ms" for name, h in hops.items())
        + f"; worker CPU {cpu_ms:.2f} ms a screening"
    )
    return {
        "rate": per_second,
        "p50_ms": round(p50, 1),
        "p95_ms": round(p95, 1),
        "p99_ms": round(p99, 1),
        "produced_p50_ms": round(n50, 1),
        "produced_p95_ms": round(n95, 1),
        "produced_p99_ms": round(n99, 1),
        "hops_ms": {
            name: {"p50": round(h[0], 1), "p99": round(h[1], 1)} for name, h in hops.items()
        },
        "measured": len(latencies),
        "worker_cpu_ms_per_screening": round(cpu_ms, 3),
    }
