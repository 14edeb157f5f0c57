"""Input offsets Faust let by unprocessed, found and handed back to the agent.

Faust skips a message that reaches a stream while flow control is suspended or
whose fetch generation is not the current one (the rebalance race of
faust-streaming PR 223). It expects the seek to the committed offsets to fetch
it again, but a message delivered in the short window after that seek and
before flow control resumes is skipped once more and never comes back. Its
commit bookkeeping then takes the next acknowledged offset for the
continuation of the committed one (``min(acked) - committed > 1`` lets a hole
of exactly one through), and the offset is committed past a command nobody
applied: without this guard, the two-worker SIGKILL test loses a referral in
about one run in ten on a loaded machine.

:class:`OffsetGuard` keeps, per input partition and consumer generation, the
next offset its agent has to apply: the group's committed offset when the
generation starts, then each applied offset plus one. An event beyond it means
Faust skipped what lies between: those records are read from the broker, and
applied first, in order, then acknowledged to Faust so that its commits go on
past them. A skipped record with nothing after it would wait for the next
message of its partition: the timer calls :meth:`OffsetGuard.idle` and sends a
*poke* (a no-op message) to a partition whose end lies beyond the next offset
to apply and that has been quiet for a while, and the poke finds the hole.

Applying a record twice has no second effect (commands are idempotent), so a
guard that fills too much costs time, never correctness.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from connectors.kafka import clients
from connectors.kafka.auth import PLAINTEXT, KafkaAuth
from connectors.observability.observer import NULL, WorkerObserver

log = logging.getLogger(__name__)

#: The value of a poke: a message with no effect that wakes a partition's agent.
POKE = b'{"kind":"poke"}'
#: A partition with records past the next offset to apply, quiet this long, is poked.
IDLE_SECONDS = 10.0
#: At most one poke per partition in this many seconds.
POKE_EVERY = 30.0
#: At most this many records are read back in one read (a larger hole takes several).
MAX_FILL = 10_000


@dataclass(frozen=True)
class RawMessage:
    """The parts of a Kafka message an agent reads (``event.message``)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float = 0.0


@dataclass(frozen=True)
class RawEvent:
    """A record read back from the broker, shaped like a Faust event."""

    message: RawMessage

    @property
    def key(self) -> bytes | None:
        return self.message.key

    @property
    def value(self) -> bytes | None:
        return self.message.value


