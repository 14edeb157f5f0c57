"""The gateway's Kafka connections, bounded whatever the number of parties.

* :class:`InboxReader`: one consumer, logged in as the gateway (its own
  ``REFNET_KAFKA_*`` login), assigned every followed party's inbox partitions,
  read from the beginning without a consumer group; each record goes to its
  party's view. A view added later (a party provisioned since) is assigned at
  the next turn and read from the beginning; a party no longer provisioned is
  dropped at the next sweep. After a failure the reader starts again and every
  view reads its inbox again from the beginning. It also reads the directory
  topic, from the beginning, into the organizations' names
  (:class:`~.names.OrgNames`).
* :class:`Producers`: the producers that write as the parties, created when first
  used, at most ``capacity`` open (the least recently used idle one is closed
  to make room) and closed after ``idle`` seconds unused. Parties without a
  login of their own (a plain broker) share one producer. A party's
  transactional producer (``{principal}.gateway-{replica}``, so that on a secured
  broker a prefixed ACL on ``{principal}.`` covers it) publishes a Bundle's
  events in one Kafka transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import TopicAuthorizationFailedError
from prometheus_client import Counter, Gauge

from connectors.gateway.names import OrgNames
from connectors.gateway.tokens import PartyRef
from connectors.kafka import clients
from connectors.kafka.auth import KafkaAuth
from connectors.retry import Backoff

log = logging.getLogger("refnet.gateway.connections")

#: how long the reader waits before reading again after a failure
RECONNECT = Backoff(first=1.0, cap=30.0)
#: how often the reader drops the views of parties no longer provisioned (seconds)
SWEEP_EVERY = 5.0
#: how often the reader looks again for inbox topics not found (seconds)
MISSING_RETRY = 2.0
#: how long an inbox the broker refuses the gateway is left out before trying again (seconds)
REFUSED_RETRY = 60.0

OPEN_PRODUCERS = Gauge(
    "refnet_gateway_open_producers", "Kafka producers the gateway holds open (writing as parties)"
)
REFUSED = Counter(
    "refnet_gateway_inbox_refusals",
    "Times the broker refused the gateway's reader READ on a party's inbox topic",
)
FOLLOWED = Gauge(
    "refnet_gateway_followed_inboxes", "Party inbox topics the gateway's reader follows"
)


class Followed(Protocol):
    """What the reader needs of a party's view (:class:`~.views.Followed`)."""

    party: PartyRef
    inbox: str
    ready: asyncio.Event
    changed: asyncio.Condition
    stopped: bool

    def reset(self) -> None: ...

    async def _apply(self, value: bytes | None) -> None: ...


