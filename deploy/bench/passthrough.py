"""1. ``passthrough``: a raw aiokafka consume-decode-produce loop, the ceiling any
Kafka consumer in Python meets on the same broker.
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
    return {"messages": count, "seconds": round(seconds, 3), "messages_per_s": round(rate)}
