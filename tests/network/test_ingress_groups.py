"""The ingress's two consumer groups on the real broker: each reads only its kind of
party topic, and the organizations' updates' group, at its first start, resumes each
partition where the old ``{app_id}-ingress`` group committed it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaConnectionError

from connectors.kafka import clients
from schemas.events import to_bytes
from schemas.topics import Topics
from streams.decisions.commands import patient_key
from streams.decisions.network_state import NetworkState
from streams.runtime import positions
from streams.runtime.ingress import Ingress
from streams.runtime.ingress_groups import ingress_groups
from streams.runtime.positions import SeekToCommitted
from tests.kafka_topics import committed_offset, create_topic
from tests.network import builders as b
from tests.network.conftest import Network
from tests.streams.fixtures import PATIENT_ID, screening, status

pytestmark = pytest.mark.integration

CLINIC = "mott-haven"
ORG = "bronx-pantry"


async def _commit(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Commit ``offsets`` in ``group``, as a worker of an earlier deployment did."""
    consumer = clients.consumer(bootstrap, group_id=group)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


async def _produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = clients.producer(bootstrap)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def _keys(bootstrap: str, topic: str, until: set[bytes], timeout: float = 60) -> list[bytes]:
    """Every key on ``topic`` from its beginning, read until each of ``until`` is seen."""
    reader = clients.consumer(bootstrap, topic, auto_offset_reset="earliest")
    await reader.start()
    keys: list[bytes] = []
    try:
        async with asyncio.timeout(timeout):
            while not until <= set(keys):
                for records in (await reader.getmany(timeout_ms=500)).values():
                    keys += [r.key for r in records if r.key is not None]
    finally:
        await reader.stop()
    return keys