class InboxReader:
    """One consumer for every view's inbox topic; records dispatched to their view."""

    def __init__(
        self,
        bootstrap: str,
        auth: KafkaAuth,
        provisioned: Callable[[], Collection[PartyRef]] | None = None,
        *,
        directory: str | None = None,
        names: OrgNames | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        #: the directory topic, read for organizations' names (None: not read)
        self.directory = directory
        self.names = names if names is not None else OrgNames()
        self.auth = auth
        self.provisioned = provisioned
        #: inbox topic -> its view
        self.views: dict[str, Followed] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._swept = 0.0
        self._missing: list[str] = []
        #: topics the broker refused to let the gateway read, until when they are left out
        self._refused: dict[str, float] = {}

    def add(self, view: Followed) -> None:
        self.views[view.inbox] = view
        FOLLOWED.set(len(self.views))
        self._changed.set()
        self.start()

    def start(self) -> None:
        """Start reading (if not yet): the directory, and the views added."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="gateway-inbox-reader")

    def remove(self, view: Followed) -> None:
        if self.views.get(view.inbox) is view:
            del self.views[view.inbox]
            FOLLOWED.set(len(self.views))
            self._changed.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _run(self) -> None:
        failures = 0
        while True:
            consumer = clients.consumer(
                self.bootstrap,
                auth=self.auth,
                group_id=None,
                auto_offset_reset="earliest",
                client_id="refnet-gateway-reader",
            )
            try:
                await consumer.start()
                await self._read(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the reader logs, waits and reads again
                failures += 1
                log.warning(
                    "inbox reader: %s: %s; retrying in %.0fs",
                    type(exc).__name__,
                    str(exc)[:200],
                    RECONNECT.delay(failures),
                )
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()
            self._sweep(force=True)
            await asyncio.sleep(RECONNECT.delay(failures))

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        #: next offset to read per assigned partition; what is not caught up per view
        positions: dict[TopicPartition, int] = {}
        behind: dict[str, dict[TopicPartition, int]] = {}
        for view in self.views.values():
            view.reset()
        self._changed.set()
        while True:
            if self._changed.is_set():
                self._changed.clear()
                await self._assign(consumer, positions, behind)
            if behind:
                await self._caught_up(consumer, behind)
            try:
                batch = await consumer.getmany(timeout_ms=500)
            except TopicAuthorizationFailedError as exc:
                self._refuse(str(exc.args[0]) if exc.args else "")
                continue
            touched: set[str] = set()
            for tp, records in batch.items():
                if tp.topic == self.directory and records:
                    for record in records:
                        self.names.apply(record.value)
                    positions[tp] = records[-1].offset + 1
                    continue
                target = self.views.get(tp.topic)
                if target is None or not records:
                    continue
                for record in records:
                    await target._apply(record.value)
                positions[tp] = records[-1].offset + 1
                touched.add(tp.topic)
            for topic in touched:
                changed = self.views.get(topic)
                if changed is not None:
                    async with changed.changed:
                        changed.changed.notify_all()
            self._sweep()

    async def _assign(
        self,
        consumer: AIOKafkaConsumer,
        positions: dict[TopicPartition, int],
        behind: dict[str, dict[TopicPartition, int]],
    ) -> None:
        """Assign every followed topic's partitions: known ones where they were, new ones
        from the beginning (a topic not found yet is tried again at the next turn)."""
        now = time.monotonic()
        self._refused = {t: until for t, until in self._refused.items() if until > now}
        wanted = (set(self.views) | ({self.directory} if self.directory else set())) - set(
            self._refused
        )
        await consumer._client.set_topics(sorted(wanted))
        partitions: list[TopicPartition] = []
        missing = []
        for topic in sorted(wanted):
            found = consumer.partitions_for_topic(topic)
            if not found:
                missing.append(topic)
                continue
            partitions += [TopicPartition(topic, p) for p in sorted(found)]
        for tp in [tp for tp in positions if tp.topic not in wanted]:
            del positions[tp]
        for topic in [t for t in behind if t not in wanted]:
            del behind[topic]
        consumer.assign(partitions)
        new = [tp for tp in partitions if tp not in positions]
        for tp in partitions:
            if tp in positions:
                consumer.seek(tp, positions[tp])
        if new:
            await consumer.seek_to_beginning(*new)
            ends = await consumer.end_offsets(new)
            for tp in new:
                positions[tp] = await consumer.position(tp)
                behind.setdefault(tp.topic, {})[tp] = ends[tp]
        if missing:
            # tried again in a while: a party's topic may be created after its token
            if missing != self._missing:
                log.warning("inbox reader: %d inbox topics not found yet", len(missing))
            asyncio.get_running_loop().call_later(MISSING_RETRY, self._changed.set)
        self._missing = missing

    def _refuse(self, topic: str) -> None:
        """The broker refused to let the gateway read ``topic``: leave it out for a while
        (the other inboxes are read on), and say so."""
        if topic not in self.views and topic != self.directory:
            raise TopicAuthorizationFailedError(topic)
        if topic in self._refused:
            return  # the same refusal again, from a fetch already under way
        REFUSED.inc()
        log.warning(
            "inbox reader: the broker refuses the gateway READ on %s (re-provision its party, "
            "or grant the directory); "
            "trying again in %.0fs",
            topic,
            REFUSED_RETRY,
        )
        self._refused[topic] = time.monotonic() + REFUSED_RETRY
        asyncio.get_running_loop().call_later(REFUSED_RETRY, self._changed.set)
        self._changed.set()

    async def _caught_up(
        self, consumer: AIOKafkaConsumer, behind: dict[str, dict[TopicPartition, int]]
    ) -> None:
        """Set the views whose partitions are read up to the ends seen at assignment ready
        (the consumer's position: past any transaction markers, which are no records)."""
        for topic in list(behind):
            ends = behind[topic]
            if all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                del behind[topic]
                view = self.views.get(topic)
                if view is not None:
                    view.ready.set()

    def _sweep(self, *, force: bool = False) -> None:
        """Drop the views of parties no longer provisioned."""
        now = time.monotonic()
        if self.provisioned is None or (not force and now - self._swept < SWEEP_EVERY):
            return
        self._swept = now
        alive = set(self.provisioned())
        for view in list(self.views.values()):
            if view.party not in alive:
                self.remove(view)
                view.stopped = True
                log.info("stopped following %s: it is no longer provisioned", view.party.label)


@dataclass
class _Open:
    producer: AIOKafkaProducer
    used: float = field(default_factory=time.monotonic)
    users: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Producers:
    """The producers writing as parties: lazily opened, at most ``capacity``, closed idle."""

    def __init__(
        self,
        bootstrap: str,
        *,
        capacity: int = 32,
        idle: float = 300.0,
        replica: str = "gateway",
        prefix: str = "sdoh",
    ) -> None:
        self.bootstrap = bootstrap
        self.capacity = max(1, capacity)
        self.idle = idle
        self.replica = replica
        self.prefix = prefix
        self._open: OrderedDict[tuple[str, str], _Open] = OrderedDict()
        self._lock = asyncio.Lock()
        self._reaper: asyncio.Task[None] | None = None

    def transactional_id(self, party: PartyRef) -> str:
        """``{prefix}.{kind}.{id}.gateway-{replica}``: the party's principal and a dot first."""
        return f"{self.prefix}.{party.kind}.{party.id}.gateway-{self.replica}"

    async def send(
        self, auth: KafkaAuth, topic: str, key: bytes, value: bytes, bootstrap: str = ""
    ) -> None:
        """Send one record as ``auth`` (one shared producer for the gateway's own login);
        ``bootstrap``: the login's own brokers if the gateway was given none."""
        name = ("send", auth.username or "")

        def build() -> AIOKafkaProducer:
            return clients.producer(self.bootstrap or bootstrap, auth)

        async with self._use(name, build) as entry:
            await entry.producer.send_and_wait(topic, value, key=key)

    async def send_all(
        self,
        party: PartyRef,
        auth: KafkaAuth,
        topic: str,
        records: Sequence[tuple[bytes, bytes]],
        bootstrap: str = "",
    ) -> None:
        """Send ``records`` in one transaction as the party: all are committed, or none.

        Any failure aborts the transaction and closes the producer (the next one
        registers the same transactional id, which fences anything left of it)."""
        tid = self.transactional_id(party)
        name = ("txn", tid)

        def build() -> AIOKafkaProducer:
            return clients.producer(self.bootstrap or bootstrap, auth, transactional_id=tid)

        async with self._use(name, build) as entry, entry.lock:
            try:
                async with entry.producer.transaction():
                    sent = [await entry.producer.send(topic, v, key=k) for k, v in records]
                    outcomes = await asyncio.gather(*sent, return_exceptions=True)
                    for outcome in outcomes:
                        if isinstance(outcome, BaseException):
                            raise outcome
            except BaseException:
                await self._discard(name, entry)
                raise

    @contextlib.asynccontextmanager
    async def _use(self, name: tuple[str, str], build: Callable[[], AIOKafkaProducer]) -> Any:
        async with self._lock:
            entry = self._open.get(name)
            if entry is None:
                await self._make_room()
                producer = build()
                try:
                    await producer.start()
                except BaseException:
                    with contextlib.suppress(Exception):
                        await producer.stop()
                    raise
                entry = self._open[name] = _Open(producer)
                OPEN_PRODUCERS.set(len(self._open))
            self._open.move_to_end(name)
            entry.users += 1
            if self._reaper is None and self.idle > 0:
                self._reaper = asyncio.create_task(self._reap(), name="gateway-producer-reaper")
        try:
            yield entry
        finally:
            entry.users -= 1
            entry.used = time.monotonic()

    async def _make_room(self) -> None:
        """Close least recently used idle producers until one more fits."""
        for name in list(self._open):
            if len(self._open) < self.capacity:
                return
            if self._open[name].users == 0:
                await self._close(name)
        if len(self._open) >= self.capacity:
            log.warning("all %d producers are in use: opening one more", len(self._open))

    async def _discard(self, name: tuple[str, str], entry: _Open) -> None:
        async with self._lock:
            if self._open.get(name) is entry:
                del self._open[name]
                OPEN_PRODUCERS.set(len(self._open))
        with contextlib.suppress(Exception):
            await entry.producer.stop()

    async def _close(self, name: tuple[str, str]) -> None:
        entry = self._open.pop(name)
        OPEN_PRODUCERS.set(len(self._open))
        with contextlib.suppress(Exception):
            await entry.producer.stop()

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(max(0.1, self.idle / 4))
            async with self._lock:
                now = time.monotonic()
                for name in [n for n, e in self._open.items() if not e.users]:
                    if now - self._open[name].used >= self.idle:
                        await self._close(name)

    def open_count(self) -> int:
        return len(self._open)

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reaper
            self._reaper = None
        async with self._lock:
            for name in list(self._open):
                await self._close(name)


__all__ = ["FOLLOWED", "OPEN_PRODUCERS", "RECONNECT", "InboxReader", "Producers"]
