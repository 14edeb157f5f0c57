"""A real three-broker KRaft cluster: one broker killed mid-stream loses nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import ConfigResource

from connectors.kafka.admin import admin_client, apply_topics
from deploy.local.broker import LocalBroker
from deploy.settings import Settings
from schemas.events import to_bytes
from schemas.topics import Topics
from tests.network import builders as b
from tests.network.conftest import Network

pytestmark = pytest.mark.integration

CLINIC, ORG = "mott-haven", "bronx-pantry"
REFERRALS = 80


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    settings = Settings.from_env({})
    broker = LocalBroker(
        tmp_path_factory.mktemp("kafka-3"),
        cache_dir=Settings.from_env().cache_dir,
        version=settings.kafka_version,
        port=0,
        heap="256m",
        brokers=3,
    )
    state = broker.start(timeout=120, tie_to_parent=True)
    try:
        yield state
    finally:
        broker.stop()


def test_the_network_topics_replicate_three_times_two_in_sync(cluster: Any) -> None:
    topics = Topics(prefix=f"r{uuid.uuid4().hex[:8]}", partitions=3, replication_factor=3)
    apply_topics(cluster.bootstrap, topics.apply_catalog("refnet-r"))
    admin = admin_client(cluster.bootstrap)
    # the broker this client asks may learn of the new topic a moment after the one
    # that created it (metadata reaches each broker on its own)
    deadline = time.monotonic() + 30
    meta = admin.list_topics(timeout=10)
    while topics.referral_events not in meta.topics and time.monotonic() < deadline:
        time.sleep(0.2)
        meta = admin.list_topics(timeout=10)
    assert len(meta.brokers) == 3
    for partition in meta.topics[topics.referral_events].partitions.values():
        assert len(partition.replicas) == 3 and len(partition.isrs) == 3
    resource = ConfigResource(ConfigResource.Type.TOPIC, topics.network_referrals)
    config = _described(admin, resource, time.monotonic() + 30)
    assert config["min.insync.replicas"].value == "2"


def _described(admin: Any, resource: ConfigResource, deadline: float) -> Any:
    """The topic's configuration, asked again while the broker answering has not yet
    learnt of the topic (each broker learns of a new topic on its own)."""
    while True:
        try:
            return admin.describe_configs([resource])[resource].result(timeout=10)
        except KafkaException as exc:
            unknown = exc.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
            if not unknown or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


async def test_a_broker_killed_mid_stream_loses_nothing_and_the_network_goes_on(
    cluster: Any, tmp_path: Path
) -> None:
    topics = Topics(prefix=f"k{uuid.uuid4().hex[:8]}", partitions=3, replication_factor=3)
    net = Network(cluster.bootstrap, topics, tmp_path)
    net.extra_env["REFNET_REPLICATION_FACTOR"] = "3"
    try:
        await net.provision([CLINIC], [ORG])
        await net.publish(topics.directory, "svc-p", b.service("svc-p", ORG, available=1000))
        net.start_worker()
        producer = Producer(
            {
                "bootstrap.servers": cluster.bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "delivery.timeout.ms": 120_000,
                "log_level": 0,
            }
        )
        failed: list[str] = []
        delivered = 0

        def report(err: Any, _msg: Any) -> None:
            nonlocal delivered
            if err is None:
                delivered += 1
            else:
                failed.append(err.name())

        def send(i: int) -> None:
            event = b.requested(f"ref-{i:03d}", patient_fields=b.patient(f"pt-{i:03d}"))
            producer.produce(
                topics.clinic_submissions(CLINIC),
                to_bytes(event),
                key=f"pt-{i:03d}".encode(),
                on_delivery=report,
            )
            producer.poll(0)

        for i in range(10):
            send(i)
        producer.flush(30)
        await net.read(topics.org_referrals(ORG), count=10, timeout=90)  # the worker is up
        victim = next(n for n in cluster.all_nodes if n.node_id == 2)
        for i in range(10, REFERRALS):
            send(i)
            if i == REFERRALS // 2:
                os.kill(victim.pid, signal.SIGKILL)  # mid-stream, no shutdown
            await asyncio.sleep(0.05)
        await asyncio.to_thread(producer.flush, 120)
        started = time.monotonic()
        offers = await net.read(
            topics.org_referrals(ORG),
            until=lambda vs: len({v["referral_id"] for v in vs}) >= REFERRALS,
            timeout=150,
        )
        ids = [v["referral_id"] for v in offers if v["event_type"] == "referral.offered"]
        event_ids = {v["event_id"] for v in offers if v["event_type"] == "referral.offered"}
        lost = REFERRALS - len(set(ids))
        doubled = len(event_ids) - len(set(ids))
        print(  # noqa: T201 - the figures the issue asks for
            f"\n3 brokers, one SIGKILLed: events sent {REFERRALS}, delivered {delivered}, "
            f"send failures {len(failed)}, offered {len(set(ids))}, lost {lost}, "
            f"duplicated {doubled} (identical redeliveries {len(ids) - len(set(ids))}); "
            f"caught up {time.monotonic() - started:.0f}s after the last send"
        )
        assert (delivered, failed) == (REFERRALS, [])
        assert lost == 0 and doubled == 0
        net.assert_alive()
    finally:
        await net.close()
