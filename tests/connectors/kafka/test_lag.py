"""Consumer lag, sampled from the real broker."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import TopicPartition

from connectors.kafka import clients
from connectors.observability import metrics
from connectors.observability.lag import LagMonitor, lag_by_topic
from tests.kafka_topics import create_topic

pytestmark = pytest.mark.integration


def test_lag_is_summed_per_topic_from_the_commit_or_the_start() -> None:
    a0, a1, b0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)
    end = {a0: 10, a1: 7, b0: 5}
    assert lag_by_topic({a0: 4, a1: None, b0: 5}, end, {a1: 2}) == {"a": 6 + 5, "b": 0}


async def test_a_group_is_measured_on_the_topics_it_reads_only(kafka_bootstrap: str) -> None:
    unique = uuid.uuid4().hex[:8]
    read = await create_topic(kafka_bootstrap, f"lag-{unique}.submissions")
    stale = await create_topic(kafka_bootstrap, f"lag-{unique}.updates")
    producer = clients.producer(kafka_bootstrap)
    await producer.start()
    try:
        for topic in (read, stale):
            for _ in range(5):
                await producer.send_and_wait(topic, b"x")
    finally:
        await producer.stop()
    group = f"lag-{unique}"
    committer = clients.consumer(kafka_bootstrap, group_id=group)
    await committer.start()
    try:
        # the group reads the submissions; its offset on the updates is an earlier version's
        offsets = {TopicPartition(read, 0): 2, TopicPartition(stale, 0): 1}
        committer.assign(list(offsets))
        await committer.commit(offsets)
    finally:
        await committer.stop()

    admin = clients.admin(kafka_bootstrap)
    reader = clients.consumer(kafka_bootstrap)
    await admin.start()
    await reader.start()
    try:
        every = LagMonitor(kafka_bootstrap, [group])
        assert await every.sample(admin, reader) == {group: {read: 3, stale: 4}}
        reads = {group: rf"lag-{unique}\.submissions"}
        own = LagMonitor(kafka_bootstrap, [group], reads=reads)
        assert await own.sample(admin, reader) == {group: {read: 3}}
        assert metrics.CONSUMER_LAG.labels(group, read)._value.get() == 3
        # the gauge the first monitor set for the other topic is removed once it is not read
        every.reads = own.reads
        assert await every.sample(admin, reader) == {group: {read: 3}}
        sampled = {s.labels["topic"] for m in metrics.CONSUMER_LAG.collect() for s in m.samples}
        assert stale not in sampled and read in sampled
    finally:
        await reader.stop()
        await admin.close()
