"""What a worker does on a schedule: due deadlines, the view's snapshot, quiet partitions.

A timer on every worker pops due deadlines of the partitions that worker owns
and sends the command :func:`streams.decisions.timers.timer_command` chooses
(offers to time out, idle referrals to expire, closed ones to purge) to the
referral's owner. The owner of the referral commands' partition 0 snapshots the
network view; and a quiet partition whose end lies beyond what its agent
applied is poked (:mod:`streams.runtime.gaps`). A failed round is logged and
counted; the next one runs.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from connectors.observability.observer import WorkerObserver
from streams.decisions.commands import OfferTimeout, encode
from streams.decisions.referrals import ReferralRecord
from streams.decisions.timers import NotYet, timer_command
from streams.runtime.clock import Clock
from streams.runtime.gaps import IDLE_SECONDS, POKE, OffsetGuard
from streams.runtime.network import Network

log = logging.getLogger(__name__)


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
        agents = {topics.network_patients: "patients", topics.network_referrals: "referrals"}
        owned = [
            (tp.topic, tp.partition) for tp in app.assignor.assigned_actives() if tp.topic in agents
        ]
        for topic, partition in await self.guard.idle(owned):
            log.warning("%s[%d]: quiet with records not applied; poked", topic, partition)
            self.observer.partition_poked(agents[topic])
            await (await app.producer.send(topic, None, POKE, partition, None, None))

    async def tick(self) -> None:
        """Send the command of every due deadline of the owned partitions."""
        net = self.net
        owned = net.owned_partitions()
        now = self.clock()
        limits = net.config.limits
        for n, due in enumerate(net.deadlines.pop_due(now)):
            if n % 500 == 499:
                await asyncio.sleep(0)  # never hold the event loop for long
            if due.partition not in owned:
                continue  # revoked since the last rebuild: its new owner has it
            raw = self.table.get(due.referral_id)
            if raw is None:
                continue
            record = ReferralRecord.model_validate(raw)
            command = timer_command(record, limits, now)
            if command is None:
                continue
            if isinstance(command, NotYet):
                net.deadlines.set(record.partition, record.referral_id, command.due)
                continue
            if isinstance(command, OfferTimeout):
                self.observer.offer_timed_out()
            await self.topic.send(key=record.referral_id.encode(), value=encode(command))


__all__ = ["Timers"]
