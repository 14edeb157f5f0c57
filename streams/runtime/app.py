"""The Faust app: thin agents around the pure decisions in patients/referrals.

Agents (concurrency 1 each: faust-streaming issue 606 commits past unprocessed
messages with more):

* ``patients`` on ``{prefix}.network.patients.v1`` (key ``clinic:patient``),
  table ``patients``: scores screenings, opens at most one referral per need;
* ``referrals`` on ``{prefix}.network.referrals.v1`` (key referral_id), table
  ``referrals``: the lifecycle of each referral;
* a timer on every worker pops due deadlines of the partitions that worker
  owns (offers to time out, idle referrals to expire, closed ones to purge)
  and sends a command to the referral's owner.

Tables live in memory, backed by their changelog topics: recovery replays the
changelog on start, so state (and with it every pending deadline) survives a
crash. Newly assigned partitions are loaded in bulk (:mod:`streams.runtime.store`) and
Faust's recovery reads what follows. RocksDB would shorten recovery of large
tables, but its Python bindings are not well kept; the memory store has no
native dependency.

Each command is applied as: decide (pure), write the new record *with its
outputs* (the outbox) to the table and wait for the changelog's
acknowledgement, then produce the outputs and wait for theirs. A command
delivered again after a crash finds its outbox and re-sends exactly the
recorded bytes: same organization, same event ids, whatever the view or the
clock did in between. A decision that raises is dead-lettered (``internal``)
and the referral ends ``failed`` / ``network-error``; nothing is acked away
unseen. A changelog write the broker keeps refusing stops the worker
(:func:`streams.runtime.supervise.fatal`) before the input offset can be committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import faust
import mode
from aiokafka import AIOKafkaProducer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types.tuples import Message as FaustMessage
from pydantic import TypeAdapter, ValidationError

from connectors.observability import metrics
from schemas.codes import DeadLetterKind
from schemas.events import DeadLetterSource
from schemas.topics import Topics
from streams.decisions.commands import (
    PATIENT_COMMAND,
    REFERRAL_COMMAND,
    Command,
    ExpireReferral,
    OfferTimeout,
    OrganizationRemoved,
    PurgeReferral,
    encode,
)
from streams.decisions.deadlines import DeadlineIndex
from streams.decisions.outputs import Outgoing, dead_letter_event
from streams.decisions.patients import PatientRecord
from streams.decisions.patients import decide as decide_patient
from streams.decisions.referrals import (
    Context,
    ReferralRecord,
    holder,
    holder_of_stored,
    next_due_of_stored,
)
from streams.decisions.referrals import decide as decide_referral
from streams.decisions.referrals import fail as fail_referral
from streams.runtime import store
from streams.runtime.config import NetworkConfig
from streams.runtime.gaps import IDLE_SECONDS, POKE, OffsetGuard
from streams.runtime.ingress import Ingress
from streams.runtime.store import ChangelogLoader
from streams.runtime.supervise import Supervisor, fatal, install_log_redaction
from streams.runtime.view import NetworkView

log = logging.getLogger(__name__)


class IdempotentProducer(faust_aiokafka.Producer):
    """Faust's producer with acks=all and idempotence on under at-least-once too."""

    def _settings_extra(self) -> dict[str, Any]:
        return {"acks": "all", "enable_idempotence": True}


#: How long the broker may hold the agents' consumer's fetch when there is no
#: data. Faust fixes it at 1.5 s, and the broker answers a connection's requests
#: in order: recovery's offset requests waited behind an empty fetch, 1.5 s each
#: (start-to-ready took 3 s longer whenever the fetcher got there first).
FETCH_MAX_WAIT_MS = 100


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # read by the fetcher aiokafka makes when the consumer starts
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> Any:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class RefnetApp(faust.App):
    #: reads newly assigned changelog partitions in bulk (see streams.runtime.store)
    changelog_loader: ChangelogLoader | None = None

    def _new_producer(self) -> Any:
        return IdempotentProducer(self.transport, loop=self.loop, beacon=self.beacon)

    def _new_consumer(self) -> Any:
        return Consumer(
            self.transport,
            callback=self.topics.on_message,
            on_partitions_revoked=self._on_partitions_revoked,
            on_partitions_assigned=self._on_partitions_assigned,
            beacon=self.beacon,
            loop=self.loop,
        )


