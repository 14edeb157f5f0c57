"""Messages cross the real broker: the client factory's clients, and a minimal Faust agent."""

from __future__ import annotations

import asyncio

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from connectors.kafka import clients
from connectors.kafka.admin import apply_topics
from schemas.topics import TopicKind, Topics, TopicSpec

pytestmark = pytest.mark.integration


async def test_idempotent_producer_round_trips_through_the_broker(
    kafka_bootstrap: str, topics: Topics, unique: str
) -> None:
    topic = topics.clinic_submissions(f"clinic-{unique}")
    await asyncio.to_thread(
        apply_topics, kafka_bootstrap, topics.clinic_catalog(f"clinic-{unique}")
    )
    producer = clients.producer(kafka_bootstrap)  # idempotent, acks=all
    await producer.start()
    try:
        for i in range(5):
            await producer.send_and_wait(topic, f'{{"n": {i}}}'.encode(), key=b"pt-1")
    finally:
        await producer.stop()
    consumer = clients.consumer(
        kafka_bootstrap,
        topic,
        group_id=f"g-{unique}",
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        got = []
        while len(got) < 5:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
            for records in batch.values():
                got.extend(r.value for r in records)
    finally:
        await consumer.stop()
    # one key -> one partition -> the order it was produced in
    assert got == [f'{{"n": {i}}}'.encode() for i in range(5)]


async def test_faust_agent_consumes_and_produces_through_the_broker(
    kafka_bootstrap: str, topics: Topics, unique: str
) -> None:
    source = TopicSpec(f"{topics.prefix}.in", TopicKind.SCREENINGS, partitions=3)
    sink = TopicSpec(f"{topics.prefix}.out", TopicKind.SCREENINGS, partitions=3)
    await asyncio.to_thread(apply_topics, kafka_bootstrap, [source, sink])

    app = faust.App(
        f"roundtrip-{unique}",
        broker=f"kafka://{kafka_bootstrap}",
        store="memory://",
        web_enabled=False,
        topic_partitions=3,
        producer_acks=-1,
    )
    src = app.topic(source.name, value_serializer="raw", key_serializer="raw")
    dst = app.topic(sink.name, value_serializer="raw", key_serializer="raw")

    @app.agent(src)
    async def shout(stream):  # type: ignore[no-untyped-def]
        async for event in stream.events():
            await dst.send(key=event.key, value=event.value.upper())

    app.finalize()
    await app.start()
    try:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        await producer.send_and_wait(source.name, b"closed loop", key=b"ref-1")
        await producer.stop()
        consumer = AIOKafkaConsumer(
            sink.name, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), 60)
        finally:
            await consumer.stop()
    finally:
        await app.stop()
    assert (record.key, record.value) == (b"ref-1", b"CLOSED LOOP")
