"""The ingress commits in the background, on the real broker."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.runtime.ingress_commit import Committer
from tests.kafka_topics import committed_offset, create_topic

pytestmark = pytest.mark.integration


async def _group_consumer(bootstrap: str, partitions: int) -> tuple[str, str, AIOKafkaConsumer]:
    """A topic of its own and a started consumer of a group of its own."""
    topic = await create_topic(bootstrap, f"commit-{uuid.uuid4().hex[:10]}", partitions)
    group = f"g-{uuid.uuid4().hex[:8]}"
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    return topic, group, consumer


async def test_the_newest_offsets_are_committed_last_one_request_at_a_time(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    topic, group, consumer = await _group_consumer(kafka_bootstrap, 2)
    first, second = TopicPartition(topic, 0), TopicPartition(topic, 1)
    try:
        consumer.assign([first, second])
        committer = Committer(consumer)
        # handed over faster than the coordinator answers: merged, newest wins
        for offset in range(1, 21):
            committer.commit({first: offset})
        committer.commit({second: 7})
        await committer.close()
        assert await committed_offset(kafka_bootstrap, group, first) == 20
        assert await committed_offset(kafka_bootstrap, group, second) == 7

        # a partition taken away (as by a rebalance): the refusal is logged, the
        # loop goes on, and the next commit of what it still owns succeeds
        consumer.assign([second])
        with caplog.at_level(logging.WARNING, logger="streams.runtime.ingress"):
            committer.commit({first: 30})
            await committer.close()
        assert "ingress commit failed" in caplog.text
        committer.commit({second: 9})
        await asyncio.wait_for(committer.close(), 10)
        assert await committed_offset(kafka_bootstrap, group, second) == 9
        assert await committed_offset(kafka_bootstrap, group, first) == 20
    finally:
        await consumer.stop()


async def test_offsets_handed_over_within_the_spacing_go_in_one_request(
    kafka_bootstrap: str,
) -> None:
    topic, group, consumer = await _group_consumer(kafka_bootstrap, 1)
    tp = TopicPartition(topic, 0)
    requests: list[dict[TopicPartition, int]] = []
    commit = consumer.commit

    async def counted(offsets: dict[TopicPartition, int]) -> None:
        requests.append(dict(offsets))
        await commit(offsets)

    consumer.commit = counted  # type: ignore[method-assign]
    try:
        consumer.assign([tp])
        committer = Committer(consumer, spacing=30.0)
        committer.commit({tp: 1})  # goes at once
        for offset in range(2, 12):  # a batch every 10 ms, within the spacing
            await asyncio.sleep(0.01)
            committer.commit({tp: offset})
        assert requests == [{tp: 1}]  # the rest waits for the spacing
        await asyncio.wait_for(committer.close(), 10)  # a stop does not wait for it
        assert requests == [{tp: 1}, {tp: 11}]
        assert await committed_offset(kafka_bootstrap, group, tp) == 11
    finally:
        await consumer.stop()
