"""What every worker knows about the whole network: the directory and its record.

Each worker reads three topics in full, from the beginning, with no consumer
group (the same role as a Faust GlobalTable, without its rebalancing quirks):

* ``sdoh.directory.v1`` (compacted): services; a null value removes one;
* ``{prefix}.network.capacity.v1`` (compacted): capacity reported by the
  organizations, applied over the directory's figure when newer;
* ``sdoh.referrals.events.v1``: the referral event log, from which the view
  counts each organization's answers in time and time-outs, and the offers
  each service received (to share the load between equal services).

Matching waits until the view has caught up with the ends of these topics as
they were when the worker started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.codes import BusinessStatus, Party, TaskStatus
from schemas.decode import Decoded, DecodeFailure, ServiceRemoved, decode
from schemas.events import (
    Capacity,
    ReferralStateChanged,
    ServiceCapacityChanged,
    ServiceUpserted,
)
from schemas.topics import TopicKind, Topics
from streams.matching import OrgRecord

log = logging.getLogger(__name__)

DeadLetterSink = Callable[
    [DecodeFailure, str, int, int, bytes | None, bytes | None], Awaitable[None]
]


@dataclass
class _CapacityReport:
    available: int
    at: datetime


@dataclass
class NetworkState:
    """The pure part of the view: folds events into the directory and the record."""

    services: dict[str, ServiceUpserted] = field(default_factory=dict)
    capacity: dict[str, _CapacityReport] = field(default_factory=dict)
    on_time: Counter[str] = field(default_factory=Counter)
    timed_out: Counter[str] = field(default_factory=Counter)
    offers: Counter[str] = field(default_factory=Counter)
    #: organizations with a referrals topic (None: not known yet, nothing filtered)
    reachable: frozenset[str] | None = None
    _directory: list[ServiceUpserted] | None = field(default=None, repr=False)

    def set_reachable(self, org_ids: frozenset[str]) -> None:
        """Only these organizations can be offered referrals: their topics exist."""
        if org_ids != self.reachable:
            self.reachable = org_ids
            self._directory = None

    def upsert(self, service: ServiceUpserted) -> None:
        self.services[service.service_id] = service
        self._directory = None

    def remove(self, service_id: str) -> None:
        self.services.pop(service_id, None)
        self._directory = None

    def report_capacity(self, event: ServiceCapacityChanged) -> None:
        current = self.capacity.get(event.service_id)
        if current is None or event.occurred_at >= current.at:
            self.capacity[event.service_id] = _CapacityReport(event.available, event.occurred_at)
            self._directory = None

    def record(self, event: ReferralStateChanged) -> None:
        if event.business_status is BusinessStatus.OFFERED and event.service_id:
            self.offers[event.service_id] += 1
        if event.org_id is None:
            return
        answered = event.actor is Party.ORGANIZATION and event.to_status in (
            TaskStatus.ACCEPTED,
            TaskStatus.REJECTED,
        )
        if answered:
            self.on_time[event.org_id] += 1
        elif event.reason == "timeout" and event.actor is Party.NETWORK:
            self.timed_out[event.org_id] += 1

    def effective(self, service: ServiceUpserted) -> ServiceUpserted:
        """The service with the newest capacity figure (directory or organization)."""
        report = self.capacity.get(service.service_id)
        if report is None or report.at < service.occurred_at:
            return service
        unit = service.capacity.unit if service.capacity else None
        maximum = service.capacity.maximum if service.capacity else None
        capacity = Capacity(available=report.available, unit=unit, maximum=maximum)
        return service.model_copy(update={"capacity": capacity})

    def directory(self) -> list[ServiceUpserted]:
        """Every service that can be offered a referral, with its current capacity.

        A service of an organization whose referrals topic does not exist (not
        provisioned yet) is left out: an offer could not be delivered. Rebuilt
        only after a change.
        """
        if self._directory is None:
            self._directory = [
                self.effective(s)
                for s in self.services.values()
                if self.reachable is None or s.org_id in self.reachable
            ]
        return self._directory

    def org_stats(self) -> dict[str, OrgRecord]:
        orgs = set(self.on_time) | set(self.timed_out)
        return {
            org: OrgRecord(answered_in_time=self.on_time[org], timed_out=self.timed_out[org])
            for org in orgs
        }

    def load(self) -> dict[str, int]:
        return dict(self.offers)


class NetworkView:
    """Keeps a :class:`NetworkState` current from Kafka in a background task."""

    def __init__(
        self,
        bootstrap: str,
        topics: Topics,
        *,
        on_dead_letter: DeadLetterSink | None = None,
        refresh_seconds: float = 5.0,
    ) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.state = NetworkState()
        self.ready = asyncio.Event()
        self._on_dead_letter = on_dead_letter
        self._task: asyncio.Task[None] | None = None
        self._orgs_task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._refresh = refresh_seconds

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        await consumer.start()
        self._consumer = consumer
        names = [
            self.topics.directory,
            self.topics.network_capacity,
            self.topics.referral_events,
        ]
        partitions: list[TopicPartition] = []
        for name in names:
            found = consumer.partitions_for_topic(name) or await self._partitions(name)
            partitions.extend(TopicPartition(name, p) for p in sorted(found))
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        await self._list_orgs()
        self._orgs_task = asyncio.create_task(self._watch_orgs(), name="network-view-orgs")
        self._task = asyncio.create_task(self._run(consumer, dict(ends)), name="network-view")

    async def _list_orgs(self) -> None:
        from connectors.kafka_admin import list_topics

        names = await asyncio.to_thread(list_topics, self.bootstrap)
        orgs = set()
        for name in names:
            parsed = self.topics.parse(name)
            if parsed is not None and parsed[0] is TopicKind.ORG_REFERRALS and parsed[1]:
                orgs.add(parsed[1])
        self.state.set_reachable(frozenset(orgs))

    async def _watch_orgs(self) -> None:
        while True:
            await asyncio.sleep(self._refresh)
            try:
                await self._list_orgs()
            except Exception:  # noqa: BLE001 - keep the last known set; try again
                log.warning("could not list topics; keeping the known organizations")

    async def _partitions(self, name: str) -> set[int]:
        assert self._consumer is not None
        for _ in range(50):
            await self._consumer._client.force_metadata_update()
            found = self._consumer.partitions_for_topic(name)
            if found:
                return set(found)
            await asyncio.sleep(0.2)
        raise RuntimeError(f"topic {name} does not exist: run 'refnet topics apply'")

    async def stop(self) -> None:
        if self._orgs_task is not None:
            self._orgs_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._orgs_task
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self, consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> None:
        pending = {tp for tp, end in ends.items() if end > 0}
        if not pending:
            self.ready.set()
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=500)
            for records in batches.values():
                for record in records:
                    await self._apply(
                        record.topic, record.partition, record.offset, record.key, record.value
                    )
            if pending:
                for tp in list(pending):
                    if await consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)
                if not pending:
                    log.info("network view ready: %d services", len(self.state.services))
                    self.ready.set()

    async def _apply(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None
    ) -> None:
        if topic == self.topics.network_capacity:
            if value is None:
                return
            try:
                self.state.report_capacity(ServiceCapacityChanged.model_validate_json(value))
            except ValueError:
                log.warning("unreadable capacity record at %s[%d]@%d", topic, partition, offset)
            return
        result = decode(topic, key, value, self.topics)
        if isinstance(result, ServiceRemoved):
            self.state.remove(result.service_id)
        elif isinstance(result, DecodeFailure):
            if topic == self.topics.directory and self._on_dead_letter is not None:
                await self._on_dead_letter(result, topic, partition, offset, key, value)
        elif isinstance(result, Decoded):
            event = result.event
            if isinstance(event, ServiceUpserted):
                self.state.upsert(event)
            elif isinstance(event, ReferralStateChanged):
                self.state.record(event)