@dataclass
class Network:
    """Everything one worker runs."""

    app: faust.App
    config: NetworkConfig
    topics: Topics
    bootstrap: str
    view: NetworkView
    deadlines: DeadlineIndex = field(default_factory=DeadlineIndex)
    owned: frozenset[int] = frozenset()
    producer: AIOKafkaProducer | None = None
    ingress: Ingress | None = None
    ledger: Any = None
    supervisor: Supervisor = field(default_factory=Supervisor)
    #: organization -> referrals it holds, in the partitions this worker owns
    held: dict[str, set[str]] = field(default_factory=dict)
    holder_of: dict[str, str] = field(default_factory=dict)
    #: this worker owned partition 0 at the last snapshot interval: it writes the
    #: view's snapshots, and one more as it stops
    snapshot_writer: bool = False

    def hold(self, referral_id: str, org_id: str | None) -> None:
        before = self.holder_of.pop(referral_id, None)
        if before is not None:
            self.held.get(before, set()).discard(referral_id)
        if org_id is not None:
            self.holder_of[referral_id] = org_id
            self.held.setdefault(org_id, set()).add(referral_id)


#: Attempts at producing a command's outputs before the command is dead-lettered,
#: and at a changelog write before the worker stops.
SEND_ATTEMPTS = 4
DURABLE_ATTEMPTS = 4
#: Seconds a produced message may take to be acknowledged before it counts as failed.
SEND_TIMEOUT = 30.0
#: Seconds a stopping worker gives its last snapshot of the view.
STOP_SNAPSHOT_SECONDS = 10.0
#: An agent applies up to BATCH_SIZE commands as one batch (one wait for the
#: changelog, one for the outputs): what has arrived, without waiting for more
#: (see :func:`batches`). A batch's events are acknowledged only after it is
#: applied. An earlier attempt lost referrals in the two-worker SIGKILL test: the
#: causes were Faust skipping an input offset in a rebalance (now read back by
#: :class:`streams.runtime.gaps.OffsetGuard`) and commits left half done by a cancelled
#: agent (a batch now runs to its end; see ``unbroken``).
BATCH_SIZE = 200


async def batches(stream: Any, size: int = BATCH_SIZE) -> AsyncIterator[list[Any]]:
    """The stream's events in batches of what has arrived, up to ``size``.

    Faust's ``take_events`` waits for a timer to hand over a batch (and wakes every
    ``within`` seconds even when idle); this hands one over as soon as the
    channel's queue is empty, so one command alone goes at once, and commands
    that queue up while a batch is applied form the next batch. Events are
    acknowledged after the batch (the caller's work) is done, as ``take_events``
    does.
    """
    stream.enable_acks = False  # acknowledged here, once the batch is applied
    queue = stream.channel.queue
    events: list[Any] = []
    async for _value in stream:
        events.append(stream.current_event)
        if len(events) < size and not queue.empty():
            continue
        try:
            yield events
        finally:
            for event in events:
                await stream.ack(event)
            events = []


class SendFailed(RuntimeError):
    """Outputs could not be produced after :data:`SEND_ATTEMPTS` tries."""


