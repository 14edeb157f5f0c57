"""The Faust app: thin agents around the pure decisions in patients/referrals.

Agents (concurrency 1 each: faust-streaming issue 606 commits past unprocessed
messages with more):

* ``patients`` on ``{prefix}.network.patients.v1`` (key ``clinic:patient``),
  table ``patients``: scores screenings, opens at most one referral per need;
* ``referrals`` on ``{prefix}.network.referrals.v1`` (key referral_id), table
  ``referrals``: the lifecycle of each referral;
* a timer on every worker pops due deadlines of the partitions that worker
  owns and sends ``timeout`` commands to the referral's owner.

Tables live in memory, backed by their changelog topics: recovery replays the
changelog on start, so state (and with it every pending deadline) survives a
crash. RocksDB would shorten recovery of large tables, but its Python bindings
are not well kept; the memory store has no native dependency.

Outputs of one message are produced and acknowledged by the broker before the
table is updated, and Faust commits the input offset after that: a crash in
between re-applies a command whose outputs carry the same deterministic ids.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import faust
import mode
from aiokafka import AIOKafkaProducer
from faust.transport.drivers import aiokafka as faust_aiokafka
from pydantic import TypeAdapter, ValidationError

from deploy.settings import Settings
from schemas.codes import DeadLetterKind
from schemas.events import DeadLetterSource
from schemas.topics import Topics
from streams import metrics
from streams.commands import PATIENT_COMMAND, REFERRAL_COMMAND, OfferTimeout, encode
from streams.deadlines import DeadlineIndex
from streams.ingress import Ingress
from streams.outputs import Outgoing, dead_letter_event
from streams.patients import PatientRecord
from streams.patients import decide as decide_patient
from streams.referrals import Context, ReferralRecord
from streams.referrals import decide as decide_referral
from streams.view import NetworkView

log = logging.getLogger(__name__)


class IdempotentProducer(faust_aiokafka.Producer):
    """Faust's producer with acks=all and idempotence on under at-least-once too."""

    def _settings_extra(self) -> dict[str, Any]:
        return {"acks": "all", "enable_idempotence": True}


class RefnetApp(faust.App):
    def _new_producer(self) -> Any:
        return IdempotentProducer(self.transport, loop=self.loop, beacon=self.beacon)


@dataclass
class Network:
    """Everything one worker runs."""

    app: faust.App
    settings: Settings
    topics: Topics
    bootstrap: str
    view: NetworkView
    deadlines: DeadlineIndex = field(default_factory=DeadlineIndex)
    owned: frozenset[int] = frozenset()
    producer: AIOKafkaProducer | None = None
    ingress: Ingress | None = None
    ledger: Any = None


