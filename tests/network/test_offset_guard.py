"""The offset guard finds the input records Faust skipped, on the real broker."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.runtime import gaps
from streams.runtime.gaps import OffsetGuard, RawEvent, RawMessage
from tests.kafka_topics import create_topic

pytestmark = pytest.mark.integration


async def _topic_with(bootstrap: str, n: int) -> str:
    topic = await create_topic(bootstrap, f"guard-{uuid.uuid4().hex[:10]}", 2)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for i in range(n):
            await producer.send_and_wait(topic, f"m{i}".encode(), key=b"k", partition=0)
    finally:
        await producer.stop()
    return topic


async def _commit(bootstrap: str, group: str, topic: str, offset: int) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.commit({tp: offset})
    finally:
        await consumer.stop()


def _event(topic: str, offset: int, partition: int = 0) -> RawEvent:
    return RawEvent(RawMessage(topic, partition, offset, b"k", b"x"))


async def test_the_records_between_the_committed_offset_and_an_event_are_read_back(
    kafka_bootstrap: str,
) -> None:
    topic = await _topic_with(kafka_bootstrap, 6)
    group = f"g-{uuid.uuid4().hex[:8]}"
    await _commit(kafka_bootstrap, group, topic, 2)
    generation = [1]
    guard = OffsetGuard(kafka_bootstrap, group, generation=lambda: generation[0])
    try:
        # the first event of the generation is 4: Faust skipped 2 and 3
        missed = await guard.missed(_event(topic, 4))
        assert [(r.message.offset, r.value) for r in missed] == [(2, b"m2"), (3, b"m3")]
        for record in missed:
            guard.applied(record)
        guard.applied(_event(topic, 4))
        assert await guard.missed(_event(topic, 5)) == []
        guard.applied(_event(topic, 5))
        # a message delivered again (a replay) is no hole
        assert await guard.missed(_event(topic, 3)) == []

        # a new generation starts from the group's committed offset again
        await _commit(kafka_bootstrap, group, topic, 5)
        generation[0] = 2
        assert await guard.next_offset(topic, 0) == 5
        missed = await guard.missed(_event(topic, 5))
        assert missed == []

        # a partition the group never committed starts at its first record
        assert await guard.next_offset(topic, 1) == 0
    finally:
        await guard.stop()


async def test_a_quiet_partition_with_records_not_applied_is_poked_once(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gaps, "IDLE_SECONDS", 0.0)
    topic = await _topic_with(kafka_bootstrap, 3)
    group = f"g-{uuid.uuid4().hex[:8]}"
    await _commit(kafka_bootstrap, group, topic, 1)
    guard = OffsetGuard(kafka_bootstrap, group, generation=lambda: 1)
    try:
        # newly owned: the agent gets its time first
        assert await guard.idle([(topic, 0), (topic, 1)]) == []
        # applied up to 1 (committed); records 1 and 2 never reached the agent
        assert await guard.idle([(topic, 0), (topic, 1)]) == [(topic, 0)]
        # poked a moment ago: not again before POKE_EVERY
        assert await guard.idle([(topic, 0)]) == []
    finally:
        await guard.stop()

    guard = OffsetGuard(kafka_bootstrap, group, generation=lambda: 1)
    try:
        for offset in range(3):
            guard.applied(_event(topic, offset))
        await guard.next_offset(topic, 0)
        for offset in range(1, 3):
            guard.applied(_event(topic, offset))
        # everything applied: nothing to poke
        assert await guard.idle([(topic, 0)]) == []
        assert await guard.idle([(topic, 0)]) == []
    finally:
        await guard.stop()
