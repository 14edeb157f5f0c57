"""What a worker does on a schedule: due deadlines, the view's snapshot, quiet partitions.

A timer on every worker pops due deadlines of the partitions that worker owns
and sends the command :func:`streams.decisions.timers.timer_command` chooses
(offers to time out, idle referrals to expire, closed ones to purge) to the
referral's owner. The owner of the referral commands' partition 0 snapshots the
network view; and a quiet partition whose end lies beyond what its agent
applied is poked (:mod:`streams.runtime.gaps`). A failed round is logged and
counted; the next one runs. A due deadline stays in the index until its referral's
owner has moved the referral on (:meth:`Timers.tick`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from connectors.observability.observer import WorkerObserver
from connectors.retry import Backoff
from streams.decisions.commands import Command, OfferTimeout, encode
from streams.decisions.deadlines import DueDeadline
from streams.decisions.referrals import ReferralRecord
from streams.decisions.timers import NotYet, timer_command
from streams.runtime.clock import Clock
from streams.runtime.gaps import IDLE_SECONDS, POKE, OffsetGuard
from streams.runtime.network import Network

log = logging.getLogger(__name__)

#: A command the broker confirmed is looked at again this long after (network time),
#: in case it never reached its owner: the owner's decision sets the next deadline first.
RESEND_AFTER: Final = timedelta(minutes=10)
#: Seconds the broker may take to confirm a round's commands before they are put back.
CONFIRM_TIMEOUT: Final = 30.0
#: Waits before a command that could not be sent is tried again: 0.5 s, doubling.
RETRY_BACKOFF: Final = Backoff(first=0.5, cap=60.0)


@dataclass
class Timers:
    """The worker's scheduled rounds; :meth:`register` adds them to the app."""

    net: Network
    #: the referrals table and the referral commands' topic
    table: Any
    topic: Any
    guard: OffsetGuard
    observer: WorkerObserver
    clock: Clock
    #: referral -> failed sends in a row of its due command
    _failures: dict[str, int] = field(default_factory=dict)
    #: referral -> id of the last command of it the broker confirmed
    _confirmed: dict[str, str] = field(default_factory=dict)

    def register(self) -> None:
        app, config = self.net.app, self.net.config
        app.timer(interval=config.timer_interval)(self.deadlines)
        app.timer(interval=config.view_snapshot_interval)(self.view_snapshot)
        app.timer(interval=IDLE_SECONDS)(self.poke_idle)

    async def deadlines(self) -> None:
        if self.net.app.rebalancing:
            return
        try:
            await self.tick()
        except Exception as exc:  # noqa: BLE001 - a failed tick is counted; the next one runs
            self.observer.task_restarted("timer")
            log.error("deadline timer failed (%s); it runs again next tick", type(exc).__name__)

    async def view_snapshot(self) -> None:
        """The owner of the referral commands' partition 0 snapshots the view."""
        net = self.net
        if net.app.rebalancing or net.producer is None:
            return
        net.snapshot_writer = 0 in net.owned_partitions()
        view = net.view
        if not net.snapshot_writer or view.topics.network_view not in view.topic_names:
            return
        try:
            await view.write_snapshot(net.producer)
        except Exception as exc:  # noqa: BLE001 - counted; the next interval tries again
            self.observer.task_restarted("view-snapshot")
            log.error("writing the view's snapshot failed (%s)", type(exc).__name__)

    async def poke_idle(self) -> None:
        """Wake the agent of a quiet partition whose end lies beyond what it applied."""
        if self.net.app.rebalancing:
            return
        try:
            await self.poke_quiet_partitions()
        except Exception as exc:  # noqa: BLE001 - counted; the next look goes on
            self.observer.task_restarted("offset-guard")
            log.error("looking for quiet partitions failed (%s)", type(exc).__name__)

    async def poke_quiet_partitions(self) -> None:
        app, topics = self.net.app, self.net.topics
        agents = {
            topics.network_patients: "patients",
            topics.network_referrals: "referrals",
            topics.network_linkage: "linkage",
        }
        owned = [
            (tp.topic, tp.partition) for tp in app.assignor.assigned_actives() if tp.topic in agents
        ]
        for topic, partition in await self.guard.idle(owned):
            log.warning("%s[%d]: quiet with records not applied; poked", topic, partition)
            self.observer.partition_poked(agents[topic])
            await (await app.producer.send(topic, None, POKE, partition, None, None))

    async def tick(self) -> None:
        """Send the command of every due deadline of the owned partitions.

        A deadline stays in the index until the owner has applied a decision that
        moves the referral on (its agent then sets the next one, or discards it):
        a confirmed command is looked at again :data:`RESEND_AFTER` later, in case
        it never reached the owner, and a record that does not read, a send that
        raises or one the broker does not confirm is put back with backoff. The
        commands' ids name the referral and its attempt or step, so a command sent
        again is applied once.
        """
        net = self.net
        owned = net.owned_partitions()
        now = self.clock()
        sent: list[tuple[DueDeadline, Command, asyncio.Future[Any]]] = []
        for n, due in enumerate(net.deadlines.pop_due(now)):
            if n % 500 == 499:
                await asyncio.sleep(0)  # never hold the event loop for long
            if due.partition not in owned:
                continue  # revoked since the last rebuild: its new owner has it
            try:
                command = self._command(due, now)
                if command is None:
                    continue
                ack = await self.topic.send(key=due.referral_id.encode(), value=encode(command))
            except Exception as exc:  # noqa: BLE001 - put back; the other deadlines go on
                self._retry(due, now, exc)
                continue
            sent.append((due, command, asyncio.ensure_future(ack)))
        if not sent:
            return
        done, _ = await asyncio.wait([ack for *_, ack in sent], timeout=CONFIRM_TIMEOUT)
        for due, command, ack in sent:
            if ack not in done or ack.cancelled() or ack.exception() is not None:
                failure = ack.exception() if ack in done and not ack.cancelled() else None
                self._retry(due, now, failure or TimeoutError("not confirmed"))
                continue
            self._failures.pop(due.referral_id, None)
            first = self._confirmed.get(due.referral_id) != command.command_id
            self._confirmed[due.referral_id] = command.command_id
            if first and isinstance(command, OfferTimeout):
                self.observer.offer_timed_out()  # once, however often it is sent
            if net.deadlines.due_of(due.referral_id) is None:
                net.deadlines.set(due.partition, due.referral_id, now + RESEND_AFTER)

    def _command(self, due: DueDeadline, now: datetime) -> Command | None:
        """The command ``due`` calls for now, or None (put back when not yet due)."""
        raw = self.table.get(due.referral_id)
        command = (
            None
            if raw is None  # purged: nothing is due any more
            else timer_command(ReferralRecord.model_validate(raw), self.net.config.limits, now)
        )
        if isinstance(command, NotYet):
            self.net.deadlines.set(due.partition, due.referral_id, command.due)
        if command is None or isinstance(command, NotYet):
            # the owner moved the referral on: what was sent for it is done with
            self._failures.pop(due.referral_id, None)
            self._confirmed.pop(due.referral_id, None)
            return None
        return command

    def _retry(self, due: DueDeadline, now: datetime, exc: BaseException) -> None:
        """Put ``due`` back, after a wait that doubles with each failure in a row."""
        failures = self._failures.get(due.referral_id, 0) + 1
        self._failures[due.referral_id] = failures
        self.observer.task_restarted("timer")
        log.error(
            "deadline timer: a command could not be sent (%s); tried again later",
            type(exc).__name__,
        )
        if self.net.deadlines.due_of(due.referral_id) is None:
            wait = timedelta(seconds=RETRY_BACKOFF.delay(failures))
            self.net.deadlines.set(due.partition, due.referral_id, now + wait)


__all__ = ["Timers"]
