"""Admin requests cut into batches the broker accepts (no broker needed)."""

from __future__ import annotations

import pytest

from connectors.kafka.admin.batches import (
    BROKER_MAX_PARTITIONS_PER_REQUEST,
    BROKER_MAX_RECORDS_PER_REQUEST,
    DEFAULT_LIMITS,
    BatchLimits,
    chunks,
    topic_batches,
    topic_records,
)
from schemas.topics import Topics


def _org_specs(count: int, partitions: int) -> list:  # type: ignore[type-arg]
    topics = Topics(prefix="sdoh", partitions=partitions)
    return [spec for i in range(count) for spec in topics.org_catalog(f"org-{i:05d}")]


def test_a_topic_counts_itself_its_partitions_and_its_config_entries() -> None:
    spec = Topics(prefix="sdoh", partitions=6).org_catalog("food-bank")[0]
    assert topic_records(spec) == 1 + 6 + len(spec.config)


@pytest.mark.parametrize("partitions", [1, 3, 6])
def test_five_thousand_organizations_go_in_batches_within_every_limit(partitions: int) -> None:
    specs = _org_specs(5_000, partitions)
    batches = list(topic_batches(specs, DEFAULT_LIMITS))
    assert [s for batch in batches for s in batch] == specs  # all of them, in order
    assert len(batches) > 1
    for batch in batches:
        assert len(batch) <= DEFAULT_LIMITS.topics
        assert sum(s.partitions for s in batch) <= DEFAULT_LIMITS.partitions
        assert sum(topic_records(s) for s in batch) <= DEFAULT_LIMITS.records
    # the defaults leave a wide margin under what the broker refuses
    assert DEFAULT_LIMITS.partitions * 4 <= BROKER_MAX_PARTITIONS_PER_REQUEST
    assert DEFAULT_LIMITS.records * 4 <= BROKER_MAX_RECORDS_PER_REQUEST


def test_each_limit_alone_cuts_a_batch() -> None:
    specs = _org_specs(10, 3)  # 20 topics, 3 partitions and 2 config entries each: 6 records
    assert [len(b) for b in topic_batches(specs, BatchLimits(topics=7))] == [7, 7, 6]
    assert [len(b) for b in topic_batches(specs, BatchLimits(partitions=9))] == [3] * 6 + [2]
    assert [len(b) for b in topic_batches(specs, BatchLimits(records=13))] == [2] * 10


def test_a_topic_larger_than_a_limit_is_a_batch_of_its_own() -> None:
    specs = _org_specs(2, 6)
    assert [len(b) for b in topic_batches(specs, BatchLimits(partitions=4))] == [1, 1, 1, 1]


def test_limits_past_what_the_broker_accepts_are_refused() -> None:
    with pytest.raises(ValueError, match="from 1 to 10,000"):
        BatchLimits(partitions=10_001)
    with pytest.raises(ValueError):
        BatchLimits(acls=0)


def test_chunks() -> None:
    assert [list(c) for c in chunks([1, 2, 3, 4, 5], 2)] == [[1, 2], [3, 4], [5]]
    assert list(chunks([], 3)) == []
