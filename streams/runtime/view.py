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
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from connectors.kafka import clients
from connectors.kafka.auth import PLAINTEXT, KafkaAuth
from connectors.observability.observer import NULL, WorkerObserver
from schemas.decode import MAX_MESSAGE_BYTES, Decoded, DecodeFailure, ServiceRemoved, decode
from schemas.errors import RefnetError
from schemas.events import ReferralStateChanged, ServiceCapacityChanged, ServiceUpserted
from schemas.topics import TopicKind, Topics
from streams.decisions.network_state import NetworkState
from streams.runtime.clock import Clock, system_clock
from streams.runtime.config import DEFAULT_PATTERN_REFRESH
from streams.runtime.view_snapshot import (
    MANIFEST_KEY,
    RECENT_OFFERS,
    Rejected,
    Snapshot,
    encode,
    manifest_bytes,
    part_key,
    read_latest,
)

log = logging.getLogger(__name__)

__all__ = ["DeadLetterSink", "NetworkState", "NetworkView", "TopicMissing"]

DeadLetterSink = Callable[
    [DecodeFailure, str, int, int, bytes | None, bytes | None], Awaitable[None]
]


class TopicMissing(RefnetError, RuntimeError):
    """A topic the view reads does not exist (the topics were not applied)."""


#: The longest an empty fetch waits while the view starts (see NetworkView._follow).
START_FETCH_WAIT_MS = 10


