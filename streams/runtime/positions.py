"""Where the ingress starts reading each newly assigned partition, in one request.

aiokafka (0.14) looks up a newly assigned partition's committed offset one
partition at a time: each lookup is a request of its own, and each scans every
assigned partition for who else is waiting. With a partition per party topic
that is quadratic in the number of parties: at 5,000 organizations (10,000
topics) the ingress read nothing for 17 to 25 s after every rebalance, and every
newly provisioned party causes one (benchmarks/region_scale.py).

:class:`SeekToCommitted`, the ingress's rebalance listener, asks for every
assigned partition's committed offset in one request and seeks to it; a
partition without one is reset to its beginning (the ingress's
``auto_offset_reset``), which aiokafka does with one offsets request per broker.
aiokafka then finds every position already valid. On a failed lookup it does
nothing: aiokafka's own per-partition path still applies.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)


async def seek_to_committed(
    consumer: AIOKafkaConsumer, partitions: Collection[TopicPartition]
) -> int:
    """Seek each of ``partitions`` to its committed offset (one request), the rest to
    their beginning; the number of partitions that had a committed offset."""
    if not partitions:
        return 0
    wanted = list(partitions)
    try:
        offsets = await consumer._coordinator.fetch_committed_offsets(wanted)
    except KafkaError as exc:
        log.warning(
            "ingress: committed offsets of %d partitions not fetched at once (%s)",
            len(wanted),
            type(exc).__name__,
        )
        return 0
    fresh = []
    for tp in wanted:
        meta = offsets.get(tp)
        if meta is not None and meta.offset >= 0:
            consumer.seek(tp, meta.offset)
        else:
            fresh.append(tp)
    if fresh:
        await consumer.seek_to_beginning(*fresh)
    return len(wanted) - len(fresh)


class SeekToCommitted(ConsumerRebalanceListener):  # type: ignore[misc]
    """The ingress's rebalance listener: see the module's docstring."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        found = await seek_to_committed(self.consumer, assigned)
        log.info(
            "ingress: %d partitions assigned, %d resume from a committed offset",
            len(assigned),
            found,
        )


__all__ = ["SeekToCommitted", "seek_to_committed"]
