"""A table loads its newly assigned changelog partitions in bulk, on the real broker."""

from __future__ import annotations

import json
import uuid
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaProducer
from faust.types import TP

from connectors.observability import metrics
from connectors.observability.observer import PROMETHEUS
from streams.runtime import store
from streams.runtime.store import ChangelogLoader
from tests.kafka_topics import create_topic

pytestmark = pytest.mark.integration


def _doc(value: dict[str, Any] | None) -> bytes | None:
    return None if value is None else json.dumps(value).encode()


async def _table(bootstrap: str, records: list[tuple[int, str, dict[str, Any] | None]]) -> Any:
    """A Faust table on the bulk-loading store, its changelog holding ``records``."""
    app = faust.App(f"load-{uuid.uuid4().hex[:8]}", broker=f"kafka://{bootstrap}")
    table = app.Table("rows", partitions=3, store=store.URL)
    topic = table.changelog_topic.get_topic_name()
    await create_topic(bootstrap, topic, 3)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for partition, key, value in records:
            await producer.send_and_wait(
                topic, _doc(value), key=json.dumps(key).encode(), partition=partition
            )
    finally:
        await producer.stop()
    return table


def _assign(table: Any, monkeypatch: pytest.MonkeyPatch, partitions: set[int]) -> set[TP]:
    topic = table.changelog_topic.get_topic_name()
    actives = {TP(topic, p) for p in partitions}
    monkeypatch.setattr(table.app.assignor, "assigned_actives", lambda: set(actives))
    return actives


async def _rebalance(table: Any, actives: set[TP]) -> None:
    await table.data.on_rebalance(actives, set(), actives, 1)


RECORDS: list[tuple[int, str, dict[str, Any] | None]] = [
    (0, "a", {"v": 1}),
    (0, "b", {"v": 1}),
    (0, "a", {"v": 2}),
    (0, "b", None),  # a tombstone deletes b
    (1, "c", {"v": 3, "nested": {"list": [1, 2]}}),
    (2, "z", {"v": 9}),  # partition 2 belongs to another worker
]


async def test_newly_assigned_partitions_are_loaded_in_offset_order(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = await _table(kafka_bootstrap, RECORDS)
    table.app.changelog_loader = ChangelogLoader(kafka_bootstrap, observer=PROMETHEUS)
    actives = _assign(table, monkeypatch, {0, 1})
    loaded_before = metrics.CHANGELOG_LOADED.labels("rows")._value.get()

    await _rebalance(table, actives)

    assert dict(table.data.data) == {"a": {"v": 2}, "c": {"v": 3, "nested": {"list": [1, 2]}}}
    assert table["a"] == {"v": 2}
    assert "b" not in table
    topic = table.changelog_topic.get_topic_name()
    # Faust's recovery starts after the last record loaded of each partition
    assert table.data.persisted_offset(TP(topic, 0)) == 3
    assert table.data.persisted_offset(TP(topic, 1)) == 0
    assert table.data.persisted_offset(TP(topic, 2)) is None
    assert metrics.CHANGELOG_LOADED.labels("rows")._value.get() - loaded_before == 5
    # Faust's own bookkeeping: keys of a partition revoked later are dropped
    await table.data.on_recovery_completed({TP(topic, 1)}, set())
    assert dict(table.data.data) == {"c": {"v": 3, "nested": {"list": [1, 2]}}}


async def test_kept_partitions_are_not_read_again_and_regained_ones_are_read_whole(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = await _table(kafka_bootstrap, RECORDS)
    table.app.changelog_loader = ChangelogLoader(kafka_bootstrap, observer=PROMETHEUS)
    topic = table.changelog_topic.get_topic_name()
    await _rebalance(table, _assign(table, monkeypatch, {0, 1}))

    # the same partitions again: Faust's recovery goes on from its own offsets,
    # past the worker's own acknowledged writes (it holds them in memory)
    table.data.data["a"] = {"v": "changed since, by the agent"}
    table.app.changelog_loader.wrote(topic, 0, 4)
    await _rebalance(table, _assign(table, monkeypatch, {0, 1}))
    assert table.data.persisted_offset(TP(topic, 0)) == 4
    assert table.data.persisted_offset(TP(topic, 1)) is None  # nothing written there
    assert table.data.data["a"] == {"v": "changed since, by the agent"}

    # partition 0 goes away and comes back: what was kept of it is stale
    await _rebalance(table, _assign(table, monkeypatch, {1}))
    table.data.data["stale"] = {"v": 0}
    table.data._key_partition["stale"] = 0
    await _rebalance(table, _assign(table, monkeypatch, {0, 1}))
    assert table.data.data["a"] == {"v": 2}
    assert "stale" not in table.data.data
    assert table.data.persisted_offset(TP(topic, 0)) == 3
    assert table.app.changelog_loader.written(TP(topic, 0)) is None  # left, forgotten


class _Failing(ChangelogLoader):
    """Applies the first record it reads, then the broker connection 'breaks'."""

    async def read(self, tps: Any, apply: Any) -> Any:
        def once(partition: int, records: list[Any]) -> None:
            raise _Stop(partition, records)

        try:
            return await super().read(tps, once)
        except _Stop as stop:
            apply(stop.partition, stop.records[:1])
            raise ConnectionError("lost the broker") from None


class _Stop(Exception):
    def __init__(self, partition: int, records: list[Any]) -> None:
        self.partition = partition
        self.records = records


async def test_a_failed_load_leaves_nothing_half_read_and_faust_reads_instead(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = await _table(kafka_bootstrap, RECORDS)
    table.app.changelog_loader = _Failing(kafka_bootstrap, observer=PROMETHEUS)
    topic = table.changelog_topic.get_topic_name()
    failures_before = metrics.CHANGELOG_LOAD_FAILURES.labels("rows")._value.get()

    await _rebalance(table, _assign(table, monkeypatch, {0, 1}))

    assert dict(table.data.data) == {}
    assert table.data.persisted_offset(TP(topic, 0)) is None
    assert table.data.persisted_offset(TP(topic, 1)) is None
    assert metrics.CHANGELOG_LOAD_FAILURES.labels("rows")._value.get() - failures_before == 1