def build(config: NetworkConfig, bootstrap: str) -> Network:
    install_log_redaction()
    limits = config.limits
    auth = config.kafka_auth
    topics = Topics(
        prefix=config.topic_prefix,
        partitions=config.partitions,
        replication_factor=config.replication_factor,
    )
    app = RefnetApp(
        config.app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=str(config.data_dir / "worker"),
        web_enabled=False,
        topic_partitions=config.partitions,
        topic_replication_factor=config.replication_factor,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_commit_every=100,
        broker_commit_interval=1.0,
        table_standby_replicas=config.standby_replicas,
        broker_session_timeout=config.session_timeout,
        broker_heartbeat_interval=max(1.0, config.session_timeout / 10),
        broker_credentials=auth.faust(),
        # a message for a topic deleted under it fails within this, instead of the
        # producer retrying it (and every flush waiting on it) for 20 minutes
        producer_request_timeout=SEND_TIMEOUT,
    )
    view = NetworkView(bootstrap, topics, refresh_seconds=config.pattern_refresh, auth=auth)
    guard = OffsetGuard(
        bootstrap, config.app_id, generation=lambda: app.consumer_generation_id, auth=auth
    )
    net = Network(app=app, config=config, topics=topics, bootstrap=bootstrap, view=view)

    # values are JSON documents (the app's default value serializer); a newly
    # assigned partition is loaded in bulk (streams.runtime.store), not record by record
    app.changelog_loader = ChangelogLoader(bootstrap, auth=auth)
    table_store = store.URL
    patients_table = app.Table("patients", partitions=config.partitions, store=table_store)
    referrals_table = app.Table("referrals", partitions=config.partitions, store=table_store)
    patients_topic = app.topic(
        topics.network_patients,
        key_serializer="raw",
        value_serializer="raw",
        partitions=config.partitions,
    )
    referrals_topic = app.topic(
        topics.network_referrals,
        key_serializer="raw",
        value_serializer="raw",
        partitions=config.partitions,
    )

    async def send_all(outputs: Sequence[Outgoing], agent: str) -> None:
        """Produce ``outputs`` and wait for the broker; retried, then :class:`SendFailed`."""
        if not outputs:
            return
        failure: Exception | None = None
        for attempt in range(SEND_ATTEMPTS):
            if attempt:
                # a party's topic may have vanished since the last look: what is
                # for it becomes an undeliverable dead letter, the rest goes again
                outputs = await deliverable(list(outputs), force=True)
            try:
                producer = app.producer
                futures = [
                    await producer.send(out.topic, out.key.encode(), out.value, None, None, None)
                    for out in outputs
                ]
                await asyncio.gather(*futures)
            except Exception as exc:  # noqa: BLE001 - retried, then dead-lettered
                failure = exc
                metrics.SEND_RETRIES.labels(agent).inc()
                log.warning(
                    "%s: producing %d message(s) failed (%s), attempt %d",
                    agent,
                    len(outputs),
                    type(exc).__name__,
                    attempt + 1,
                )
                await asyncio.sleep(0.5 * 2**attempt)
            else:
                for out in outputs:
                    metrics.OUTPUTS.labels(out.label).inc()
                return
        raise SendFailed(type(failure).__name__)

    async def durable(writes: Sequence[tuple[Any, str, int, dict[str, Any] | None]]) -> None:
        """Send table writes (``None`` deletes) to their changelogs and wait until the
        broker acknowledged every one: state is durable before any input offset can
        be committed. A write the broker keeps refusing stops the worker."""
        if not writes:
            return
        for attempt in range(DURABLE_ATTEMPTS):
            try:
                futures = [
                    await changelog_write(table, partition, key, value)
                    for table, key, partition, value in writes
                ]
                await asyncio.wait_for(asyncio.gather(*map(asyncio.shield, futures)), timeout=60)
            except Exception as exc:  # noqa: BLE001 - retried, then the worker stops
                log.error(
                    "changelog write of %d row(s) failed (%s), attempt %d",
                    len(writes),
                    type(exc).__name__,
                    attempt + 1,
                )
                await asyncio.sleep(0.5 * 2**attempt)
            else:
                return
        fatal("a changelog refuses writes; state would not be durable")

    async def changelog_write(
        table: Any, partition: int, key: str, value: dict[str, Any] | None
    ) -> Any:
        """Produce one row (``None``: its tombstone) to the table's changelog; returns
        the future of its acknowledgement. Encoded as Faust's ``send_changelog``
        would, but handed to the producer at once: Faust's buffered send needs a
        ``flush()``, which waits for everything the producer holds, the other
        agent's writes included."""
        key_bytes = app.serializers.dumps_key(table.key_type, key, serializer=table.key_serializer)
        value_bytes = (
            None
            if value is None
            else app.serializers.dumps_value(
                table.value_type, value, serializer=table.value_serializer
            )
        )
        return await app.producer.send(
            table.changelog_topic.get_topic_name(), key_bytes, value_bytes, partition, None, None
        )

    def stage(table: Any, key: str, partition: int, value: dict[str, Any] | None) -> None:
        """Change a row in memory: later commands of the batch see it at once. The
        store learns the row's partition, so that the row leaves memory with it."""
        if value is None:
            if key in table.data:
                del table.data[key]
            table.data.forget_key(key)
        else:
            table.data[key] = value
            table.data.note_key(key, partition)

    class Batch:
        """Commands of an agent applied as one.

        Each decision is staged in the table at once (later commands in the batch
        see it), with its outputs appended to the row's outbox; then every
        staged row is made durable with one flush, then every output is produced
        in order, awaited once, and the outboxes are emptied. Rows a decision
        removes are deleted after the outputs: what such a decision sends derives
        from the record alone, so a replay recomputes the same bytes.
        """

        def __init__(self, table: Any, agent: str) -> None:
            self.table = table
            self.agent = agent
            self.rows: dict[str, tuple[int, dict[str, Any] | None]] = {}
            self.sends: list[tuple[Command, list[Outgoing]]] = []
            #: command ids handled in this batch: a repeat within it has no effect
            self.seen: set[str] = set()

        def send(self, command: Command, outputs: list[Outgoing]) -> None:
            self.seen.add(command.command_id)
            if outputs:
                self.sends.append((command, outputs))

        def apply(
            self,
            key: str,
            partition: int,
            record: Any,
            outputs: list[Outgoing],
            command: Command,
            *,
            delete: bool,
        ) -> None:
            if delete:
                stage(self.table, key, partition, None)
                self.rows[key] = (partition, None)
            elif record is not None:
                stored = record.model_dump(mode="json")
                # entries not yet delivered (earlier in this batch, or before a
                # crash) stay until the batch's outputs are out
                box = _outbox(self.table.get(key))
                if outputs:
                    entry = {
                        "command_id": command.command_id,
                        "messages": [out.stored() for out in outputs],
                    }
                    box = [*box, entry]
                stored["outbox"] = box
                stage(self.table, key, partition, stored)
                self.rows[key] = (partition, stored)
            self.send(command, outputs)

        async def commit(self) -> None:
            kept = [(self.table, k, p, v) for k, (p, v) in self.rows.items() if v is not None]
            await durable(kept)
            if config.failpoint == "crash-after-state" and self.agent == "referrals" and self.sends:
                fatal("failpoint crash-after-state: state is durable, outputs not produced")
            await deliver(self.sends, self.agent)
            removed = [(self.table, k, p, v) for k, (p, v) in self.rows.items() if v is None]
            await durable(removed)
            # Delivered: empty the outboxes, so that the same event sent again by its
            # party (not a crash replay) has no second effect. Not awaited: if these
            # writes are lost in a crash, a replay repeats identical messages once.
            for table, key, partition, value in kept:
                if value is not None and value.get("outbox"):
                    value["outbox"] = []
                    await changelog_write(table, partition, key, value)

    last_look = [0.0]

    async def deliverable(outputs: list[Outgoing], *, force: bool = False) -> list[Outgoing]:
        """``outputs``, with those for a topic that does not exist (a deprovisioned
        party's) replaced by an ``undeliverable`` dead letter: a send to a missing
        topic would block the agent while the producer waits for its metadata."""
        missing = {out.topic for out in outputs if out.topic not in view.topic_names}
        stale = asyncio.get_running_loop().time() - last_look[0] > 1.0
        if force or (missing and stale):
            last_look[0] = asyncio.get_running_loop().time()
            try:
                await view.list_orgs()  # a party provisioned a moment ago
            except Exception as exc:  # noqa: BLE001 - keep the last known topics
                log.warning("could not list topics (%s)", type(exc).__name__)
            missing = {out.topic for out in outputs if out.topic not in view.topic_names}
        if not missing or not view.topic_names:
            return outputs
        kept = []
        for out in outputs:
            if out.topic not in missing:
                kept.append(out)
                continue
            source = DeadLetterSource(topic=out.topic, partition=-1, offset=-1, key=out.key)
            letter = dead_letter_event(
                DeadLetterKind.UNDELIVERABLE,
                f"{out.label} for a topic that does not exist (a deprovisioned party?)",
                source,
                out.value,
                occurred_at=datetime.now(UTC),
            )
            metrics.DEAD_LETTERS.labels(DeadLetterKind.UNDELIVERABLE.value).inc()
            kept.append(Outgoing.event(topics.deadletter, out.key, letter))
        return kept

    async def deliver(sends: Sequence[tuple[Command, list[Outgoing]]], agent: str) -> None:
        """Produce every command's outputs; what cannot be produced is dead-lettered."""
        outputs = await deliverable([out for _, outs in sends for out in outs])
        try:
            await send_all(outputs, agent)
        except SendFailed as exc:
            # dead-letter the commands; if even that fails, stop before the commit
            letters = [
                internal_letter(command, agent, f"its outputs could not be produced: {exc}")
                for command, _ in sends
            ]
            try:
                await send_all(letters, agent)
            except SendFailed:
                fatal(f"{agent}: the broker refuses every message")

    def internal_letter(command: Command, agent: str, why: str) -> Outgoing:
        source = getattr(command, "source", None) or DeadLetterSource(
            topic=topics.network_referrals if agent == "referrals" else topics.network_patients,
            partition=-1,
            offset=-1,
            key=getattr(command, "referral_id", None),
        )
        letter = dead_letter_event(
            DeadLetterKind.INTERNAL,
            f"{agent} failed on a {getattr(command, 'kind', 'command')} command: {why}",
            source,
            b"",
            occurred_at=datetime.now(UTC),
        )
        metrics.DEAD_LETTERS.labels(DeadLetterKind.INTERNAL.value).inc()
        return Outgoing.event(topics.deadletter, source.key or "", letter)

    def replayed(raw: Any, command: Command) -> list[Outgoing] | None:
        """The recorded, undelivered outputs of ``command`` if the row's outbox holds
        them (a command delivered again after a crash)."""
        for entry in _outbox(raw):
            if entry.get("command_id") == command.command_id:
                return [Outgoing.from_stored(m) for m in entry.get("messages", [])]
        return None

    def bad_command(event: Any, reason: str) -> Outgoing:
        message = event.message
        source = DeadLetterSource(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key.decode("utf-8", "backslashreplace")[:256] if message.key else None,
        )
        letter = dead_letter_event(
            DeadLetterKind.VALIDATION,
            reason,
            source,
            message.value,
            occurred_at=datetime.now(UTC),
        )
        return Outgoing.event(topics.deadletter, source.key or "", letter)

    def read_command(event: Any, adapter: TypeAdapter[Any], batch: Batch) -> Any:
        """The command in ``event``, or None after dead-lettering what is not one."""
        try:
            return adapter.validate_json(event.value)
        except ValidationError as exc:
            reason = f"internal command: {exc.error_count()} errors"
            batch.send(_Unreadable(), [bad_command(event, reason)])
            return None

    def failed(agent: str, command: Command, exc: Exception) -> None:
        error = type(exc).__name__
        metrics.INTERNAL_ERRORS.labels(agent, error).inc()
        log.error(
            "%s: %s on a %s command; dead-lettered as internal",
            agent,
            error,
            getattr(command, "kind", "?"),
        )

    async def apply_events(events: Sequence[Any], table: Any, agent: str, handle: Any) -> None:
        """Apply ``events`` as one batch, each after the records Faust skipped before
        it (see streams.runtime.gaps). Read-back records are acknowledged to Faust once the
        batch is committed, so that its commits go on past them; ``events``
        themselves are acknowledged by :func:`batches` after this returns."""
        batch = Batch(table, agent)
        read_back: list[Any] = []
        for event in events:
            try:
                missed = await guard.missed(event, agent)
            except Exception as exc:  # noqa: BLE001 - the event itself still goes on
                metrics.TASK_RESTARTS.labels("offset-guard").inc()
                log.error("%s: could not check for skipped offsets (%s)", agent, type(exc).__name__)
                missed = []
            for record in missed:
                handle(record, batch)
                guard.applied(record)
                read_back.append(record)
            handle(event, batch)
            guard.applied(event)
        await batch.commit()
        for record in read_back:
            acknowledge(record)

    async def unbroken(work: Any) -> None:
        """Run a batch to its end even if the agent is cancelled meanwhile (a stop or
        a rebalance): its state is staged, so its outputs must go out, and
        :func:`batches` must not acknowledge its events before that. The
        cancellation goes on once the batch is done."""
        task = asyncio.ensure_future(work)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            await task
            raise

    def acknowledge(record: Any) -> None:
        m = record.message
        message = FaustMessage(
            m.topic,
            m.partition,
            m.offset,
            m.timestamp,
            0,
            None,
            m.key,
            m.value,
            None,
            generation_id=app.consumer_generation_id,
        )
        app.consumer.ack(message)

    @app.agent(patients_topic, concurrency=1)
    async def patients(stream: Any) -> None:
        async for events in batches(stream):
            await unbroken(apply_events(events, patients_table, "patients", handle_patient))

    def arrived(event: Any, adapter: TypeAdapter[Any], batch: Batch) -> tuple[str, Any, Any]:
        """``(key, command, stored row)`` of an event still to decide, or a None command
        when it is done already: unreadable, repeated in the batch, or a replay whose
        recorded outputs are sent again as they were."""
        key = event.key.decode() if event.key else ""
        if event.value == POKE:
            return key, None, None  # it only woke the agent (streams.runtime.gaps)
        command = read_command(event, adapter, batch)
        if command is None or command.command_id in batch.seen:
            return key, None, None
        raw = batch.table.get(key)
        again = replayed(raw, command)
        if again is not None:
            batch.send(command, again)
            return key, None, None
        return key, command, raw

    def handle_patient(event: Any, batch: Batch) -> None:
        key, command, raw = arrived(event, PATIENT_COMMAND, batch)
        if command is None:
            return
        try:
            record = PatientRecord.model_validate(raw) if raw is not None else None
            decision = decide_patient(record, command, topics=topics)
        except Exception as exc:  # noqa: BLE001 - the error boundary: dead-letter, go on
            failed("patients", command, exc)
            batch.send(command, [internal_letter(command, "patients", type(exc).__name__)])
            return
        if decision.delete and raw is None:
            batch.send(command, decision.outputs)  # nothing was stored
        else:
            batch.apply(
                key,
                event.message.partition,
                decision.record,
                decision.outputs,
                command,
                delete=decision.delete,
            )
        metrics.COMMANDS.labels("patients", command.kind).inc()

    @app.agent(referrals_topic, concurrency=1)
    async def referrals(stream: Any) -> None:
        await view.ready.wait()
        async for events in batches(stream):
            await unbroken(apply_events(events, referrals_table, "referrals", handle_referral))

    def handle_referral(event: Any, batch: Batch) -> None:
        key, command, raw = arrived(event, REFERRAL_COMMAND, batch)
        if command is None:
            return
        record: ReferralRecord | None = None
        state = view.state
        ctx = Context(
            topics=topics,
            now=datetime.now(UTC),
            directory=state,
            org_stats=state.org_stats(),
            load=state.load(),
            default_sla=limits.default_response_sla,
            limits=limits,
        )
        try:
            record = ReferralRecord.model_validate(raw) if raw is not None else None
            decision = decide_referral(record, command, ctx, partition=event.message.partition)
        except Exception as exc:  # noqa: BLE001 - the error boundary: dead-letter, end it
            failed("referrals", command, exc)
            try:
                decision = fail_referral(record, command, ctx, type(exc).__name__)
            except Exception as again_exc:  # noqa: BLE001 - even the fallback failed
                failed("referrals", command, again_exc)
                why = type(exc).__name__
                batch.send(command, [internal_letter(command, "referrals", why)])
                return
        if decision.dead_letter:
            metrics.DEAD_LETTERS.labels(decision.dead_letter).inc()
        batch.apply(
            key,
            event.message.partition,
            decision.record,
            decision.outputs,
            command,
            delete=decision.delete,
        )
        current = None if decision.delete else (decision.record or record)
        net.hold(key, holder(current) if current is not None else None)
        if current is None:
            net.deadlines.discard(key)
        else:
            offer = current.offer
            if offer is not None and offer.offered_at == ctx.now:
                state.reserve(current.referral_id, offer.attempt, offer.service_id, ctx.now)
            due = current.next_due(limits)
            if due is None:
                net.deadlines.discard(current.referral_id)
            else:
                net.deadlines.set(current.partition, current.referral_id, due)
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
        await _reload_deadlines(net, referrals_table, owned_partitions())

    @app.timer(interval=config.timer_interval)  # type: ignore[untyped-decorator]
    async def deadlines() -> None:
        if app.rebalancing:
            return
        try:
            await tick()
        except Exception as exc:  # noqa: BLE001 - a failed tick is counted; the next one runs
            metrics.TASK_RESTARTS.labels("timer").inc()
            log.error("deadline timer failed (%s); it runs again next tick", type(exc).__name__)

    @app.timer(interval=config.view_snapshot_interval)  # type: ignore[untyped-decorator]
    async def view_snapshot() -> None:
        """The owner of the referral commands' partition 0 snapshots the view."""
        if app.rebalancing or net.producer is None:
            return
        net.snapshot_writer = 0 in owned_partitions()
        if not net.snapshot_writer or view.topics.network_view not in view.topic_names:
            return
        try:
            await view.write_snapshot(net.producer)
        except Exception as exc:  # noqa: BLE001 - counted; the next interval tries again
            metrics.TASK_RESTARTS.labels("view-snapshot").inc()
            log.error("writing the view's snapshot failed (%s)", type(exc).__name__)

    @app.timer(interval=IDLE_SECONDS)  # type: ignore[untyped-decorator]
    async def poke_idle() -> None:
        """Wake the agent of a quiet partition whose end lies beyond what it applied."""
        if app.rebalancing:
            return
        try:
            await poke_quiet_partitions()
        except Exception as exc:  # noqa: BLE001 - counted; the next look goes on
            metrics.TASK_RESTARTS.labels("offset-guard").inc()
            log.error("looking for quiet partitions failed (%s)", type(exc).__name__)

    async def poke_quiet_partitions() -> None:
        agents = {topics.network_patients: "patients", topics.network_referrals: "referrals"}
        owned = [
            (tp.topic, tp.partition) for tp in app.assignor.assigned_actives() if tp.topic in agents
        ]
        for topic, partition in await guard.idle(owned):
            log.warning("%s[%d]: quiet with records not applied; poked", topic, partition)
            metrics.POKES.labels(agents[topic]).inc()
            await (await app.producer.send(topic, None, POKE, partition, None, None))

    async def tick() -> None:
        owned = owned_partitions()
        now = datetime.now(UTC)
        for n, due in enumerate(net.deadlines.pop_due(now)):
            if n % 500 == 499:
                await asyncio.sleep(0)  # never hold the event loop for long
            if due.partition not in owned:
                continue  # revoked since the last rebuild: its new owner has it
            raw = referrals_table.get(due.referral_id)
            if raw is None:
                continue
            record = ReferralRecord.model_validate(raw)
            when = record.next_due(limits)
            if when is None:
                continue
            if when > now:
                net.deadlines.set(record.partition, record.referral_id, when)
                continue
            command: Command
            if record.state.terminal:
                command = PurgeReferral(
                    command_id=f"purge:{record.referral_id}", referral_id=record.referral_id
                )
            elif record.pending_deadline() is not None:
                command = OfferTimeout(
                    command_id=f"timeout:{record.referral_id}:{record.attempt}",
                    referral_id=record.referral_id,
                    attempt=record.attempt,
                )
                metrics.TIMEOUTS.inc()
            else:
                command = ExpireReferral(
                    command_id=f"expire:{record.referral_id}:{record.step}",
                    referral_id=record.referral_id,
                    step=record.step,
                )
            await referrals_topic.send(key=record.referral_id.encode(), value=encode(command))

    @app.service
    class Services(mode.Service):
        """The network view, the ingress and the ledger sink: supervised, started and
        stopped with the app."""

        async def on_start(self) -> None:
            producer = AIOKafkaProducer(
                bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **auth.aiokafka()
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
                    key=key.decode("utf-8", "backslashreplace")[:256] if key else None,
                )
                letter = dead_letter_event(
                    failure.kind, failure.reason, source, value, occurred_at=datetime.now(UTC)
                )
                metrics.DEAD_LETTERS.labels(failure.kind.value).inc()
                out = Outgoing.event(topics.deadletter, source.key or "", letter)
                await (await producer.send(out.topic, out.value, key=out.key.encode()))

            view._on_dead_letter = dead_letter

            async def orgs_removed(removed: frozenset[str]) -> None:
                """Deprovisioned organizations: their referrals re-route or end."""
                for org_id in sorted(removed):
                    held = sorted(net.held.get(org_id, ()))
                    log.info("organization removed: %d referral(s) to re-route", len(held))
                    for referral_id in held:
                        command = OrganizationRemoved(
                            command_id=f"org-removed:{referral_id}:{org_id}",
                            referral_id=referral_id,
                            org_id=org_id,
                        )
                        await referrals_topic.send(key=referral_id.encode(), value=encode(command))

            view.on_orgs_removed = orgs_removed
            await view.list_orgs()
            supervisor = net.supervisor
            supervisor.start("network-view", view.run)
            supervisor.start("organizations", view.watch_orgs)
            net.ingress = Ingress(
                bootstrap,
                topics,
                producer,
                view.state,
                group_id=f"{config.app_id}-ingress",
                refresh_seconds=config.pattern_refresh,
                limits=limits,
                ready=view.ready.wait,
                observe=lambda label: metrics.INGRESS.labels(label).inc(),
                auth=auth,
            )
            supervisor.start("ingress", net.ingress.run)
            if config.database_url:
                from connectors.ledger.sink import LedgerSink

                net.ledger = LedgerSink(
                    bootstrap,
                    topics.referral_events,
                    config.database_url,
                    group_id=f"{config.app_id}-ledger",
                    auth=auth,
                    screenings=topics.screenings,
                    dead_letters=topics.deadletter,
                )
                supervisor.start("ledger", net.ledger.run)
            # what the network knows: consumer lag, and the live status page
            from connectors.observability.lag import LagMonitor

            groups = [config.app_id, f"{config.app_id}-ingress", f"{config.app_id}-ledger"]
            supervisor.start("lag", LagMonitor(bootstrap, groups, auth=auth).run)
            if config.status_port is not None and config.database_url:
                from connectors.status.page import StatusPage

                page = StatusPage(
                    config.database_url,
                    port=config.status_port,
                    host=config.http_host,
                    refresh=config.status_refresh,
                    window=config.status_window,
                )
                supervisor.start("status", page.run)

        async def on_stop(self) -> None:
            writer = net.snapshot_writer or (not app.rebalancing and 0 in owned_partitions())
            if writer and net.producer is not None:
                try:  # the next start goes on from here
                    await asyncio.wait_for(view.write_snapshot(net.producer), STOP_SNAPSHOT_SECONDS)
                except Exception as exc:  # noqa: BLE001 - the last interval's snapshot stands
                    log.warning("no snapshot of the view at stop (%s)", type(exc).__name__)
            await net.supervisor.stop()
            if net.producer is not None:
                await net.producer.stop()
            await guard.stop()

    return net


