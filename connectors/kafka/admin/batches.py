"""Admin requests cut into batches the broker accepts.

A KRaft controller refuses a request that would write too much at once:

- more than 10,000 partitions in one CreateTopics (or CreatePartitions) request:
  ``POLICY_VIOLATION: Excessively large number of partitions per request``
  (``ReplicationControlManager.MAX_PARTITIONS_PER_BATCH``);
- more than 10,000 metadata records in one request (one per topic, one per
  partition, one per config entry, one per ACL binding):
  ``POLICY_VIOLATION: Unable to perform excessively large batch operation``
  (``QuorumController.MAX_RECORDS_PER_USER_OP``).

Neither is a broker setting in Kafka 4.x. A cluster may also set a controller
mutation quota (``controller_mutation_rate``, KIP-599): a request past it is
answered ``THROTTLING_QUOTA_EXCEEDED`` and tried again after a backoff.
:class:`BatchLimits` stays well under both limits by default.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from schemas.topics import TopicSpec

T = TypeVar("T")

#: What a KRaft controller accepts in one request (Kafka 4.x, hard-coded).
BROKER_MAX_PARTITIONS_PER_REQUEST: Final = 10_000
BROKER_MAX_RECORDS_PER_REQUEST: Final = 10_000


@dataclass(frozen=True)
class BatchLimits:
    """The most one admin request carries (each well under the broker's 10,000)."""

    #: topics per CreateTopics / DescribeConfigs / DeleteTopics request
    topics: int = 500
    #: partitions per CreateTopics / CreatePartitions request
    partitions: int = 2_000
    #: metadata records per request (a topic, each partition, each config entry)
    records: int = 2_500
    #: ACL bindings per CreateAcls request (and SCRAM credentials per request)
    acls: int = 1_000

    def __post_init__(self) -> None:
        for name in ("topics", "partitions", "records", "acls"):
            value = getattr(self, name)
            if not 1 <= value <= BROKER_MAX_RECORDS_PER_REQUEST:
                raise ValueError(f"batch limit {name}={value}: from 1 to 10,000")


DEFAULT_LIMITS: Final = BatchLimits()


def topic_records(spec: TopicSpec) -> int:
    """The metadata records creating ``spec`` writes: the topic, its partitions, its config."""
    return 1 + spec.partitions + len(spec.config)


def topic_batches(specs: Iterable[TopicSpec], limits: BatchLimits) -> Iterator[list[TopicSpec]]:
    """``specs`` in order, cut so that no batch passes any of ``limits``.

    A topic that alone passes a limit (more partitions than ``limits.partitions``)
    is a batch of its own: the broker says whether it takes it.
    """
    batch: list[TopicSpec] = []
    partitions = records = 0
    for spec in specs:
        full = (
            len(batch) >= limits.topics
            or partitions + spec.partitions > limits.partitions
            or records + topic_records(spec) > limits.records
        )
        if batch and full:
            yield batch
            batch, partitions, records = [], 0, 0
        batch.append(spec)
        partitions += spec.partitions
        records += topic_records(spec)
    if batch:
        yield batch


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in order, ``size`` at a time."""
    if size < 1:
        raise ValueError("a chunk holds at least one item")
    for start in range(0, len(items), size):
        yield items[start : start + size]


__all__ = [
    "BROKER_MAX_PARTITIONS_PER_REQUEST",
    "BROKER_MAX_RECORDS_PER_REQUEST",
    "DEFAULT_LIMITS",
    "BatchLimits",
    "chunks",
    "topic_batches",
    "topic_records",
]
