"""The gateway's Kafka connections stay bounded: one reader for every party's inbox (a party
provisioned later is followed, one deprovisioned is dropped), and producers writing as the
parties at most ``capacity`` at once, closed when idle."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from connectors.gateway.connections import InboxReader, Producers
from connectors.gateway.tokens import PartyRef
from connectors.gateway.views import PartyView
from connectors.kafka.admin import apply_topics
from connectors.kafka.auth import PLAINTEXT
from connectors.kafka.clients import producer
from schemas.events import EncounterAlerted, to_bytes
from schemas.topics import Topics

pytestmark = pytest.mark.integration


def _alert() -> EncounterAlerted:
    return EncounterAlerted.new(
        event="admit",
        encounter_class="IMP",
        encounter_on="2026-12-05",
        encounter_event_id=uuid.uuid4(),
        referral_id="ref-1",
    )


async def _send(bootstrap: str, topic: str, event: EncounterAlerted) -> None:
    client = producer(bootstrap)
    await client.start()
    try:
        await client.send_and_wait(topic, to_bytes(event), key=b"k")
    finally:
        await client.stop()


async def _until(check: Any, seconds: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_one_reader_follows_every_inbox_picks_up_new_parties_and_drops_gone_ones(
    kafka_bootstrap: str, topics: Topics
) -> None:
    orgs = [PartyRef("org", f"org-{i}") for i in range(4)]
    specs = [s for o in orgs for s in topics.org_catalog(o.id)]
    await asyncio.to_thread(apply_topics, kafka_bootstrap, specs)
    alerts = {o: _alert() for o in orgs}
    for org, alert in alerts.items():
        await _send(kafka_bootstrap, topics.org_referrals(org.id), alert)
    provisioned = set(orgs)
    reader = InboxReader(kafka_bootstrap, PLAINTEXT, provisioned=lambda: provisioned)
    views = {o: PartyView(o, topics, kafka_bootstrap, PLAINTEXT, reader=reader) for o in orgs}
    try:
        for org in orgs[:3]:
            views[org].start()
        for org in orgs[:3]:
            assert await views[org].wait_ready(30)
            assert list(views[org].alerts) == [str(alerts[org].event_id)]
        late = views[orgs[3]]
        late.start()  # provisioned after the others: read from its beginning too
        assert await late.wait_ready(30)
        assert list(late.alerts) == [str(alerts[orgs[3]].event_id)]
        assert len(reader.views) == 4

        more = _alert()
        await _send(kafka_bootstrap, topics.org_referrals(orgs[0].id), more)
        await _until(lambda: str(more.event_id) in views[orgs[0]].alerts)

        provisioned.discard(orgs[1])
        await _until(lambda: views[orgs[1]].stopped, seconds=15)
        assert topics.org_referrals(orgs[1].id) not in reader.views
        gone = _alert()
        await _send(kafka_bootstrap, topics.org_referrals(orgs[1].id), gone)
        still = _alert()
        await _send(kafka_bootstrap, topics.org_referrals(orgs[2].id), still)
        await _until(lambda: str(still.event_id) in views[orgs[2]].alerts)
        assert str(gone.event_id) not in views[orgs[1]].alerts
    finally:
        await reader.stop()


async def _committed(bootstrap: str, topic: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        for _ in range(10):
            for records in (await consumer.getmany(timeout_ms=300)).values():
                values += [r.value for r in records]
    finally:
        await consumer.stop()
    return values


async def test_producers_are_capped_and_closed_when_idle(
    kafka_bootstrap: str, topics: Topics
) -> None:
    clinics = [PartyRef("clinic", f"clinic-{i}") for i in range(3)]
    specs = [s for c in clinics for s in topics.clinic_catalog(c.id)]
    await asyncio.to_thread(apply_topics, kafka_bootstrap, specs)
    pool = Producers(kafka_bootstrap, capacity=2, idle=1.0, replica="r1", prefix=topics.prefix)
    try:
        for clinic in clinics:
            outbox = topics.clinic_submissions(clinic.id)
            await pool.send(PLAINTEXT, outbox, b"k", b"one")
            await pool.send_all(clinic, PLAINTEXT, outbox, [(b"k", b"two"), (b"k", b"three")])
            assert pool.open_count() <= 2
            assert await _committed(kafka_bootstrap, outbox) == [b"one", b"two", b"three"]
        # the parties without a login of their own share one producer; each party's
        # transactions have their own, the least recently used closed to make room
        assert pool.transactional_id(clinics[0]) == f"{topics.prefix}.clinic.clinic-0.gateway-r1"
        await _until(lambda: pool.open_count() == 0, seconds=10)
    finally:
        await pool.stop()
