"""Creating a plain topic on the test broker, for tests that need one of their own."""

from __future__ import annotations

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