def _outbox(raw: Any) -> list[dict[str, Any]]:
    """The undelivered outputs a stored row keeps, one entry per command."""
    box = raw.get("outbox") if isinstance(raw, dict) else None
    if isinstance(box, dict):  # one entry, as rows written before batches kept it
        return [box]
    return [e for e in box if isinstance(e, dict)] if isinstance(box, list) else []


class _Unreadable(Command):
    """Stands for a message on an internal topic that is no command at all."""

    command_id: str = "unreadable"


async def _reload_deadlines(net: Network, table: Any, owned: frozenset[int]) -> None:
    """Rebuild the deadline index from the recovered table (once per rebalance).

    Rebuilt whole: a partition this worker owned before may have changed while
    another worker held it. It yields to the event loop every 500 records, so
    heartbeats and the other tasks go on while a large table is indexed.
    """
    limits = net.config.limits
    net.deadlines.drop_partitions(net.deadlines.partitions())
    net.held.clear()
    net.holder_of.clear()
    pending: list[tuple[int, str, datetime]] = []
    for n, raw in enumerate(list(table.values())):
        if n % 500 == 499:
            await asyncio.sleep(0)
        try:
            partition, referral_id, due = next_due_of_stored(raw, limits)
        except (KeyError, TypeError, ValueError, AttributeError):
            log.error("deadline index: an unreadable referral record was skipped")
            continue
        if partition not in owned:
            continue
        if due is not None:
            pending.append((partition, referral_id, due))
        net.hold(referral_id, holder_of_stored(raw))
    net.deadlines.set_many(pending)
    log.info("deadline index: %d pending on partitions %s", len(net.deadlines), sorted(owned))
    net.owned = owned
