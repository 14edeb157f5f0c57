"""Consumer lag of the network's consumer groups, per topic, for Prometheus.

Every ``interval`` seconds the monitor asks the broker for each group's
committed offsets and for the topics' end offsets, and sets
``refnet_consumer_lag{group, topic}``: the messages written but not yet
committed by the group, summed over the partitions it has committed on (a
group that never committed anything yet is left out). A group given a topic
pattern (``reads``) is measured on the topics matching it only: offsets it
committed on others are what an earlier version read (the organizations'
updates, read by ``-ingress`` before ``-ingress-updates`` existed), left until
the broker expires them, and not lag. The figure is network-wide (every worker
reports the same): aggregate with ``max``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka.structs import TopicPartition

from connectors.kafka import clients
from connectors.kafka.auth import PLAINTEXT, KafkaAuth
from connectors.observability import metrics

log = logging.getLogger(__name__)


def lag_by_topic(
    committed: Mapping[TopicPartition, int | None],
    end: Mapping[TopicPartition, int],
    start: Mapping[TopicPartition, int],
) -> dict[str, int]:
    """Sum over each topic's partitions of ``end - committed`` (``start`` if never)."""
    lag: dict[str, int] = {}
    for tp, last in end.items():
        done = committed.get(tp)
        behind = last - (done if done is not None and done >= 0 else start.get(tp, 0))
        lag[tp.topic] = lag.get(tp.topic, 0) + max(0, behind)
    return lag


class LagMonitor:
    """Samples the lag of ``groups`` every ``interval`` seconds (a supervised task)."""

    def __init__(
        self,
        bootstrap: str,
        groups: Sequence[str],
        *,
        interval: float = 15.0,
        auth: KafkaAuth = PLAINTEXT,
        reads: Mapping[str, str] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.groups = list(groups)
        #: group -> the pattern of the topics it reads (others it committed on are left out)
        self.reads = {group: re.compile(pattern) for group, pattern in (reads or {}).items()}
        self.interval = interval
        self.auth = auth
        self._seen: set[tuple[str, str]] = set()

    async def run(self) -> None:
        admin = clients.admin(self.bootstrap, self.auth)
        offsets = clients.consumer(self.bootstrap, auth=self.auth)
        await admin.start()
        try:
            await offsets.start()
            try:
                while True:
                    await self.sample(admin, offsets)
                    await asyncio.sleep(self.interval)
            finally:
                await offsets.stop()
        finally:
            await admin.close()

    async def sample(self, admin: Any, offsets: Any) -> dict[str, dict[str, int]]:
        """Read every group's lag once and set the gauge; return it (group -> topic -> lag)."""
        found: dict[str, dict[str, int]] = {}
        for group in self.groups:
            reads = self.reads.get(group)
            committed = {
                tp: meta.offset
                for tp, meta in (await admin.list_consumer_group_offsets(group)).items()
                if reads is None or reads.fullmatch(tp.topic)
            }
            if not committed:
                continue  # a group that never committed (not started yet): nothing to say
            partitions = list(committed)
            end = await offsets.end_offsets(partitions)
            start = await offsets.beginning_offsets(partitions)
            found[group] = lag_by_topic(committed, end, start)
        seen = set()
        for group, topics in found.items():
            for topic, lag in topics.items():
                metrics.CONSUMER_LAG.labels(group, topic).set(lag)
                seen.add((group, topic))
        for group, topic in self._seen - seen:  # a topic the group no longer reads
            metrics.CONSUMER_LAG.remove(group, topic)
        self._seen = seen
        return found
