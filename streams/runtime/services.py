"""The worker's long-running tasks beside its agents, started and stopped with the app.

The network view and its watch for organizations, the ingress, the ledger
sink, the consumer-lag monitor and the status page each run under the
worker's :class:`streams.runtime.supervise.Supervisor`. They share one
idempotent producer; the view's dead letters and deprovisioned organizations
are answered here.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import mode
from aiokafka import AIOKafkaProducer

from connectors.kafka import clients
from connectors.observability.observer import WorkerObserver
from schemas.decode import DecodeFailure
from streams.decisions.commands import OrganizationRemoved, encode
from streams.runtime import letters
from streams.runtime.clock import Clock
from streams.runtime.gaps import OffsetGuard
from streams.runtime.ingress import Ingress
from streams.runtime.ingress_groups import IngressGroup, ingress_groups
from streams.runtime.ingress_thread import ThreadedIngress
from streams.runtime.network import Network
from streams.runtime.partitioner import PARTITIONER
from streams.runtime.quota import PartyQuota
from streams.runtime.subscription import Listed

log = logging.getLogger(__name__)

#: Seconds a stopping worker gives its last snapshot of the view.
STOP_SNAPSHOT_SECONDS = 10.0


@dataclass
class Services:
    """Starts and stops the supervised tasks of ``net`` (see :meth:`service`)."""

    net: Network
    referrals_topic: Any
    guard: OffsetGuard
    observer: WorkerObserver
    clock: Clock

    def service(self) -> type[mode.Service]:
        """A :class:`mode.Service` to register with ``app.service``."""
        services = self

        class WorkerServices(mode.Service):
            """The network view, the ingress and the ledger sink: supervised, started
            and stopped with the app."""

            async def on_start(self) -> None:
                await services.start()

            async def on_stop(self) -> None:
                await services.stop()

        return WorkerServices

    async def start(self) -> None:
        net = self.net
        producer = clients.producer(net.bootstrap, net.config.kafka_auth, partitioner=PARTITIONER)
        await producer.start()
        net.producer = producer
        net.view.on_dead_letter = self.dead_letter
        net.view.on_orgs_removed = self.orgs_removed
        await net.view.list_orgs()
        net.supervisor.start("network-view", net.view.run)
        net.supervisor.start("organizations", net.view.watch_orgs)
        self.start_ingress()
        self.start_ledger()
        self.start_monitoring()

    async def stop(self) -> None:
        net = self.net
        writer = net.snapshot_writer or (not net.app.rebalancing and 0 in net.owned_partitions())
        if writer and net.producer is not None:
            try:  # the next start goes on from here
                await asyncio.wait_for(net.view.write_snapshot(net.producer), STOP_SNAPSHOT_SECONDS)
            except Exception as exc:  # noqa: BLE001 - the last interval's snapshot stands
                log.warning("no snapshot of the view at stop (%s)", type(exc).__name__)
        await net.supervisor.stop()
        if net.producer is not None:
            await net.producer.stop()
        await self.guard.stop()

    async def dead_letter(
        self,
        failure: DecodeFailure,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
    ) -> None:
        """A directory record the view cannot read goes to the dead-letter topic."""
        source = letters.source_of(topic, partition, offset, key)
        out = letters.letter(
            self.net.topics, failure.kind, failure.reason, source, value, self.clock()
        )
        self.observer.dead_lettered(failure.kind.value)
        assert self.net.producer is not None
        await (await self.net.producer.send(out.topic, out.value, key=out.key.encode()))

    async def orgs_removed(self, removed: frozenset[str]) -> None:
        """Deprovisioned organizations: their referrals re-route or end."""
        for org_id in sorted(removed):
            held = sorted(self.net.held.get(org_id, ()))
            log.info("organization removed: %d referral(s) to re-route", len(held))
            for referral_id in held:
                command = OrganizationRemoved(
                    command_id=f"org-removed:{referral_id}:{org_id}",
                    referral_id=referral_id,
                    org_id=org_id,
                )
                await self.referrals_topic.send(key=referral_id.encode(), value=encode(command))

    def start_ingress(self) -> None:
        """The ingress's two loops, each a consumer group of its own
        (:mod:`streams.runtime.ingress_groups`): submissions on the worker's loop,
        organizations' updates on a thread of its own with its own producer
        (:mod:`streams.runtime.ingress_thread`). Each has its own quotas: a clinic's
        or a facility's on one, an organization's on the other."""
        net = self.net
        assert net.producer is not None
        submissions, updates = ingress_groups(net.config.app_id, net.topics)
        # each subscribes to the topics of the network view's listing of the
        # cluster that match its pattern, not to the pattern: no whole-cluster
        # metadata decoded every refresh (streams.runtime.subscription)
        listed = Listed(submissions.pattern, lambda: net.view.topic_names)
        net.ingress = self._ingress(submissions, net.producer, listed=listed)
        net.supervisor.start(submissions.name, net.ingress.run)
        net.ingress_updates = ThreadedIngress(
            updates.name,
            net.bootstrap,
            lambda producer: self._ingress(
                updates,
                producer,
                ready=False,
                listed=Listed(updates.pattern, lambda: net.view.topic_names),
            ),
            auth=net.config.kafka_auth,
            ready=net.view.ready.wait,
        )
        net.supervisor.start(updates.name, net.ingress_updates.run)

    def _ingress(
        self,
        group: IngressGroup,
        producer: AIOKafkaProducer,
        *,
        ready: bool = True,
        listed: Listed | None = None,
    ) -> Ingress:
        net, config = self.net, self.net.config
        return Ingress(
            net.bootstrap,
            net.topics,
            producer,
            net.view.state,
            group_id=group.group_id,
            refresh_seconds=config.pattern_refresh,
            limits=config.limits,
            quota=(
                PartyQuota(config.party_rate, config.party_burst)
                if config.party_rate is not None
                else None
            ),
            ready=net.view.ready.wait if ready else None,
            observe=self.observer.ingress_routed,
            auth=config.kafka_auth,
            clock=self.clock,
            linkage_secret=config.linkage_secret,
            pattern=group.pattern,
            name=group.name,
            previous_group=group.previous,
            listed=listed,
            fetch_wait_ms=group.fetch_wait_ms,
        )

    def start_ledger(self) -> None:
        net, config = self.net, self.net.config
        if not config.database_url:
            return
        from connectors.ledger.sink import LedgerSink

        net.ledger = LedgerSink(
            net.bootstrap,
            net.topics.referral_events,
            config.database_url,
            group_id=f"{config.app_id}-ledger",
            auth=config.kafka_auth,
            screenings=net.topics.screenings,
            dead_letters=net.topics.deadletter,
        )
        net.supervisor.start("ledger", net.ledger.run)

    def start_monitoring(self) -> None:
        """What the network knows: consumer lag, and the live status page."""
        net, config = self.net, self.net.config
        from connectors.observability.lag import LagMonitor

        ingress = {
            group.group_id: group.pattern for group in ingress_groups(config.app_id, net.topics)
        }
        groups = [config.app_id, *ingress, f"{config.app_id}-ledger"]
        monitor = LagMonitor(net.bootstrap, groups, auth=config.kafka_auth, reads=ingress)
        net.supervisor.start("lag", monitor.run)
        if config.status_port is not None and config.database_url:
            from connectors.status.page import StatusPage, org_names

            page = StatusPage(
                config.database_url,
                port=config.status_port,
                host=config.http_host,
                refresh=config.status_refresh,
                window=config.status_window,
                names=lambda: org_names(net.view.state.services.values()),
            )
            net.supervisor.start("status", page.run)


__all__ = ["STOP_SNAPSHOT_SECONDS", "Services"]