class NetworkView:
    """Keeps a :class:`NetworkState` current from Kafka.

    :meth:`run` and :meth:`watch_orgs` are the long-running parts, meant to run
    under a :class:`streams.runtime.supervise.Supervisor`: a restarted :meth:`run`
    resumes where the last one stopped (positions are kept here), so nothing
    is counted twice. A record that cannot be applied is logged (type only),
    counted and skipped; it never stops the view.
    """

    def __init__(
        self,
        bootstrap: str,
        topics: Topics,
        *,
        on_dead_letter: DeadLetterSink | None = None,
        refresh_seconds: float = DEFAULT_PATTERN_REFRESH,
        auth: KafkaAuth = PLAINTEXT,
        use_snapshots: bool = True,
        observer: WorkerObserver = NULL,
        clock: Clock = system_clock,
    ) -> None:
        self.bootstrap = bootstrap
        self.auth = auth
        self.observer = observer
        self.clock = clock
        self.topics = topics
        self.state = NetworkState()
        self.ready = asyncio.Event()
        self.skipped = 0
        #: records of the event log read since this view started
        self.log_records = 0
        #: called with each directory record that cannot be decoded
        self.on_dead_letter = on_dead_letter
        self._refresh = refresh_seconds
        self._positions: dict[TopicPartition, int] = {}
        #: every topic that existed at the last look (messages to others are undeliverable)
        self.topic_names: frozenset[str] = frozenset()
        #: called with organizations whose referrals topic disappeared (deprovisioned)
        self.on_orgs_removed: Callable[[frozenset[str]], Awaitable[None]] | None = None
        #: organizations missing from the listings since (monotonic seconds): removed
        #: only once a later listing, ``refresh_seconds`` on, still misses them
        self._missing_since: dict[str, float] = {}
        self._ends: dict[TopicPartition, int] | None = None
        #: start from the network's newest snapshot (False: read the whole event log)
        self.use_snapshots = use_snapshots
        #: the event-log positions of this view's last snapshot, and its part count
        self._snapshot_positions: dict[int, int] | None = None
        self._snapshot_parts = 0
        #: one snapshot at a time (the timer's and the stop's would interleave parts)
        self._snapshot_lock = asyncio.Lock()
        #: one admin client for every look at the topics (librdkafka, thread-safe)
        self._admin: Any = None

    async def list_orgs(self) -> None:
        from connectors.kafka.admin import admin_client, list_topics

        if self._admin is None:
            self._admin = admin_client(self.bootstrap, self.auth)
        names = await asyncio.to_thread(
            list_topics, self.bootstrap, auth=self.auth, admin=self._admin
        )
        orgs = set()
        for name in names:
            parsed = self.topics.parse(name)
            if parsed is not None and parsed[0] is TopicKind.ORG_REFERRALS and parsed[1]:
                orgs.add(parsed[1])
        self.topic_names = frozenset(names)
        before = self.state.reachable
        self.state.set_reachable(frozenset(orgs))  # no new offers to a missing one
        removed = self._confirm_missing(before, frozenset(orgs))
        if removed and self.on_orgs_removed is not None:
            await self.on_orgs_removed(removed)

    def _confirm_missing(
        self, before: frozenset[str] | None, orgs: frozenset[str]
    ) -> frozenset[str]:
        """Organizations to treat as deprovisioned: missing from this listing and from
        an earlier one at least ``refresh_seconds`` before. One listing without an
        organization's topic (a broker's metadata in flux) withdraws nothing."""
        now = time.monotonic()
        earlier = dict(self._missing_since)
        for org_id in list(self._missing_since):
            if org_id in orgs:
                del self._missing_since[org_id]  # back: it was a passing look
        if before is not None:
            for org_id in before - orgs:
                self._missing_since.setdefault(org_id, now)
        confirmed = frozenset(
            org_id
            for org_id, since in earlier.items()
            if org_id not in orgs and now - since >= self._refresh
        )
        for org_id in confirmed:
            del self._missing_since[org_id]
        return confirmed

    async def watch_orgs(self) -> None:
        """Look for newly provisioned organizations every ``refresh_seconds``."""
        while True:
            await self.list_orgs()
            await asyncio.sleep(self._refresh)

    def _consumer(self, **settings: Any) -> AIOKafkaConsumer:
        return clients.consumer(
            self.bootstrap,
            auth=self.auth,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            **settings,
        )

    async def run(self) -> None:
        """Read the three topics (from the last position, or the beginning) forever."""
        consumer = self._consumer()
        await consumer.start()
        try:
            await self._follow(consumer)
        finally:
            await consumer.stop()

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        names = [
            self.topics.directory,
            self.topics.network_capacity,
            self.topics.referral_events,
        ]
        partitions: list[TopicPartition] = []
        for name in names:
            found = consumer.partitions_for_topic(name) or await _partitions(consumer, name)
            partitions.extend(TopicPartition(name, p) for p in sorted(found))
        if self._ends is None:
            # its own consumer, whose empty fetches end at once: the broker answers a
            # connection's requests in order, and each of the start's offset requests
            # would wait behind a long poll (half a second by default)
            starting = self._consumer(fetch_max_wait_ms=START_FETCH_WAIT_MS)
            await starting.start()
            try:
                await self._start(starting, partitions)
            finally:
                await starting.stop()
        assert self._ends is not None
        consumer.assign(partitions)
        await _seek(consumer, partitions, self._positions)
        pending = {tp for tp, end in self._ends.items() if end > self._positions.get(tp, 0)}
        if not pending:
            self._set_ready()
        while True:
            await self._apply_batch(await consumer.getmany(timeout_ms=200, max_records=500))
            if pending:
                for tp in list(pending):
                    if await consumer.position(tp) >= self._ends[tp]:
                        pending.discard(tp)
                if not pending:
                    self._set_ready()

    async def _start(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        """The first run: the newest snapshot (if any), the ends to be ready at, the
        directory and capacity read whole, then the snapshot's record taken."""
        started = time.monotonic()
        snapshot = await self._read_snapshot(consumer)
        self._ends = dict(await consumer.end_offsets(partitions))
        log_tps = [tp for tp in partitions if tp.topic == self.topics.referral_events]
        if snapshot is not None:
            beyond = [
                tp.partition
                for tp in log_tps
                if snapshot.manifest.positions.get(tp.partition, 0) > self._ends[tp]
            ]
            if snapshot.manifest.partitions != len(log_tps) or beyond:
                self._reject(
                    Rejected(
                        "positions",
                        f"it was taken of {snapshot.manifest.partitions} partitions and the "
                        f"log has {len(log_tps)}; positions past the end in {beyond or 'none'} "
                        "(was the event log recreated?)",
                    )
                )
                snapshot = None
        compacted = [tp for tp in partitions if tp.topic != self.topics.referral_events]
        consumer.assign(compacted)
        await _seek(consumer, compacted, {})
        pending = {tp for tp in compacted if self._ends[tp] > 0}
        while pending:
            await self._apply_batch(await consumer.getmany(timeout_ms=200, max_records=500))
            for tp in list(pending):
                if await consumer.position(tp) >= self._ends[tp]:
                    pending.discard(tp)
        if snapshot is None:
            return
        self._snapshot_parts = len(snapshot.manifest.parts)
        self.state.restore(snapshot.document)
        for tp in log_tps:
            position = snapshot.manifest.positions.get(tp.partition)
            if position is not None:
                self._positions[tp] = position
        behind = sum(self._ends[tp] - self._positions.get(tp, 0) for tp in log_tps)
        self.observer.view_snapshot("read")
        log.info(
            "network view: snapshot of %s taken; %d events of the log after it "
            "(%.1fs to read the snapshot and the directory)",
            snapshot.manifest.written_at.isoformat(timespec="seconds"),
            behind,
            time.monotonic() - started,
        )

    async def _read_snapshot(self, consumer: AIOKafkaConsumer) -> Snapshot | None:
        name = self.topics.network_view
        if not self.use_snapshots:
            return None
        if not (consumer.partitions_for_topic(name) or await _exists(consumer, name)):
            log.warning("network view: no topic %s ('refnet topics apply' creates it)", name)
            return None
        tp = TopicPartition(name, 0)
        consumer.assign([tp])
        try:
            snapshot = await read_latest(consumer, tp)
        except Rejected as rejected:
            self._reject(rejected)
            return None
        if snapshot is None:
            log.info("network view: no snapshot yet; reading the whole event log")
            return None
        if snapshot.manifest.event_log != self.topics.referral_events:
            self._reject(Rejected("positions", "it is of another event log"))
            return None
        return snapshot

    def _reject(self, rejected: Rejected) -> None:
        self.observer.view_snapshot_rejected(rejected.reason)
        log.warning("network view: snapshot not used (%s); reading the whole event log", rejected)

    async def write_snapshot(self, producer: AIOKafkaProducer) -> bool:
        """Write this view's record and positions as the network's newest snapshot.

        Only once ready, and only when the event log moved since this view's last
        snapshot. Returns whether one was written.
        """
        async with self._snapshot_lock:
            return await self._write_snapshot(producer)

    async def _write_snapshot(self, producer: AIOKafkaProducer) -> bool:
        if not self.ready.is_set():
            return False
        positions = {
            tp.partition: offset
            for tp, offset in self._positions.items()
            if tp.topic == self.topics.referral_events
        }
        if positions == self._snapshot_positions:
            return False
        # taken between two records of the view: the record matches the positions
        document = self.state.record_snapshot(RECENT_OFFERS)
        started = time.monotonic()
        parts, sha256, size = await asyncio.to_thread(encode, document)
        topic = self.topics.network_view
        sent = [
            await producer.send(topic, part, key=part_key(i), partition=0)
            for i, part in enumerate(parts)
        ]
        offsets = [(await future).offset for future in sent]
        for stale in range(len(parts), self._snapshot_parts):
            await producer.send(topic, None, key=part_key(stale), partition=0)
        log_partitions = len(self._ends_of(self.topics.referral_events))
        manifest = manifest_bytes(
            event_log=self.topics.referral_events,
            partitions=log_partitions or len(positions),
            positions=positions,
            offsets=offsets,
            parts=parts,
            sha256=sha256,
            document_bytes=size,
            written_at=self.clock(),
        )
        await (await producer.send(topic, manifest, key=MANIFEST_KEY, partition=0))
        self._snapshot_positions = positions
        self._snapshot_parts = len(parts)
        self.observer.view_snapshot("written")
        log.info(
            "network view snapshot written: %d events of the log, %d bytes in %d part(s), %.2fs",
            sum(positions.values()),
            sum(len(p) for p in parts),
            len(parts),
            time.monotonic() - started,
        )
        return True

    def _ends_of(self, topic: str) -> list[TopicPartition]:
        return [tp for tp in (self._ends or {}) if tp.topic == topic]

    async def _apply_batch(self, batches: Mapping[TopicPartition, list[Any]]) -> None:
        for tp, records in batches.items():
            for record in records:
                try:
                    await self._apply(
                        record.topic, record.partition, record.offset, record.key, record.value
                    )
                except Exception as exc:  # noqa: BLE001 - one record never stops the view
                    self.skipped += 1
                    log.error(
                        "network view: skipped %s[%d]@%d (%s)",
                        record.topic,
                        record.partition,
                        record.offset,
                        type(exc).__name__,
                    )
                self._positions[tp] = record.offset + 1

    def _set_ready(self) -> None:
        if not self.ready.is_set():
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
        if topic == self.topics.referral_events:
            self._record(topic, partition, offset, value)
            return
        result = decode(topic, key, value, self.topics)
        if isinstance(result, ServiceRemoved):
            self.state.remove(result.service_id)
        elif isinstance(result, DecodeFailure):
            if topic == self.topics.directory and self.on_dead_letter is not None:
                await self.on_dead_letter(result, topic, partition, offset, key, value)
        elif isinstance(result, Decoded):
            event = result.event
            if isinstance(event, ServiceUpserted):
                self.state.upsert(event)
            elif isinstance(event, ReferralStateChanged):
                self.state.record(event)

    def _record(self, topic: str, partition: int, offset: int, value: bytes | None) -> None:
        """The fast path of the event log, read whole at every start: only
        ``referral.state-changed`` changes the view, so anything else is passed
        over unparsed, and that event is validated by its own model (the same
        model the general decoder would pick, without its dispatch)."""
        self.log_records += 1
        if value is None or len(value) > MAX_MESSAGE_BYTES or _STATE_CHANGED not in value:
            return
        try:
            event = ReferralStateChanged.model_validate_json(value)
        except ValueError:
            log.warning("unreadable referral event at %s[%d]@%d", topic, partition, offset)
            return
        self.state.record(event)


#: Every referral.state-changed document holds this (its event_type); nothing
#: without it can validate as one.
_STATE_CHANGED = b'"referral.state-changed"'


async def _seek(
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    positions: Mapping[TopicPartition, int],
) -> None:
    """Each partition to its known position, the rest to their beginning: one request
    for every beginning (a seek_to_beginning per partition waits behind the fetch in
    flight, up to half a second each)."""
    fresh = [tp for tp in partitions if tp not in positions]
    beginnings = await consumer.beginning_offsets(fresh) if fresh else {}
    for tp in partitions:
        consumer.seek(tp, positions[tp] if tp in positions else beginnings[tp])


async def _exists(consumer: AIOKafkaConsumer, name: str) -> bool:
    await consumer._client.force_metadata_update()
    return bool(consumer.partitions_for_topic(name))


async def _partitions(consumer: AIOKafkaConsumer, name: str) -> set[int]:
    for _ in range(50):
        await consumer._client.force_metadata_update()
        found = consumer.partitions_for_topic(name)
        if found:
            return set(found)
        await asyncio.sleep(0.2)
    raise TopicMissing(f"topic {name} does not exist: run 'refnet topics apply'")
