"""1. ``passthrough``: a raw aiokafka consume-decode-produce loop, the ceiling any
Kafka consumer in Python meets on the same broker; and what one message costs the
client when messages come one at a time (:func:`round_trips`), as they do below
saturation, where every batch pays its round trips for one or two screenings.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from connectors.kafka.admin import apply_topics
from connectors.kafka.clients import consumer as kafka_consumer
from deploy.bench.kafka import (
    Out,
    new_producer,
    publish,
    screening_record,
)
from schemas.topics import TopicKind, TopicSpec


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
    producer = await new_producer(bootstrap)
    try:
        await publish(producer, source, [screening_record("pass", i) for i in range(count)])
        consumer = kafka_consumer(
            bootstrap, source, group_id=f"{prefix}-group", auto_offset_reset="earliest"
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
    trips = await round_trips(bootstrap, sink)
    out(
        "   one message at a time, this process's CPU: a produce awaited "
        f"{trips['produce_cpu_ms']:.2f} ms; produced and fetched back "
        f"{trips['produce_fetch_cpu_ms']:.2f} ms"
    )
    return {
        "messages": count,
        "seconds": round(seconds, 3),
        "messages_per_s": round(rate),
        "round_trips": trips,
    }


async def round_trips(bootstrap: str, topic: str, count: int = 500) -> dict[str, float]:
    """CPU milliseconds of this process per message sent one at a time (the producer
    idempotent with ``acks=all``, as refnet's): a produce awaited; a produce awaited
    and fetched back by a consumer of ``topic``."""
    producer = await new_producer(bootstrap, linger_ms=0)
    consumer = kafka_consumer(bootstrap, topic, auto_offset_reset="latest")
    try:
        await consumer.start()
        while not consumer.assignment():
            await asyncio.sleep(0.05)
        await consumer.seek_to_end()
        for tp in consumer.assignment():  # positioned at the end before anything is sent
            await consumer.position(tp)
        for i in range(50):  # warm up
            await (await producer.send(topic, b"warm", key=str(i).encode()))
        await _drain(consumer, 50)
        started = time.process_time()
        for i in range(count):
            await (await producer.send(topic, b"x" * 500, key=str(i).encode()))
        produce = (time.process_time() - started) / count * 1000
        await _drain(consumer, count)
        started = time.process_time()
        for i in range(count):
            await (await producer.send(topic, b"x" * 500, key=str(i).encode()))
            await _drain(consumer, 1)
        both = (time.process_time() - started) / count * 1000
    finally:
        await consumer.stop()
        await producer.stop()
    return {"produce_cpu_ms": round(produce, 3), "produce_fetch_cpu_ms": round(both, 3)}


async def _drain(consumer: Any, count: int) -> None:
    """Fetch until ``count`` records came back (at most 30 s)."""
    deadline = time.monotonic() + 30
    while count > 0 and time.monotonic() < deadline:
        batches = await consumer.getmany(timeout_ms=500)
        count -= sum(len(records) for records in batches.values())