class OffsetGuard:
    """Finds the offsets of owned input partitions that never reached the agent."""

    def __init__(
        self,
        bootstrap: str,
        group_id: str,
        *,
        generation: Callable[[], int],
        auth: KafkaAuth = PLAINTEXT,
        observer: WorkerObserver = NULL,
    ) -> None:
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.auth = auth
        self.observer = observer
        self._generation = generation
        #: (topic, partition) -> (generation, next offset to apply)
        self._next: dict[tuple[str, int], tuple[int, int]] = {}
        self._last_event: dict[tuple[str, int], float] = {}
        self._last_poke: dict[tuple[str, int], float] = {}
        #: (topic, partition) -> (generation, when this guard first saw it owned)
        self._owned_since: dict[tuple[str, int], tuple[int, float]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._lock = asyncio.Lock()
        #: one reader at a time: both agents and the timer share the consumer
        self._reading = asyncio.Lock()

    async def _clients(self) -> tuple[AIOKafkaConsumer, AIOKafkaAdminClient]:
        async with self._lock:
            if self._consumer is None:
                consumer = clients.consumer(
                    self.bootstrap, auth=self.auth, auto_offset_reset="earliest"
                )
                await consumer.start()
                self._consumer = consumer
            if self._admin is None:
                admin = clients.admin(self.bootstrap, self.auth)
                await admin.start()
                self._admin = admin
            return self._consumer, self._admin

    async def stop(self) -> None:
        consumer, admin = self._consumer, self._admin
        self._consumer = self._admin = None
        if consumer is not None:
            await consumer.stop()
        if admin is not None:
            await admin.close()

    async def _start_of(self, topic: str, partition: int) -> int:
        """Where the group reads ``topic[partition]`` from when a generation starts."""
        consumer, admin = await self._clients()
        tp = TopicPartition(topic, partition)
        committed = await admin.list_consumer_group_offsets(self.group_id, partitions=[tp])
        meta = committed.get(tp)
        if meta is not None and meta.offset >= 0:
            return int(meta.offset)
        first = await consumer.beginning_offsets([tp])
        return int(first[tp])

    async def next_offset(self, topic: str, partition: int) -> int:
        """The next offset the agent has to apply on ``topic[partition]``."""
        generation = self._generation()
        known = self._next.get((topic, partition))
        if known is not None and known[0] == generation:
            return known[1]
        start = await self._start_of(topic, partition)
        self._next[(topic, partition)] = (generation, start)
        return start

    async def missed(self, event: Any, agent: str = "") -> list[RawEvent]:
        """The records between the next offset to apply and ``event``: Faust skipped them."""
        message = event.message
        topic, partition, offset = message.topic, message.partition, message.offset
        self._last_event[(topic, partition)] = time.monotonic()
        expected = await self.next_offset(topic, partition)
        if offset <= expected:
            return []
        records: list[RawEvent] = []
        start = expected
        async with self._reading:
            while start < offset:  # a read returns at most MAX_FILL records
                chunk = await self._read(topic, partition, start, offset)
                if not chunk:
                    break  # nothing left below ``offset`` (an offset with no record)
                records += chunk
                start = chunk[-1].message.offset + 1
        self.observer.offsets_skipped(agent, offset - expected)
        log.warning(
            "%s[%d]: offsets %d..%d never reached the agent (skipped by Faust); "
            "%d record(s) read back and applied first",
            topic,
            partition,
            expected,
            offset - 1,
            len(records),
        )
        return records

    def applied(self, event: Any) -> None:
        """``event`` was applied: the next offset to apply follows it."""
        message = event.message
        key = (message.topic, message.partition)
        generation = self._generation()
        known = self._next.get(key)
        if known is None or known[0] != generation:
            return  # a new generation started meanwhile: it asks the group again
        self._next[key] = (generation, max(known[1], message.offset + 1))

    async def _read(self, topic: str, partition: int, start: int, end: int) -> list[RawEvent]:
        consumer, _ = await self._clients()
        tp = TopicPartition(topic, partition)
        end = min(end, start + MAX_FILL)
        consumer.assign([tp])
        consumer.seek(tp, start)
        records: list[RawEvent] = []
        deadline = asyncio.get_running_loop().time() + 30
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=500)
            for record in batch.get(tp, []):
                if record.offset >= end:
                    break
                records.append(
                    RawEvent(
                        RawMessage(
                            topic=topic,
                            partition=partition,
                            offset=record.offset,
                            key=record.key,
                            value=record.value,
                            timestamp=record.timestamp / 1000,
                        )
                    )
                )
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"reading back {topic}[{partition}] {start}..{end - 1}")
        consumer.unsubscribe()
        return records

    async def idle(self, owned: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
        """Owned partitions to poke: records past the next offset to apply, quiet a while.
        Called every IDLE_SECONDS by a timer of the app."""
        now = time.monotonic()
        generation = self._generation()
        candidates = []
        for key in owned:
            since = self._owned_since.get(key)
            if since is None or since[0] != generation:
                # newly owned: the agent gets IDLE_SECONDS to work through its backlog
                self._owned_since[key] = (generation, now)
                continue
            quiet_since = max(since[1], self._last_event.get(key, 0.0))
            if (
                now - quiet_since >= IDLE_SECONDS
                and now - self._last_poke.get(key, 0.0) >= POKE_EVERY
            ):
                candidates.append(key)
        if not candidates:
            return []
        consumer, _ = await self._clients()
        async with self._reading:
            ends = await consumer.end_offsets([TopicPartition(t, p) for t, p in candidates])
        poke = []
        for topic, partition in candidates:
            end = ends.get(TopicPartition(topic, partition), 0)
            if end > await self.next_offset(topic, partition):
                self._last_poke[(topic, partition)] = now
                poke.append((topic, partition))
        return poke
