"""The organizations' updates' ingress on a thread of its own, on the real broker: it
routes on its own thread and loop, a stop commits what it read and ends the thread,
and a failure ends its run (for the supervisor to restart it)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from connectors.kafka import clients
from schemas.events import to_bytes
from schemas.topics import Topics
from streams.decisions.network_state import NetworkState
from streams.runtime.ingress import Ingress
from streams.runtime.ingress_groups import ingress_groups
from streams.runtime.ingress_thread import ThreadedIngress
from tests.kafka_topics import committed_offset, create_topic
from tests.network.test_ingress_groups import ORG, _keys, _produce
from tests.streams.fixtures import status

pytestmark = pytest.mark.integration


async def _three_updates(bootstrap: str, topics: Topics) -> str:
    """The organization's updates topic with three of its updates on it (ref-0..2), and
    the topics the ingress writes to; the updates topic's name."""
    org_topic = await create_topic(bootstrap, topics.org_updates(ORG))
    for name in (topics.network_referrals, topics.deadletter):
        await create_topic(bootstrap, name)
    updates = [
        (f"ref-{n}".encode(), to_bytes(status(f"ref-{n}", "accepted", event=20 + n)))
        for n in range(3)
    ]
    await _produce(bootstrap, org_topic, updates)
    return org_topic


async def test_the_updates_ingress_routes_on_its_own_thread_and_commits_as_it_stops(
    kafka_bootstrap: str, topics: Topics, unique: str
) -> None:
    org_topic = await _three_updates(kafka_bootstrap, topics)
    _, updates = ingress_groups(f"it-{unique}", topics)
    threads: set[str] = set()

    def build(producer: AIOKafkaProducer) -> Ingress:
        return Ingress(
            kafka_bootstrap,
            topics,
            producer,
            NetworkState(),
            group_id=updates.group_id,
            refresh_seconds=1,
            pattern=updates.pattern,
            name=updates.name,
            observe=lambda label: threads.add(threading.current_thread().name),
        )

    runner = ThreadedIngress(f"ingress-updates-{unique}", kafka_bootstrap, build)
    running = asyncio.ensure_future(runner.run())
    try:
        keys = await _keys(
            kafka_bootstrap, topics.network_referrals, {b"ref-0", b"ref-1", b"ref-2"}
        )
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert keys == [b"ref-0", b"ref-1", b"ref-2"]
    assert threads == {f"ingress-updates-{unique}"}  # not the worker's loop's thread
    assert threading.current_thread().name not in threads
    # the stop committed what was read, and the thread is gone
    tp = TopicPartition(org_topic, 0)
    committed = await committed_offset(kafka_bootstrap, updates.group_id, tp)
    assert committed == 3
    assert all(t.name != f"ingress-updates-{unique}" for t in threading.enumerate())


async def test_a_failure_on_the_thread_ends_its_run_with_that_failure(
    kafka_bootstrap: str, unique: str
) -> None:
    def build(producer: AIOKafkaProducer) -> Ingress:
        raise RuntimeError("broken")

    runner = ThreadedIngress(f"broken-{unique}", kafka_bootstrap, build)
    with pytest.raises(RuntimeError, match="broken"):
        await asyncio.wait_for(runner.run(), 60)
    assert all(t.name != f"broken-{unique}" for t in threading.enumerate())


class HeldProducer:
    """A real producer whose acknowledgements are held back until ``release`` is set."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.sent = asyncio.Event()
        self.release = asyncio.Event()

    async def send(self, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        acked = await self.producer.send(*args, **kwargs)
        self.sent.set()

        async def held() -> Any:
            await self.release.wait()
            return await acked

        return asyncio.ensure_future(held())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.producer, name)


async def test_a_stop_during_a_batch_finishes_it_and_commits_it(
    kafka_bootstrap: str, topics: Topics, unique: str
) -> None:
    org_topic = await _three_updates(kafka_bootstrap, topics)
    _, updates = ingress_groups(f"stop-{unique}", topics)
    real = clients.producer(kafka_bootstrap)
    await real.start()
    held = HeldProducer(real)
    try:
        ingress = Ingress(
            kafka_bootstrap,
            topics,
            held,  # type: ignore[arg-type]
            NetworkState(),
            group_id=updates.group_id,
            refresh_seconds=1,
            pattern=updates.pattern,
            name=updates.name,
        )
        running = asyncio.ensure_future(ingress.run())
        await asyncio.wait_for(held.sent.wait(), 60)  # a batch is in progress
        running.cancel()  # the worker stops while the batch waits for its acknowledgements
        await asyncio.sleep(0.2)
        assert not running.done()  # it waits for the batch
        held.release.set()
        await asyncio.gather(running, return_exceptions=True)
    finally:
        await real.stop()
    tp = TopicPartition(org_topic, 0)
    assert await committed_offset(kafka_bootstrap, updates.group_id, tp) == 3
    assert await _keys(kafka_bootstrap, topics.network_referrals, {b"ref-2"}) == [
        b"ref-0",
        b"ref-1",
        b"ref-2",
    ]
