"""The owner agents: thin shells around the pure decisions in patients/referrals.

* ``patients`` on ``{prefix}.network.patients.v1`` (key ``clinic:patient``),
  table ``patients``: scores screenings, opens at most one referral per need;
* ``referrals`` on ``{prefix}.network.referrals.v1`` (key referral_id), table
  ``referrals``: the lifecycle of each referral;
* ``linkage`` on ``{prefix}.network.linkage.v1`` (key: a linkage key), table
  ``linkage``: the patients each key names, and encounters looking for them.

Each runs with concurrency 1 (faust-streaming issue 606 commits past
unprocessed messages with more) and applies its commands as batches
(:mod:`streams.runtime.outbox`). A decision that raises is dead-lettered
(``internal``) and the referral ends ``failed`` / ``network-error``; nothing is
acknowledged away unseen.

A screening's referral is decided in the patients agent's own batch when its id
partitions where the patient does (the patient owner picks such ids,
:func:`streams.decisions.commands.placed_referral_id`): one hop instead of two.
Both agents then change ``referrals`` rows, so each of their batches holds one
lock from its first staged row to its commit (:meth:`Agents.apply_events`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError

from connectors.observability.observer import WorkerObserver
from connectors.retry import Backoff
from streams.decisions.commands import (
    LINKAGE_COMMAND,
    PATIENT_COMMAND,
    REFERRAL_COMMAND,
    Command,
    OpenReferral,
    Placement,
    ReferralCommand,
    key_partition,
)
from streams.decisions.encounters import LinkageRecord, decide_linkage
from streams.decisions.outputs import Outgoing
from streams.decisions.patients import PatientRecord
from streams.decisions.patients import decide as decide_patient
from streams.decisions.referrals import Context, ReferralDecision, ReferralRecord, holder
from streams.decisions.referrals import decide as decide_referral
from streams.decisions.referrals import fail as fail_referral
from streams.runtime import letters
from streams.runtime.batches import batches, unbroken
from streams.runtime.clock import Clock
from streams.runtime.delivery import Delivery
from streams.runtime.gaps import POKE, OffsetGuard
from streams.runtime.hooks import Hooks
from streams.runtime.network import Network
from streams.runtime.outbox import Batch, Changelog, Rows, replayed
from streams.runtime.supervise import fatal

log = logging.getLogger(__name__)

#: Read-backs of skipped offsets tried before the worker stops, unacknowledged.
GUARD_ATTEMPTS = 6
#: Waits between them: 0.5 s, doubling (about 15 s in all).
GUARD_BACKOFF = Backoff(first=0.5, cap=30.0)

#: Handles one event of a batch.
Handler = Callable[[Any, Batch], None]
#: The agents whose batches change ``referrals`` rows: one at a time.
SHARING_REFERRALS = frozenset({"patients", "referrals"})


class HoleNotFilled(RuntimeError):
    """The records Faust skipped could not be read back: the batch must not go on."""


class _Unreadable(Command):
    """Stands for a message on an internal topic that is no command at all."""

    command_id: str = "unreadable"


class Agents:
    """What the two owner agents do with each batch of their commands."""

    def __init__(
        self,
        net: Network,
        *,
        changelog: Changelog,
        delivery: Delivery,
        guard: OffsetGuard,
        observer: WorkerObserver,
        clock: Clock,
        hooks: Hooks,
        acknowledge: Callable[[Any], None],
        guard_attempts: int = GUARD_ATTEMPTS,
        guard_backoff: Backoff = GUARD_BACKOFF,
        on_fatal: Callable[[str], None] = fatal,
    ) -> None:
        self.net = net
        self.topics = net.topics
        self.changelog = changelog
        self.delivery = delivery
        self.guard = guard
        self.observer = observer
        self.clock = clock
        self.hooks = hooks
        self._acknowledge = acknowledge
        self.guard_attempts = guard_attempts
        self.guard_backoff = guard_backoff
        self._on_fatal = on_fatal
        #: the partition count of the patient and referral commands' topics when
        #: they have the same (read at start): the patients agent decides the
        #: referrals it opens in its own partition; None: every referral takes a hop
        self.partitions: int | None = None
        self.referral_rows: Rows | None = None
        #: held by a batch of either agent that changes ``referrals`` rows, from
        #: its first staged row to its commit: no decision reads a row another
        #: batch staged and has not made durable, and no commit empties an outbox
        #: whose outputs another batch has still to send
        self.referrals_lock = asyncio.Lock()

    def register(
        self,
        patients_topic: Any,
        referrals_topic: Any,
        patient_rows: Rows,
        referral_rows: Rows,
        linkage: tuple[Any, Rows] | None = None,
    ) -> None:
        """Add the agents to the app: each applies its stream in batches, and the
        referrals agent waits for the network view to be ready. ``linkage``: the
        linkage topic and its table's rows."""
        app, view = self.net.app, self.net.view
        self.referral_rows = referral_rows
        if linkage is not None:
            linkage_topic, linkage_rows = linkage

            @app.agent(linkage_topic, concurrency=1)
            async def linkage_agent(stream: Any) -> None:
                async for events in batches(stream):
                    work = self.apply_events(events, linkage_rows, "linkage", self.handle_linkage)
                    await unbroken(work)

        @app.agent(patients_topic, concurrency=1)
        async def patients(stream: Any) -> None:
            names = (self.topics.network_patients, self.topics.network_referrals)
            self.partitions = await self.net.shared_partition_count(*names)
            if self.partitions is not None:
                await view.ready.wait()  # it decides referrals too
            async for events in batches(stream):
                work = self.apply_events(events, patient_rows, "patients", self.handle_patient)
                await unbroken(work)

        @app.agent(referrals_topic, concurrency=1)
        async def referrals(stream: Any) -> None:
            await view.ready.wait()
            async for events in batches(stream):
                work = self.apply_events(events, referral_rows, "referrals", self.handle_referral)
                await unbroken(work)

    async def apply_events(
        self, events: Sequence[Any], rows: Rows, agent: str, handle: Handler
    ) -> None:
        """Apply ``events`` as one batch, each after the records Faust skipped before
        it (see streams.runtime.gaps). Read-back records are acknowledged to Faust once the
        batch is committed, so that its commits go on past them; ``events``
        themselves are acknowledged by :func:`streams.runtime.batches.batches`.
        A batch of an agent that changes ``referrals`` rows holds
        :attr:`referrals_lock` throughout."""
        if agent in SHARING_REFERRALS:
            async with self.referrals_lock:
                await self._apply_events(events, rows, agent, handle)
        else:
            await self._apply_events(events, rows, agent, handle)

    async def _apply_events(
        self, events: Sequence[Any], rows: Rows, agent: str, handle: Handler
    ) -> None:
        batch = Batch(
            rows,
            agent,
            changelog=self.changelog,
            delivery=self.delivery,
            after_state=self.hooks.after_state,
        )
        read_back: list[Any] = []
        for event in events:
            missed = await self.skipped(event, agent)
            for record in missed:
                handle(record, batch)
                self.guard.applied(record)
                read_back.append(record)
            handle(event, batch)
            self.guard.applied(event)
        await batch.commit()
        for record in read_back:
            self._acknowledge(record)

    async def skipped(self, event: Any, agent: str) -> list[Any]:
        """The records Faust skipped before ``event``. A read-back that fails is tried
        again with backoff; one that keeps failing stops the worker with the batch
        unapplied and unacknowledged, so that no commit passes the hole (the
        records run again from the committed offset, here or elsewhere)."""
        for attempt in range(1, self.guard_attempts + 1):
            try:
                missed: list[Any] = await self.guard.missed(event, agent)
            except Exception as exc:  # noqa: BLE001 - tried again, then the worker stops
                self.observer.task_restarted("offset-guard")
                log.error(
                    "%s: could not read back skipped offsets (%s), attempt %d",
                    agent,
                    type(exc).__name__,
                    attempt,
                )
                if attempt < self.guard_attempts:
                    await asyncio.sleep(self.guard_backoff.delay(attempt))
            else:
                return missed
        reason = f"{agent}: the offset guard cannot read back skipped offsets"
        self._on_fatal(reason)
        raise HoleNotFilled(reason)

    def arrived(self, event: Any, adapter: TypeAdapter[Any], batch: Batch) -> tuple[str, Any, Any]:
        """``(key, command, stored row)`` of an event still to decide, or a None command
        when it is done already: unreadable, repeated in the batch, or a replay whose
        recorded outputs are sent again as they were."""
        key = event.key.decode() if event.key else ""
        if event.value == POKE:
            return key, None, None  # it only woke the agent (streams.runtime.gaps)
        command = self.read_command(event, adapter, batch, key)
        if command is None or (key, command.command_id) in batch.seen:
            return key, None, None
        raw = batch.table.get(key)
        again = replayed(raw, command)
        if again is not None:
            batch.send(command, again, key=key)
            return key, None, None
        return key, command, raw

    def read_command(self, event: Any, adapter: TypeAdapter[Any], batch: Batch, key: str) -> Any:
        """The command in ``event``, or None after dead-lettering what is not one."""
        try:
            return adapter.validate_json(event.value)
        except ValidationError as exc:
            reason = f"internal command: {exc.error_count()} errors"
            letter = letters.invalid_command(self.topics, event.message, reason, self.clock())
            batch.send(_Unreadable(), [letter], key=key)
            return None

    def failed(self, agent: str, command: Command, exc: Exception) -> None:
        error = type(exc).__name__
        self.observer.internal_error(agent, error)
        log.error(
            "%s: %s on a %s command; dead-lettered as internal",
            agent,
            error,
            getattr(command, "kind", "?"),
        )

    def handle_patient(self, event: Any, batch: Batch) -> None:
        key, command, raw = self.arrived(event, PATIENT_COMMAND, batch)
        if command is None:
            return
        partition = event.message.partition
        count = self.partitions
        placement = None if count is None else Placement(partitions=count, partition=partition)
        try:
            record = PatientRecord.model_validate(raw) if raw is not None else None
            decision = decide_patient(
                record, command, topics=self.topics, key=key, now=self.clock(), placement=placement
            )
        except Exception as exc:  # noqa: BLE001 - the error boundary: dead-letter, go on
            self.failed("patients", command, exc)
            why = type(exc).__name__
            letter = self.delivery.internal_letter(command, "patients", why)
            batch.send(command, [letter], key=key)
            return
        if decision.delete and raw is None:
            batch.send(command, decision.outputs, key=key)  # nothing was stored
            self.observer.command_applied("patients", command.kind)
            return
        sending, inline = self._inlined(decision.outputs, partition)
        batch.apply(
            key,
            partition,
            decision.record,
            decision.outputs,
            command,
            delete=decision.delete,
            sending=sending if inline else None,
        )
        self.observer.command_applied("patients", command.kind)
        if inline and self.referral_rows is not None:
            referrals = batch.joined[0] if batch.joined else batch.join(self.referral_rows)
            for out, opening in inline:
                self._open_here(out.key, opening, partition, referrals)

    def _inlined(
        self, outputs: list[Outgoing], partition: int
    ) -> tuple[list[Outgoing], list[tuple[Outgoing, OpenReferral]]]:
        """``outputs`` to send, and the referral openings among them this agent
        decides itself: those whose referral id partitions to ``partition``."""
        count, topic = self.partitions, self.topics.network_referrals
        if count is None or self.referral_rows is None:
            return outputs, []
        sending: list[Outgoing] = []
        inline: list[tuple[Outgoing, OpenReferral]] = []
        for out in outputs:
            here = out.topic == topic and out.label == "command.open"
            opening = _opening(out) if here and key_partition(out.key, count) == partition else None
            if opening is None:
                sending.append(out)
            else:
                inline.append((out, opening))
        return sending, inline

    def _open_here(self, key: str, opening: OpenReferral, partition: int, batch: Batch) -> None:
        """Decide ``opening`` as the referrals agent would on receiving it, in
        ``batch`` (the patients agent's batch of the ``referrals`` table)."""
        if (key, opening.command_id) in batch.seen:
            return
        raw = batch.table.get(key)
        again = replayed(raw, opening)
        if again is not None:  # the referral's row made it, the patient's did not
            batch.send(opening, again, key=key)
            return
        self._referral(key, opening, raw, partition, batch)

    def handle_linkage(self, event: Any, batch: Batch) -> None:
        """A link, an unlink, or an encounter looking for its patients (see
        streams.decisions.encounters). A link over a key's cap is refused, logged
        and counted (``refnet_commands_total{agent="linkage",kind="link-refused"}``)."""
        key, command, raw = self.arrived(event, LINKAGE_COMMAND, batch)
        if command is None:
            return
        try:
            record = LinkageRecord.model_validate(raw) if raw is not None else None
            decision = decide_linkage(record, command, key=key, topics=self.topics)
        except Exception as exc:  # noqa: BLE001 - the error boundary: dead-letter, go on
            self.failed("linkage", command, exc)
            letter = self.delivery.internal_letter(command, "linkage", type(exc).__name__)
            batch.send(command, [letter], key=key)
            return
        if decision.refused:
            log.warning("linkage: a key names too many patients; a link was refused")
            self.observer.command_applied("linkage", "link-refused")
        if decision.record is None and not decision.delete:
            batch.send(command, decision.outputs, key=key)
        else:
            batch.apply(
                key,
                event.message.partition,
                decision.record,
                decision.outputs,
                command,
                delete=decision.delete,
            )
        self.observer.command_applied("linkage", command.kind)

    def handle_referral(self, event: Any, batch: Batch) -> None:
        key, command, raw = self.arrived(event, REFERRAL_COMMAND, batch)
        if command is None:
            return
        self._referral(key, command, raw, event.message.partition, batch)

    def _referral(
        self, key: str, command: ReferralCommand, raw: Any, partition: int, batch: Batch
    ) -> None:
        """Decide ``command`` on referral ``key`` (its row ``raw``, in ``partition``)."""
        state = self.net.view.state
        limits = self.net.config.limits
        ctx = Context(
            topics=self.topics,
            now=self.clock(),
            directory=state,
            org_stats=state.org_stats(),
            load=state.load(),
            default_sla=limits.default_response_sla,
            limits=limits,
        )
        found = self._decide_referral(key, raw, command, ctx, partition, batch)
        if found is None:
            return
        record, decision = found
        if decision.record is not None and decision.record.partition != partition:
            # the row lives in the partition of its key, whoever built the record
            # (a referral whose opening failed was built without one): its timer
            # and the rebuild after a rebalance find it there
            decision.record.partition = partition
        if decision.dead_letter:
            self.observer.dead_lettered(decision.dead_letter)
        batch.apply(
            key, partition, decision.record, decision.outputs, command, delete=decision.delete
        )
        current = None if decision.delete else (decision.record or record)
        self._track(key, current, ctx)
        self.observer.command_applied("referrals", command.kind)

    def _decide_referral(
        self,
        key: str,
        raw: Any,
        command: ReferralCommand,
        ctx: Context,
        partition: int,
        batch: Batch,
    ) -> tuple[ReferralRecord | None, ReferralDecision] | None:
        """The stored record and the decision on ``command``: the referral ends
        ``failed`` if deciding raises, and None when even that fails (dead-lettered)."""
        record: ReferralRecord | None = None
        try:
            record = ReferralRecord.model_validate(raw) if raw is not None else None
            return record, decide_referral(record, command, ctx, partition=partition)
        except Exception as exc:  # noqa: BLE001 - the error boundary: dead-letter, end it
            self.failed("referrals", command, exc)
            try:
                return record, fail_referral(
                    record, command, ctx, type(exc).__name__, partition=partition
                )
            except Exception as again_exc:  # noqa: BLE001 - even the fallback failed
                self.failed("referrals", command, again_exc)
                why = type(exc).__name__
                letter = self.delivery.internal_letter(command, "referrals", why)
                batch.send(command, [letter], key=key)
                return None

    def _track(self, key: str, current: ReferralRecord | None, ctx: Context) -> None:
        """Who holds the referral now, its reservation and its next deadline."""
        net = self.net
        net.hold(key, holder(current) if current is not None else None)
        if current is None:
            net.deadlines.discard(key)
            return
        offer = current.offer
        if offer is not None and offer.offered_at == ctx.now:
            net.view.state.reserve(current.referral_id, offer.attempt, offer.service_id, ctx.now)
        due = current.next_due(ctx.limits)
        if due is None:
            net.deadlines.discard(current.referral_id)
        else:
            net.deadlines.set(current.partition, current.referral_id, due)


def _opening(out: Outgoing) -> OpenReferral | None:
    """The referral opening ``out`` carries (None: not one, which is not expected; it
    goes through the topic then)."""
    try:
        command = REFERRAL_COMMAND.validate_json(out.value)
    except ValidationError:
        return None
    return command if isinstance(command, OpenReferral) else None


__all__ = ["SHARING_REFERRALS", "Agents", "Handler", "HoleNotFilled"]