@contextlib.asynccontextmanager
async def _running(bootstrap: str, topics: Topics, app_id: str) -> AsyncIterator[None]:
    """Both ingress loops, as a worker starts them, stopped (and committed) on exit."""
    producer = clients.producer(bootstrap)
    await producer.start()
    tasks = [
        asyncio.ensure_future(
            Ingress(
                bootstrap,
                topics,
                producer,
                NetworkState(),
                group_id=group.group_id,
                refresh_seconds=1,
                pattern=group.pattern,
                name=group.name,
                previous_group=group.previous,
            ).run()
        )
        for group in ingress_groups(app_id, topics)
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await producer.stop()


async def test_each_group_reads_its_own_kind_and_the_updates_resume_from_the_old_group(
    kafka_bootstrap: str, topics: Topics, unique: str
) -> None:
    app_id = f"ig-{unique}"
    clinic_topic = await create_topic(kafka_bootstrap, topics.clinic_submissions(CLINIC))
    org_topic = await create_topic(kafka_bootstrap, topics.org_updates(ORG))
    for name in (topics.network_patients, topics.network_referrals, topics.deadletter):
        await create_topic(kafka_bootstrap, name)
    clinic, org = TopicPartition(clinic_topic, 0), TopicPartition(org_topic, 0)

    # an existing deployment's ingress read the first two updates and committed them
    updates = [
        (f"ref-{n}".encode(), to_bytes(status(f"ref-{n}", "accepted", event=10 + n)))
        for n in range(4)
    ]
    await _produce(kafka_bootstrap, org_topic, updates)
    await _commit(kafka_bootstrap, f"{app_id}-ingress", {org: 2})
    await _produce(kafka_bootstrap, clinic_topic, [(PATIENT_ID.encode(), to_bytes(screening()))])

    async with _running(kafka_bootstrap, topics, app_id):
        referrals = await _keys(kafka_bootstrap, topics.network_referrals, {b"ref-2", b"ref-3"})
        patients = await _keys(
            kafka_bootstrap, topics.network_patients, {patient_key(CLINIC, PATIENT_ID).encode()}
        )

    # nothing the old group had committed is read again, nothing after it is skipped
    assert referrals == [b"ref-2", b"ref-3"]
    assert len(patients) == 1
    # each group committed its own kind only
    assert await committed_offset(kafka_bootstrap, f"{app_id}-ingress", clinic) == 1
    assert await committed_offset(kafka_bootstrap, f"{app_id}-ingress", org) == 2  # untouched
    assert await committed_offset(kafka_bootstrap, f"{app_id}-ingress-updates", org) == 4
    assert await committed_offset(kafka_bootstrap, f"{app_id}-ingress-updates", clinic) is None


async def _first_offsets(
    bootstrap: str, topic: str, group: str, previous: str | None
) -> dict[int, int]:
    """The first offset a new consumer of ``group`` reads in each partition of ``topic``."""
    consumer: AIOKafkaConsumer = clients.consumer(bootstrap, group_id=group)
    await consumer.start()
    first: dict[int, int] = {}
    try:
        consumer.subscribe([topic], listener=SeekToCommitted(consumer, previous))
        async with asyncio.timeout(60):
            while len(first) < 3:
                for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                    first.setdefault(tp.partition, records[0].offset)
    finally:
        await consumer.stop()
    return first


async def test_own_offsets_first_then_the_previous_groups_then_the_beginning(
    kafka_bootstrap: str, unique: str
) -> None:
    topic = await create_topic(kafka_bootstrap, f"positions-{unique}", 3)
    for partition in range(3):
        producer = clients.producer(kafka_bootstrap)
        await producer.start()
        try:
            for n in range(6):
                await producer.send_and_wait(topic, b"x", key=str(n).encode(), partition=partition)
        finally:
            await producer.stop()
    group, previous = f"new-{unique}", f"old-{unique}"
    p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    await _commit(kafka_bootstrap, previous, {p0: 2, p1: 3})
    await _commit(kafka_bootstrap, group, {p0: 4})

    first = await _first_offsets(kafka_bootstrap, topic, group, previous)
    # its own commit wins; the old group's where it has none; else the beginning
    assert first == {0: 4, 1: 3, 2: 0}
    # what it took over is its own now: the takeover happens once
    assert await committed_offset(kafka_bootstrap, group, p1) == 3
    assert await committed_offset(kafka_bootstrap, group, TopicPartition(topic, 2)) is None
    # without a previous group, a partition without a commit starts at its beginning
    assert await _first_offsets(kafka_bootstrap, topic, f"other-{unique}", None) == {
        0: 0,
        1: 0,
        2: 0,
    }


async def test_a_failed_lookup_of_the_previous_group_is_logged_and_reads_from_the_beginning(
    kafka_bootstrap: str,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = await create_topic(kafka_bootstrap, f"positions-{unique}", 3)
    producer = clients.producer(kafka_bootstrap)
    await producer.start()
    try:
        for partition in range(3):
            await producer.send_and_wait(topic, b"x", partition=partition)
    finally:
        await producer.stop()
    previous = f"old-{unique}"
    await _commit(kafka_bootstrap, previous, {TopicPartition(topic, n): 1 for n in range(3)})

    async def unreachable(*args: object) -> dict[TopicPartition, int]:
        raise KafkaConnectionError()

    monkeypatch.setattr(positions, "committed_by", unreachable)
    with caplog.at_level(logging.ERROR, logger="streams.runtime.positions"):
        first = await _first_offsets(
            kafka_bootstrap, topic, f"new-{uuid.uuid4().hex[:6]}", previous
        )
    assert first == {0: 0, 1: 0, 2: 0}
    assert f"offsets of 3 partitions in group {previous} not fetched" in caplog.text


async def _by_topic(bootstrap: str, group: str) -> dict[str, int]:
    """The offsets ``group`` committed, summed per topic."""
    admin = clients.admin(bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    found: dict[str, int] = {}
    for tp, meta in offsets.items():
        if meta.offset >= 0:
            found[tp.topic] = found.get(tp.topic, 0) + meta.offset
    return found


async def _eventually(bootstrap: str, group: str, topic: str) -> dict[str, int]:
    """What the group committed, once it committed on ``topic`` (commits go in the
    background)."""
    async with asyncio.timeout(30):
        while topic not in (found := await _by_topic(bootstrap, group)):
            await asyncio.sleep(0.5)
    return found


async def test_a_worker_reads_submissions_and_organizations_updates_in_two_groups(
    network: Network,
) -> None:
    t = network.topics
    await network.provision([CLINIC], [ORG])
    await network.publish(t.directory, "svc-p", b.service("svc-p", ORG))
    network.start_worker()
    await network.publish(
        t.clinic_submissions(CLINIC), PATIENT_ID, b.screening("scr-1", answers=b.FOOD_ONLY)
    )
    offer = (await network.read(t.org_referrals(ORG), count=1))[0]
    await network.publish(
        t.org_updates(ORG), offer["referral_id"], b.status(offer["referral_id"], "accepted")
    )
    await network.read(
        t.clinic_updates(CLINIC), until=lambda vs: any(v["status"] == "accepted" for v in vs)
    )
    submissions, updates = f"{network.app_id}-ingress", f"{network.app_id}-ingress-updates"
    # each group read and committed its own kind of party topic, and only that
    read = await _eventually(network.bootstrap, submissions, t.clinic_submissions(CLINIC))
    assert read == {t.clinic_submissions(CLINIC): 1}
    read = await _eventually(network.bootstrap, updates, t.org_updates(ORG))
    assert read == {t.org_updates(ORG): 1}
