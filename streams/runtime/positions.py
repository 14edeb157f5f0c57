"""Where the ingress starts reading each newly assigned partition, in one request.

aiokafka (0.14) looks up a newly assigned partition's committed offset one
partition at a time: each lookup is a request of its own, and each scans every
assigned partition for who else is waiting. With a partition per party topic
that is quadratic in the number of parties: at 5,000 organizations (10,000
topics) the ingress read nothing for 17 to 25 s after every rebalance, and every
newly provisioned party causes one (benchmarks/region_scale.py).

:class:`SeekToCommitted`, the ingress's rebalance listener, asks for every
assigned partition's committed offset in one request and seeks to it; a
partition without one is sought to its beginning (what the ingress's
``auto_offset_reset`` would do), looked up with one offsets request per broker
and set by a plain seek, whatever reset aiokafka's fetcher has in flight.
aiokafka then finds every position already valid. On a failed lookup it does
nothing: aiokafka's own per-partition path still applies.

A group that took over another group's partitions (the organizations' updates,
read by ``{app_id}-ingress`` until a deployment gave them a group of their own)
names that group as ``previous``: a partition without a committed offset of its
own starts where ``previous`` committed for it, if it did, asked for every such
partition in one request (:func:`committed_by`), so that the upgrade neither
reads an organization's updates again nor skips any; those offsets are committed
in the group's own name at once, so the takeover happens once. A failed lookup of
``previous`` is logged and those partitions start from their beginning, as a new
party's do (the owners ignore a command they already had).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError, NoError, UnknownTopicOrPartitionError, for_code
from aiokafka.protocol.commit import OffsetFetchRequest

log = logging.getLogger(__name__)


async def committed_by(
    consumer: AIOKafkaConsumer, group: str, partitions: Collection[TopicPartition]
) -> dict[TopicPartition, int]:
    """The offsets ``group`` (any group, not the consumer's own) committed for
    ``partitions``, in one request to its coordinator; a partition it committed
    nothing for is left out. Raises :class:`KafkaError` when the group's
    coordinator or its offsets cannot be had."""
    by_topic: dict[str, list[int]] = {}
    for tp in partitions:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    client = consumer._client
    node = await client.coordinator_lookup(0, group)  # 0: a consumer group's coordinator
    response = await client.send(node, OffsetFetchRequest(group, list(by_topic.items())))
    top_error = getattr(response, "error_code", 0)
    if top_error:
        raise for_code(top_error)()
    found: dict[TopicPartition, int] = {}
    for topic, answers in response.topics:
        for partition, offset, _metadata, error_code in answers:
            error = for_code(error_code)
            if error is UnknownTopicOrPartitionError:  # deleted since: nothing to resume
                continue
            if error is not NoError:
                raise error()
            if offset >= 0:
                found[TopicPartition(topic, partition)] = offset
    return found


async def _taken_over(
    consumer: AIOKafkaConsumer, previous: str, partitions: list[TopicPartition]
) -> list[TopicPartition]:
    """Seek each of ``partitions`` that ``previous`` committed an offset for to it;
    the partitions left without a position."""
    offsets: dict[TopicPartition, int] | None = None
    for attempt in range(1, LOOKUPS + 1):
        try:
            offsets = await committed_by(consumer, previous, partitions)
            break
        except KafkaError as exc:
            if exc.retriable and attempt < LOOKUPS:  # e.g. its coordinator still loading
                await asyncio.sleep(LOOKUP_BACKOFF)
                continue
            log.error(
                "ingress: offsets of %d partitions in group %s not fetched (%s);"
                " they are read from their beginning",
                len(partitions),
                previous,
                type(exc).__name__,
            )
    if offsets is None:
        return partitions
    for tp, offset in offsets.items():
        consumer.seek(tp, offset)
    if offsets:
        log.info("ingress: %d partitions resume from group %s's offsets", len(offsets), previous)
        await _adopt(consumer, offsets)
    return [tp for tp in partitions if tp not in offsets]


async def _adopt(consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
    """Commit the offsets taken over in the consumer's own group at once, so that the
    takeover happens once: a partition nobody writes to would otherwise depend on the
    old group's offsets for ever (the broker expires those of a topic a group no
    longer reads). A failure is logged; the next assignment looks them up again."""
    try:
        await consumer.commit(offsets)
    except KafkaError as exc:
        log.warning(
            "ingress: offsets taken over for %d partitions not committed (%s)",
            len(offsets),
            type(exc).__name__,
        )


#: Tries of a retriable lookup of another group's offsets, and seconds between two
LOOKUPS = 3
LOOKUP_BACKOFF = 0.5


async def seek_to_committed(
    consumer: AIOKafkaConsumer,
    partitions: Collection[TopicPartition],
    previous: str | None = None,
) -> int:
    """Seek each of ``partitions`` to its committed offset (one request), those
    without one to ``previous``'s committed offset (one more request, when there
    is a ``previous`` group), the rest to their beginning; the number of
    partitions that had a committed offset of the consumer's own group."""
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
    own = len(wanted) - len(fresh)
    if fresh and previous is not None:
        fresh = await _taken_over(consumer, previous, fresh)
    if fresh:
        await _seek_to_beginning(consumer, fresh)
    return own


async def _seek_to_beginning(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
    """Seek ``partitions`` to their first offsets, looked up here and set by a plain seek.

    Not ``seek_to_beginning``: that asks aiokafka's fetcher for a reset, and the
    fetcher may already have a reset of its own in flight for a newly assigned
    partition (by the consumer's ``auto_offset_reset``, started while this
    listener ran); its answer would satisfy ours. A seek cancels any pending
    reset. If the lookup fails, ``seek_to_beginning`` is what is left."""
    try:
        first = await consumer.beginning_offsets(partitions)
    except KafkaError as exc:
        log.warning(
            "ingress: first offsets of %d partitions not fetched (%s)",
            len(partitions),
            type(exc).__name__,
        )
        await consumer.seek_to_beginning(*partitions)
        return
    for tp in partitions:
        if tp in first:
            consumer.seek(tp, first[tp])
    if missing := [tp for tp in partitions if tp not in first]:
        await consumer.seek_to_beginning(*missing)


class SeekToCommitted(ConsumerRebalanceListener):  # type: ignore[misc]
    """The ingress's rebalance listener: see the module's docstring."""

    def __init__(self, consumer: AIOKafkaConsumer, previous: str | None = None) -> None:
        self.consumer = consumer
        #: the group whose offsets a partition without one of its own starts from
        self.previous = previous

    async def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        found = await seek_to_committed(self.consumer, assigned, self.previous)
        log.info(
            "ingress: %d partitions assigned, %d resume from a committed offset",
            len(assigned),
            found,
        )


__all__ = ["SeekToCommitted", "committed_by", "seek_to_committed"]
