"""Where the ingress starts a newly assigned partition, without a broker."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaTimeoutError
from aiokafka.structs import OffsetAndMetadata

from streams.runtime.positions import seek_to_committed

A, B, C = (TopicPartition("sdoh.org.a.updates.v1", n) for n in range(3))


class Coordinator:
    def __init__(self, committed: dict[TopicPartition, int]) -> None:
        self.committed = committed

    async def fetch_committed_offsets(
        self, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        return {tp: OffsetAndMetadata(self.committed.get(tp, -1), "") for tp in partitions}


class FakeConsumer:
    """Records how each partition was positioned."""

    def __init__(self, committed: dict[TopicPartition, int], first: Any) -> None:
        self._coordinator = Coordinator(committed)
        self.first = first
        self.sought: dict[TopicPartition, int] = {}
        self.reset: list[TopicPartition] = []

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.sought[tp] = offset

    async def beginning_offsets(self, partitions: list[TopicPartition]) -> dict[Any, int]:
        if isinstance(self.first, Exception):
            raise self.first
        return {tp: self.first[tp] for tp in partitions if tp in self.first}

    async def seek_to_beginning(self, *partitions: TopicPartition) -> bool:
        self.reset.extend(partitions)
        return True


async def test_a_partition_without_a_commit_is_sought_to_its_first_offset_by_a_plain_seek() -> None:
    # a reset requested of aiokafka's fetcher could be answered by one already in flight
    # (the consumer's own auto_offset_reset): only a seek cancels that
    consumer = FakeConsumer({A: 7}, {B: 3, C: 0})
    assert await seek_to_committed(consumer, [A, B, C]) == 1  # type: ignore[arg-type]
    assert consumer.sought == {A: 7, B: 3, C: 0}
    assert consumer.reset == []


async def test_a_partition_whose_first_offset_is_not_had_is_reset_by_aiokafka() -> None:
    consumer = FakeConsumer({}, {B: 3})
    assert await seek_to_committed(consumer, [B, C]) == 0  # type: ignore[arg-type]
    assert consumer.sought == {B: 3}
    assert consumer.reset == [C]


async def test_a_failed_lookup_of_first_offsets_falls_back_to_aiokafkas_reset(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer = FakeConsumer({A: 7}, KafkaTimeoutError())
    with caplog.at_level(logging.WARNING, logger="streams.runtime.positions"):
        assert await seek_to_committed(consumer, [A, B, C]) == 1  # type: ignore[arg-type]
    assert consumer.sought == {A: 7}
    assert consumer.reset == [B, C]
    assert "first offsets of 2 partitions not fetched (KafkaTimeoutError)" in caplog.text