def build(settings: Settings, bootstrap: str) -> Network:
    topics = Topics(
        prefix=settings.topic_prefix,
        partitions=settings.partitions,
        replication_factor=settings.replication_factor,
    )
    app = RefnetApp(
        settings.app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=str(settings.data_dir / "worker"),
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_commit_every=100,
        broker_commit_interval=1.0,
        table_standby_replicas=0,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=max(1.0, settings.session_timeout / 10),
    )
    view = NetworkView(bootstrap, topics, refresh_seconds=settings.pattern_refresh)
    net = Network(app=app, settings=settings, topics=topics, bootstrap=bootstrap, view=view)

    # values are JSON documents (the app's default value serializer)
    patients_table = app.Table("patients", partitions=settings.partitions)
    referrals_table = app.Table("referrals", partitions=settings.partitions)
    patients_topic = app.topic(
        topics.network_patients,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
    )
    referrals_topic = app.topic(
        topics.network_referrals,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
    )

    async def send_all(outputs: Iterable[Outgoing]) -> None:
        producer = app.producer
        futures = []
        for out in outputs:
            metrics.OUTPUTS.labels(out.label).inc()
            futures.append(
                await producer.send(out.topic, out.key.encode(), out.value, None, None, None)
            )
        if futures:
            await asyncio.gather(*futures)

    def bad_command(event: Any, reason: str) -> Outgoing:
        message = event.message
        source = DeadLetterSource(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key.decode("utf-8", "backslashreplace") if message.key else None,
        )
        at = datetime.fromtimestamp(message.timestamp, UTC)
        letter = dead_letter_event(
            DeadLetterKind.VALIDATION, reason, source, message.value, occurred_at=at
        )
        return Outgoing.event(topics.deadletter, source.key or "", letter)

    async def read_command(event: Any, adapter: TypeAdapter[Any]) -> Any:
        """The command in ``event``, or None after dead-lettering what is not one."""
        try:
            return adapter.validate_json(event.value)
        except ValidationError as exc:
            await send_all([bad_command(event, f"internal command: {exc.error_count()} errors")])
            return None

    @app.agent(patients_topic, concurrency=1)
    async def patients(stream: Any) -> None:
        async for event in stream.events():
            key = event.key.decode() if event.key else ""
            command = await read_command(event, PATIENT_COMMAND)
            if command is None:
                continue
            raw = patients_table.get(key)
            record = PatientRecord.model_validate(raw) if raw is not None else None
            decision = decide_patient(record, command, topics=topics)
            await send_all(decision.outputs)
            if decision.record is not None:
                patients_table[key] = decision.record.model_dump(mode="json")
                await durable(app)
            metrics.COMMANDS.labels("patients", command.kind).inc()

    @app.agent(referrals_topic, concurrency=1)
    async def referrals(stream: Any) -> None:
        await view.ready.wait()
        async for event in stream.events():
            key = event.key.decode() if event.key else ""
            command = await read_command(event, REFERRAL_COMMAND)
            if command is None:
                continue
            raw = referrals_table.get(key)
            record = ReferralRecord.model_validate(raw) if raw is not None else None
            state = view.state
            ctx = Context(
                topics=topics,
                now=datetime.now(UTC),
                directory=state.directory(),
                org_stats=state.org_stats(),
                load=state.load(),
                default_sla=settings.default_response_sla,
            )
            decision = decide_referral(record, command, ctx, partition=event.message.partition)
            await send_all(decision.outputs)
            if decision.dead_letter:
                metrics.DEAD_LETTERS.labels(decision.dead_letter).inc()
            new = decision.record
            if new is not None:
                referrals_table[key] = new.model_dump(mode="json")
                await durable(app)
                due = new.pending_deadline()
                if due is None:
                    net.deadlines.discard(new.referral_id)
                else:
                    net.deadlines.set(new.partition, new.referral_id, due)
            metrics.COMMANDS.labels("referrals", command.kind).inc()

    def owned_partitions() -> frozenset[int]:
        return frozenset(
            tp.partition
            for tp in app.assignor.assigned_actives()
            if tp.topic == topics.network_referrals
        )

    @referrals_table.on_recover
    async def rebuild_deadlines() -> None:
        """After every rebalance, once the table is recovered and before streams resume."""
        _reload_deadlines(net, referrals_table, owned_partitions())

    @app.timer(interval=settings.timer_interval)  # type: ignore[untyped-decorator]
    async def deadlines() -> None:
        if app.rebalancing:
            return
        owned = owned_partitions()
        now = datetime.now(UTC)
        for due in net.deadlines.pop_due(now):
            if due.partition not in owned:
                continue  # revoked since the last rebuild: its new owner has it
            record = referrals_table.get(due.referral_id)
            if record is None:
                continue
            attempt = ReferralRecord.model_validate(record).attempt
            command = OfferTimeout(
                command_id=f"timeout:{due.referral_id}:{attempt}",
                referral_id=due.referral_id,
                attempt=attempt,
            )
            metrics.TIMEOUTS.inc()
            await referrals_topic.send(key=due.referral_id.encode(), value=encode(command))

    @app.service
    class Services(mode.Service):
        """The network view and the ingress, started and stopped with the app."""

        async def on_start(self) -> None:
            producer = AIOKafkaProducer(
                bootstrap_servers=bootstrap, acks="all", enable_idempotence=True
            )
            await producer.start()
            net.producer = producer

            async def dead_letter(
                failure: Any,
                topic: str,
                partition: int,
                offset: int,
                key: bytes | None,
                value: bytes | None,
            ) -> None:
                source = DeadLetterSource(
                    topic=topic,
                    partition=partition,
                    offset=offset,
                    key=key.decode("utf-8", "backslashreplace") if key else None,
                )
                letter = dead_letter_event(
                    failure.kind, failure.reason, source, value, occurred_at=datetime.now(UTC)
                )
                metrics.DEAD_LETTERS.labels(failure.kind.value).inc()
                out = Outgoing.event(topics.deadletter, source.key or "", letter)
                await (await producer.send(out.topic, out.value, key=out.key.encode()))

            view._on_dead_letter = dead_letter
            await view.start()
            net.ingress = Ingress(
                bootstrap,
                topics,
                producer,
                view.state,
                group_id=f"{settings.app_id}-ingress",
                refresh_seconds=settings.pattern_refresh,
                ready=view.ready.wait,
                observe=lambda label: metrics.INGRESS.labels(label).inc(),
            )
            await net.ingress.start()
            if settings.database_url:
                from connectors.ledger import LedgerSink

                net.ledger = LedgerSink(
                    bootstrap,
                    topics.referral_events,
                    settings.database_url,
                    group_id=f"{settings.app_id}-ledger",
                )
                await net.ledger.start()

        async def on_stop(self) -> None:
            if net.ledger is not None:
                await net.ledger.stop()
            if net.ingress is not None:
                await net.ingress.stop()
            await view.stop()
            if net.producer is not None:
                await net.producer.stop()

    return net


async def durable(app: faust.App) -> None:
    """Wait until the table's changelog write is acknowledged by the broker.

    Faust buffers changelog writes and may commit the input offset before they
    reach the broker; a crash in between would lose the state but not the
    outputs, and the command would run again. Flushing here makes the state
    durable before the offset can be committed, leaving only the moment between
    the outputs' and the changelog's acknowledgements.
    """
    await app.producer.flush()


def _reload_deadlines(net: Network, table: Any, owned: frozenset[int]) -> None:
    """Rebuild the deadline index from the recovered table (once per rebalance).

    Rebuilt whole: a partition this worker owned before may have changed while
    another worker held it.
    """
    net.deadlines.drop_partitions(net.deadlines.partitions())
    for raw in list(table.values()):
        record = ReferralRecord.model_validate(raw)
        due = record.pending_deadline()
        if due is not None and record.partition in owned:
            net.deadlines.set(record.partition, record.referral_id, due)
    log.info("deadline index: %d pending on partitions %s", len(net.deadlines), sorted(owned))
    net.owned = owned
