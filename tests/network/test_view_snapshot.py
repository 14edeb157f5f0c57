"""The network view starts from the network's snapshot, on the real broker: it then reads
only the events after it, and knows what a view that read the whole log knows. A
snapshot that does not check out is counted and passed over for the whole log."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from connectors.kafka.admin import apply_topics
from connectors.observability import metrics
from connectors.observability.observer import PROMETHEUS
from schemas.events import to_bytes
from schemas.topics import Topics
from streams.runtime import view_snapshot
from streams.runtime.view import NetworkView
from tests.streams.fixtures import T0, capacity, service
from tests.streams.test_view import changed

pytestmark = pytest.mark.integration

ORGS = ["org-a", "org-b", "org-c"]


def _event(n: int) -> bytes:
    """The n-th event of a busy log: offers, answers and time-outs over three services."""
    org = ORGS[n % 3]
    sid = f"svc-{org}"
    at = T0 + timedelta(seconds=n)
    kind = n % 4
    if kind == 0:
        fields: dict[str, Any] = {
            "to_status": "requested",
            "actor": "network",
            "business_status": "offered",
        }
    elif kind == 1:
        fields = {"to_status": "accepted", "actor": "organization"}
    elif kind == 2:
        fields = {"to_status": "requested", "actor": "network", "reason": "timeout"}
    else:
        fields = {"to_status": "rejected", "actor": "organization"}
    event = changed(org_id=org, service_id=sid, n=n, **fields)
    return to_bytes(event.model_copy(update={"occurred_at": at}))


class Log:
    def __init__(self, bootstrap: str, topics: Topics, producer: AIOKafkaProducer) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.producer = producer
        self.count = 0

    async def events(self, n: int) -> None:
        for _ in range(n):
            await self.producer.send(
                self.topics.referral_events,
                _event(self.count),
                key=f"ref-{self.count}".encode(),
            )
            self.count += 1
        await self.producer.flush()

    async def view(self, *, use_snapshots: bool = True) -> tuple[NetworkView, asyncio.Task[None]]:
        view = NetworkView(
            self.bootstrap, self.topics, use_snapshots=use_snapshots, observer=PROMETHEUS
        )
        task = asyncio.create_task(view.run())
        await asyncio.wait_for(view.ready.wait(), 60)
        return view, task


@pytest.fixture
async def log(kafka_bootstrap: str) -> AsyncIterator[Log]:
    topics = Topics(prefix=f"vs-{uuid.uuid4().hex[:8]}", partitions=3)
    await asyncio.to_thread(apply_topics, kafka_bootstrap, topics.network_catalog())
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for i, org in enumerate(ORGS):
            svc = service(f"svc-{org}", org, available=50, at=T0 - timedelta(days=1))
            await producer.send(topics.directory, to_bytes(svc), key=svc.service_id.encode())
            if i == 1:
                report = capacity(svc.service_id, 40, at=T0 - timedelta(hours=1))
                await producer.send(
                    topics.network_capacity, to_bytes(report), key=svc.service_id.encode()
                )
        yield Log(kafka_bootstrap, topics, producer)
    finally:
        await producer.stop()


def record_of(view: NetworkView) -> dict[str, Any]:
    state = view.state
    return {
        "org_stats": dict(state.org_stats()),
        "offers": dict(state.offers),
        "reserved": {k: v for k, v in state.reserved.items() if v},
        "capacity": {s.service_id: s.capacity for s in state.directory()},
    }


async def _stop(*tasks: asyncio.Task[None]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_start_goes_on_from_the_snapshot_and_knows_what_the_whole_log_tells(
    log: Log,
) -> None:
    await log.events(300)
    first, task = await log.view()
    assert first.log_records == 300
    assert await first.write_snapshot(log.producer)
    assert not await first.write_snapshot(log.producer)  # the log has not moved
    await log.events(40)

    read_before = metrics.VIEW_SNAPSHOTS.labels("read")._value.get()
    restored, restored_task = await log.view()
    whole, whole_task = await log.view(use_snapshots=False)
    try:
        assert restored.log_records == 40  # only what followed the snapshot
        assert whole.log_records == 340
        assert record_of(restored) == record_of(whole)
        assert sum(restored.state.offers.values()) == 85
        assert metrics.VIEW_SNAPSHOTS.labels("read")._value.get() == read_before + 1
        # and both go on following the log
        await log.events(8)
        async with asyncio.timeout(20):
            while restored.log_records < 48 or whole.log_records < 348:
                await asyncio.sleep(0.05)
        assert record_of(restored) == record_of(whole)
    finally:
        await _stop(task, restored_task, whole_task)


async def test_a_snapshot_in_several_parts_is_read_whole(
    log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(view_snapshot, "PART_BYTES", 40)
    await log.events(200)
    first, task = await log.view()
    assert await first.write_snapshot(log.producer)
    await log.events(10)
    async with asyncio.timeout(20):
        while first.log_records < 210:
            await asyncio.sleep(0.05)
    assert await first.write_snapshot(log.producer)  # a second, after the first's parts
    restored, restored_task = await log.view()
    try:
        assert first._snapshot_parts > 3
        assert restored.log_records == 0
        assert record_of(restored) == record_of(first)
    finally:
        await _stop(task, restored_task)


async def _damage_missing_part(log: Log, view: NetworkView) -> None:
    """A manifest that names, as its part, an offset holding something else."""
    manifest = await _latest_manifest(log)
    other = await log.producer.send_and_wait(
        log.topics.network_view, b"x" * manifest.parts[0].size, key=b"other", partition=0
    )
    moved = manifest.model_copy(
        update={"parts": [manifest.parts[0].model_copy(update={"offset": other.offset})]}
    )
    await _send_manifest(log, moved.model_dump_json().encode())


async def _damage_checksum(log: Log, view: NetworkView) -> None:
    manifest = await _latest_manifest(log)
    wrong = manifest.model_copy(update={"sha256": hashlib.sha256(b"x").hexdigest()})
    await _send_manifest(log, wrong.model_dump_json().encode())


async def _damage_positions(log: Log, view: NetworkView) -> None:
    """As if the event log had been deleted and created again, shorter."""
    manifest = await _latest_manifest(log)
    far = {p: o + 1_000 for p, o in manifest.positions.items()}
    moved = manifest.model_copy(update={"positions": far})
    await _send_manifest(log, moved.model_dump_json().encode())


async def _damage_format(log: Log, view: NetworkView) -> None:
    await _send_manifest(log, b'{"format": 1, "parts": "everything"}')


async def _latest_manifest(log: Log) -> view_snapshot.Manifest:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=log.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(log.topics.network_view, 0)
        consumer.assign([tp])
        snapshot = await view_snapshot.read_latest(consumer, tp)
        assert snapshot is not None
        return snapshot.manifest
    finally:
        await consumer.stop()


async def _send_manifest(log: Log, value: bytes) -> None:
    await log.producer.send_and_wait(
        log.topics.network_view, value, key=view_snapshot.MANIFEST_KEY, partition=0
    )


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_damage_missing_part, "missing-part"),
        (_damage_checksum, "checksum"),
        (_damage_positions, "positions"),
        (_damage_format, "format"),
    ],
)
async def test_a_snapshot_that_does_not_check_out_is_passed_over_for_the_whole_log(
    log: Log, damage: Any, reason: str
) -> None:
    await log.events(120)
    first, task = await log.view()
    assert await first.write_snapshot(log.producer)
    await damage(log, first)
    rejected = metrics.VIEW_SNAPSHOT_REJECTED.labels(reason)._value.get()
    restored, restored_task = await log.view()
    try:
        assert metrics.VIEW_SNAPSHOT_REJECTED.labels(reason)._value.get() == rejected + 1
        assert restored.log_records == 120
        assert record_of(restored) == record_of(first)
    finally:
        await _stop(task, restored_task)


async def test_without_a_snapshot_or_its_topic_the_whole_log_is_read(log: Log) -> None:
    await log.events(50)
    view, task = await log.view()  # the topic exists and is empty
    try:
        assert view.log_records == 50
    finally:
        await _stop(task)
    from connectors.kafka.admin import admin_client

    admin = admin_client(log.bootstrap)
    await asyncio.to_thread(
        lambda: admin.delete_topics([log.topics.network_view])[log.topics.network_view].result(30)
    )
    view, task = await log.view()
    try:
        assert view.log_records == 50
    finally:
        await _stop(task)


# ---------------------------------------------------------------- a real worker
async def _wait_in_log(network: Any, pattern: str, after: int, timeout: float = 60) -> Any:
    import re

    async with asyncio.timeout(timeout):
        while True:
            text = network.log_path.read_text(errors="replace")[after:]
            found = re.search(pattern, text)
            if found:
                return found
            network.assert_alive()
            await asyncio.sleep(0.2)


async def test_a_worker_snapshots_its_view_and_its_next_start_goes_on_from_it(
    network: Any,
) -> None:
    from tests.network.conftest import Network

    assert isinstance(network, Network)
    await network.provision([], ["org-a"])
    log_topic = network.topics.referral_events
    for n in range(30):
        await network.publish(log_topic, f"ref-{n}", _event(n))
    network.extra_env["REFNET_VIEW_SNAPSHOT_INTERVAL"] = "1"
    network.start_worker()
    written = await _wait_in_log(network, r"network view snapshot written: (\d+) events", 0)
    assert int(written.group(1)) == 30  # by the timer, once the view was ready
    network.stop_worker()

    # a start with no timer snapshot: the one written as it stops is what the next reads
    network.extra_env["REFNET_VIEW_SNAPSHOT_INTERVAL"] = "3600"
    mark = network.log_path.stat().st_size
    network.start_worker()
    taken = await _wait_in_log(network, r"snapshot of \S+ taken; (\d+) events of the log", mark)
    assert int(taken.group(1)) == 0
    await _wait_in_log(network, r"network view ready", mark)
    for n in range(30, 37):
        await network.publish(log_topic, f"ref-{n}", _event(n))
    await asyncio.sleep(1.5)  # the view reads them
    network.stop_worker()
    stopped = network.log_path.read_text(errors="replace")[mark:]
    assert "network view snapshot written: 37 events" in stopped

    mark = network.log_path.stat().st_size
    network.start_worker()
    taken = await _wait_in_log(network, r"snapshot of \S+ taken; (\d+) events of the log", mark)
    assert int(taken.group(1)) == 0
