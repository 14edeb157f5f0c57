"""What one worker runs and keeps: its app, view, deadlines and the referrals each
organization holds in the partitions the worker owns."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import faust
from aiokafka import AIOKafkaProducer

from schemas.topics import Topics
from streams.decisions.commands import key_partition
from streams.decisions.deadlines import DeadlineIndex
from streams.decisions.referrals import holder_of_stored, next_due_of_stored
from streams.runtime.config import NetworkConfig
from streams.runtime.ingress import Ingress
from streams.runtime.ingress_thread import ThreadedIngress
from streams.runtime.supervise import Supervisor
from streams.runtime.view import NetworkView

log = logging.getLogger(__name__)


def partition_of_key(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a message keyed ``key``."""
    return key_partition(key, partitions)


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
    ingress_updates: ThreadedIngress | None = None
    ledger: Any = None
    supervisor: Supervisor = field(default_factory=Supervisor)
    #: organization -> referrals it holds, in the partitions this worker owns
    held: dict[str, set[str]] = field(default_factory=dict)
    holder_of: dict[str, str] = field(default_factory=dict)
    #: this worker owned partition 0 at the last snapshot interval: it writes the
    #: view's snapshots, and one more as it stops
    snapshot_writer: bool = False

    def hold(self, referral_id: str, org_id: str | None) -> None:
        """``org_id`` holds ``referral_id`` now (None: nobody)."""
        before = self.holder_of.pop(referral_id, None)
        if before is not None:
            self.held.get(before, set()).discard(referral_id)
        if org_id is not None:
            self.holder_of[referral_id] = org_id
            self.held.setdefault(org_id, set()).add(referral_id)

    def owned_partitions(self) -> frozenset[int]:
        """The partitions of the referral commands this worker is active for."""
        return frozenset(
            tp.partition
            for tp in self.app.assignor.assigned_actives()
            if tp.topic == self.topics.network_referrals
        )

    async def shared_partition_count(self, *topics: str) -> int | None:
        """The partition count ``topics`` share, from the broker's metadata (None when
        they differ or it cannot be read: logged). Read once, as the worker starts."""
        try:
            faust_producer: Any = self.app.producer
            producer = faust_producer._ensure_producer()  # the started aiokafka producer
            counts = {len(await producer.partitions_for(name)) for name in topics}
        except Exception as exc:  # noqa: BLE001 - without it, every referral takes a hop
            log.warning("partition counts unreadable (%s)", type(exc).__name__)
            return None
        if len(counts) != 1:
            log.warning("%s have different partition counts %s", ", ".join(topics), counts)
            return None
        return counts.pop()

    async def reload_deadlines(self, table: Any, owned: frozenset[int]) -> None:
        """Rebuild the deadline index from the recovered table (once per rebalance).

        Rebuilt whole: a partition this worker owned before may have changed while
        another worker held it. It yields to the event loop every 500 records, so
        heartbeats and the other tasks go on while a large table is indexed.
        """
        limits = self.config.limits
        self.deadlines.drop_partitions(self.deadlines.partitions())
        self.held.clear()
        self.holder_of.clear()
        pending: list[tuple[int, str, datetime]] = []
        for n, raw in enumerate(list(table.values())):
            if n % 500 == 499:
                await asyncio.sleep(0)
            try:
                partition, referral_id, due = next_due_of_stored(raw, limits)
            except (KeyError, TypeError, ValueError, AttributeError):
                log.error("deadline index: an unreadable referral record was skipped")
                continue
            if partition < 0:  # stored before every referral carried its partition
                partition = partition_of_key(referral_id, self.config.partitions)
            if partition not in owned:
                continue
            if due is not None:
                pending.append((partition, referral_id, due))
            self.hold(referral_id, holder_of_stored(raw))
        self.deadlines.set_many(pending)
        log.info("deadline index: %d pending on partitions %s", len(self.deadlines), sorted(owned))
        self.owned = owned


__all__ = ["Network", "partition_of_key"]
