"""6 and 8: a worker's start-up from the log and its snapshot, and its tables' restore."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from deploy.bench.kafka import (
    CLINIC,
    Out,
    network,
    new_producer,
    publish,
)
from deploy.bench.process import Worker, status_kb
from schemas.events import ReferralStateChanged, to_bytes
from schemas.topics import Topics


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
        await publish(producer, topics.referral_events, chunk)


async def startup(bootstrap: str, data_dir: Path, sizes: list[int], out: Out) -> list[Any]:
    """Start-to-ready twice per size: with no snapshot (the whole log is read), then
    from the snapshot the first worker wrote as it stopped, with 1% more events after it."""
    results = []
    for size in sizes:
        topics = await network(bootstrap, 6, 4)
        producer = await new_producer(bootstrap)
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
    topics = await network(bootstrap, 6, 4)
    changelog = f"refnet-{topics.prefix}-referrals-changelog"
    producer = await new_producer(bootstrap)
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
        rss_kb = status_kb(worker.pid, "VmRSS")
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
