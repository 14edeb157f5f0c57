"""What every part shares: the bench clinic, its events, a producer, fresh topics, a reader."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer

from connectors.kafka.admin import apply_topics
from connectors.kafka.clients import consumer as kafka_consumer
from connectors.kafka.clients import producer as kafka_producer
from deploy.bench.events import FOOD, patient, screening, service
from schemas.events import ServiceUpserted, to_bytes
from schemas.topics import Topics

POSTAL_CODES = ("10451", "10452", "10453", "10454", "10455", "10456")
CLINIC = "bench-clinic"
Out = Callable[[str], None]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_service(i: int, org: str, *, codes: tuple[str, ...] | None = None) -> ServiceUpserted:
    """Service ``i`` of ``org``: food, capacity to spare, three postal codes (or ``codes``)."""
    codes = codes or tuple(POSTAL_CODES[(i + k) % len(POSTAL_CODES)] for k in range(3))
    return service(
        f"svc-{i:05d}",
        org,
        postal_codes=codes,
        languages=("en", "es") if i % 3 == 0 else ("en",),
        capacity={"available": 1_000_000},
        name=f"Service {i}",
        occurred_at=datetime.now(UTC) - timedelta(days=1),
    )


def screening_record(run: str, i: int) -> tuple[str, bytes]:
    """Screening ``i`` of a run, food insecurity only: its key (the patient) and value."""
    patient_id = f"pt-{run}-{i:07d}"
    event = screening(
        f"scr-{run}-{i:07d}",
        answers=FOOD,
        patient_fields=patient(
            patient_id,
            language="es" if i % 4 == 0 else "en",
            postal_code=POSTAL_CODES[i % len(POSTAL_CODES)],
            birth_date=None,
        ),
    )
    return patient_id, to_bytes(event)


async def new_producer(bootstrap: str, *, linger_ms: int = 5) -> AIOKafkaProducer:
    producer = kafka_producer(bootstrap, linger_ms=linger_ms, max_batch_size=256 * 1024)
    await producer.start()
    return producer


async def publish(
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


def fresh_topics(partitions: int) -> Topics:
    return Topics(prefix=f"bench{uuid.uuid4().hex[:8]}", partitions=partitions)


async def network(bootstrap: str, partitions: int, orgs: int) -> Topics:
    topics = fresh_topics(partitions)
    specs = topics.apply_catalog(f"refnet-{topics.prefix}") + topics.clinic_catalog(CLINIC)
    for o in range(orgs):
        specs += topics.org_catalog(f"bench-org-{o}")
    await asyncio.to_thread(apply_topics, bootstrap, specs)
    return topics


class BackgroundReader:
    """Reads its topics from the beginning, in a task of its own, until stopped.

    Each batch goes to :meth:`received`, which a reader defines.
    """

    timeout_ms = 200
    max_records = 2000

    def __init__(self, bootstrap: str, *topics: str) -> None:
        self.consumer = kafka_consumer(
            bootstrap, *topics, auto_offset_reset="earliest", group_id=None
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(
                timeout_ms=self.timeout_ms, max_records=self.max_records
            )
            self.received(batch)

    def received(self, batch: dict[Any, list[Any]]) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()
