"""Creating a plain topic on the test broker, for tests that need one of their own, and
reading what a consumer group committed on it."""

from __future__ import annotations

from aiokafka import TopicPartition
from aiokafka.admin import NewTopic

from connectors.kafka import clients


async def create_topic(bootstrap: str, name: str, partitions: int = 1) -> str:
    admin = clients.admin(bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()
    return name


async def committed_offset(bootstrap: str, group: str, tp: TopicPartition) -> int | None:
    """The offset ``group`` committed for ``tp``, or None if it committed none."""
    admin = clients.admin(bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=[tp])
    finally:
        await admin.close()
    meta = offsets.get(tp)
    return None if meta is None or meta.offset < 0 else meta.offset
