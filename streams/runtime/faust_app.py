"""The Faust app of a worker, and the adapters the batch protocol sees it through.

The app's producer is idempotent with ``acks=all`` under at-least-once too, its
agents' consumer holds an empty fetch for at most :data:`FETCH_MAX_WAIT_MS`, and
newly assigned changelog partitions are loaded in bulk (:mod:`streams.runtime.store`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import Any, cast

import faust
from faust import tables as faust_tables
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types.tuples import Message as FaustMessage

from connectors.kafka.clients import PRODUCER_DEFAULTS
from streams.runtime.config import NetworkConfig
from streams.runtime.outbox import Row
from streams.runtime.partitioner import PARTITIONER
from streams.runtime.store import ChangelogLoader

#: Seconds a produced message may take to be acknowledged before it counts as failed.
SEND_TIMEOUT = 30.0
#: How long the broker may hold the agents' consumer's fetch when there is no
#: data. Faust fixes it at 1.5 s, and the broker answers a connection's requests
#: in order: recovery's offset requests would wait behind an empty fetch, 1.5 s
#: each.
FETCH_MAX_WAIT_MS = 100


class IdempotentProducer(faust_aiokafka.Producer):
    """Faust's producer with acks=all and idempotence on under at-least-once too."""

    def _settings_extra(self) -> dict[str, Any]:
        return dict(PRODUCER_DEFAULTS)


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # read by the fetcher aiokafka makes when the consumer starts
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> Any:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class TableManager(faust_tables.TableManager):
    """Faust's table manager, without the second it waits at start for tables
    declared late: a worker declares its tables before the app starts."""

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


class RefnetApp(faust.App):
    #: reads newly assigned changelog partitions in bulk (see streams.runtime.store)
    changelog_loader: ChangelogLoader | None = None

    def _new_producer(self) -> Any:
        return IdempotentProducer(self.transport, loop=self.loop, beacon=self.beacon)

    def _new_consumer(self) -> Any:
        return Consumer(
            self.transport,
            callback=self.topics.on_message,
            on_partitions_revoked=self._on_partitions_revoked,
            on_partitions_assigned=self._on_partitions_assigned,
            beacon=self.beacon,
            loop=self.loop,
        )


def new_app(config: NetworkConfig, bootstrap: str) -> RefnetApp:
    """The worker's Faust app: at-least-once, in-memory tables, no web server."""
    return RefnetApp(
        config.app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=str(config.data_dir / "worker"),
        web_enabled=False,
        topic_partitions=config.partitions,
        topic_replication_factor=config.replication_factor,
        processing_guarantee="at_least_once",
        TableManager=TableManager,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_commit_every=100,
        broker_commit_interval=1.0,
        table_standby_replicas=config.standby_replicas,
        broker_session_timeout=config.session_timeout,
        broker_heartbeat_interval=max(1.0, config.session_timeout / 10),
        broker_credentials=config.kafka_auth.faust(),
        # a message for a topic deleted under it fails within this, instead of the
        # producer retrying it (and every flush waiting on it) for 20 minutes
        producer_request_timeout=SEND_TIMEOUT,
        producer_partitioner=PARTITIONER,
    )


class AppProducer:
    """The app's producer, as :class:`streams.runtime.outbox.Producer`."""

    def __init__(self, app: faust.App) -> None:
        self.app = app

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None
    ) -> Awaitable[Any]:
        future: Any = await self.app.producer.send(topic, key, value, partition, None, None)
        loader = getattr(self.app, "changelog_loader", None)
        if loader is not None and partition is not None and topic.endswith("-changelog"):
            future.add_done_callback(_note_written(loader, topic, partition))
        return cast(Awaitable[Any], future)


def _note_written(loader: ChangelogLoader, topic: str, partition: int) -> Any:
    """Tells ``loader`` the offset of an acknowledged changelog write (see
    streams.runtime.store: partitions kept across a rebalance are not read again)."""

    def done(future: Any) -> None:
        if not future.cancelled() and future.exception() is None:
            loader.wrote(topic, partition, future.result().offset)

    return done


#: Encodes a row as Faust's ``json`` codec does (compact separators, ASCII only),
#: without its per-call codec lookup and keyword merging: rows are plain JSON
#: documents (``model_dump(mode="json")``), so the bytes are the same.
_ROW_ENCODER = json.JSONEncoder(separators=(",", ":"))


class TableRows:
    """A Faust table, as :class:`streams.runtime.outbox.Rows`."""

    def __init__(self, app: faust.App, table: Any) -> None:
        self.app = app
        self.table = table
        #: the table's keys and values are JSON (the app's defaults): rows are
        #: encoded here, without Faust's serializer
        self._plain = (
            table.key_type is None
            and table.value_type is None
            and table.key_serializer == "json"
            and table.value_serializer == "json"
        )
        self._topic_name: str | None = None

    def get(self, key: str) -> Any:
        return self.table.get(key)

    def stage(self, key: str, partition: int, value: Row) -> None:
        """Change a row in memory: later commands of the batch see it at once. The
        store learns the row's partition, so that the row leaves memory with it."""
        data = self.table.data
        if value is None:
            if key in data:
                del data[key]
            data.forget_key(key)
        else:
            data[key] = value
            data.note_key(key, partition)

    def changelog(self, key: str, value: Row) -> tuple[str, bytes | None, bytes | None]:
        """Encoded as Faust's ``send_changelog`` would."""
        table = self.table
        if self._plain:
            if self._topic_name is None:
                self._topic_name = table.changelog_topic.get_topic_name()
            try:
                plain = None if value is None else _ROW_ENCODER.encode(value).encode()
            except TypeError:
                pass  # not a plain JSON document: Faust's encoder knows more types
            else:
                return self._topic_name, _ROW_ENCODER.encode(key).encode(), plain
        serializers = self.app.serializers
        key_bytes = serializers.dumps_key(table.key_type, key, serializer=table.key_serializer)
        value_bytes = (
            None
            if value is None
            else serializers.dumps_value(table.value_type, value, serializer=table.value_serializer)
        )
        return table.changelog_topic.get_topic_name(), key_bytes, value_bytes


def acknowledge(app: faust.App, record: Any) -> None:
    """Acknowledge to Faust a record read back from the broker (see streams.runtime.gaps),
    so that its commits go on past it."""
    m = record.message
    message = FaustMessage(
        m.topic,
        m.partition,
        m.offset,
        m.timestamp,
        0,
        None,
        m.key,
        m.value,
        None,
        generation_id=app.consumer_generation_id,
    )
    app.consumer.ack(message)


__all__ = [
    "FETCH_MAX_WAIT_MS",
    "SEND_TIMEOUT",
    "AppProducer",
    "RefnetApp",
    "TableRows",
    "acknowledge",
    "new_app",
]
