"""The ingress resumes each assigned partition at its committed offset, looked up
for every partition in one request (streams.runtime.positions), on a real broker."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from connectors.kafka.admin import apply_topics
from schemas.topics import TopicKind, TopicSpec
from streams.runtime.positions import SeekToCommitted

pytestmark = pytest.mark.integration


async def test_each_partition_resumes_at_its_committed_offset_or_its_beginning(
    kafka_bootstrap: str,
) -> None:
    prefix = f"pos{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}.a", f"{prefix}.b", f"{prefix}.c"]
    specs = [TopicSpec(n, TopicKind.CLINIC_SUBMISSIONS, partitions=1) for n in names]
    await asyncio.to_thread(apply_topics, kafka_bootstrap, specs)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for name in names:
            for i in range(5):
                await producer.send_and_wait(name, f"{name}-{i}".encode())
    finally:
        await producer.stop()
    group = f"{prefix}-group"
    # the group committed 3 on a and 5 (everything) on b; nothing on c
    first = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group)
    await first.start()
    try:
        first.assign([TopicPartition(n, 0) for n in names])
        await first.commit(
            {
                TopicPartition(names[0], 0): OffsetAndMetadata(3, ""),
                TopicPartition(names[1], 0): OffsetAndMetadata(5, ""),
            }
        )
    finally:
        await first.stop()

    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        auto_offset_reset="latest",  # what the listener must not fall back to for c
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        consumer.subscribe(pattern=rf"^{prefix}\..*$", listener=SeekToCommitted(consumer))
        seen: dict[str, list[int]] = {}
        deadline = asyncio.get_running_loop().time() + 60
        while sum(len(v) for v in seen.values()) < 2 + 5:
            assert asyncio.get_running_loop().time() < deadline, seen
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                seen.setdefault(tp.topic, []).extend(r.offset for r in records)
    finally:
        await consumer.stop()
    assert seen == {names[0]: [3, 4], names[2]: [0, 1, 2, 3, 4]}
