"""The directory topic read back and written: latest record per service, one transaction.

Each record carries the headers ``refnet-import-source`` (the ``--source`` name)
and ``refnet-content-sha256``, so a re-import compares by content and ``--prune``
removes only what an import of the same source published.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Final

from pydantic import ValidationError

from connectors.kafka.auth import PLAINTEXT, KafkaAuth
from connectors.kafka.clients import librdkafka
from connectors.openreferral.importer import content_hash
from connectors.retry import Backoff
from deploy.directory.plan import Current, Plan
from schemas.errors import RefnetError
from schemas.events import ServiceUpserted, to_bytes

SOURCE_HEADER: Final = "refnet-import-source"
HASH_HEADER: Final = "refnet-content-sha256"

log = logging.getLogger(__name__)
#: Waits between tries of a partition's watermarks while its leader is being elected.
WATERMARK_RETRY: Final = Backoff(first=0.1, cap=2.0)


class DirectoryError(RefnetError, RuntimeError):
    """Kafka could not be read or written; nothing was published (the message says why)."""


def read_directory(
    bootstrap: str, topic: str, *, auth: KafkaAuth = PLAINTEXT, timeout: float = 30.0
) -> dict[str, Current]:
    """The directory topic's current services (latest value per key, tombstones applied)."""
    from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition

    consumer = _reader(bootstrap, auth, "read_committed")
    found: dict[str, Current] = {}
    try:
        meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if meta is None or meta.error is not None:
            return found
        ends = _ends(bootstrap, auth, topic, sorted(meta.partitions), timeout)
        if ends:
            consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        _read_to(consumer, topic, ends, found, bootstrap, timeout)
    except KafkaException as exc:
        raise DirectoryError(f"cannot read {topic} from Kafka at {bootstrap}: {exc}") from None
    finally:
        consumer.close()
    return found


def _reader(bootstrap: str, auth: KafkaAuth, isolation: str) -> Any:
    from confluent_kafka import Consumer

    options: dict[str, Any] = {
        "group.id": f"refnet-directory-reader-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        "isolation.level": isolation,
    }
    return Consumer(librdkafka(bootstrap, auth, **options))


def _ends(
    bootstrap: str, auth: KafkaAuth, topic: str, partitions: list[int], timeout: float
) -> dict[int, int]:
    """Each non-empty partition's high watermark as it is now.

    A read_committed client is told the last stable offset instead, which lags a
    just-committed transaction until its markers are written (a directory read
    right after an import would look empty): the high watermark comes from a
    read_uncommitted client, and only the position past it means "all read".
    """
    from confluent_kafka import KafkaError, KafkaException, TopicPartition

    #: what a partition whose leader is being elected answers (not always flagged retriable)
    electing = {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
    }
    ends: dict[int, int] = {}
    probe = _reader(bootstrap, auth, "read_uncommitted")
    deadline = time.monotonic() + timeout
    try:
        for partition in partitions:
            attempt = 0
            while True:
                try:
                    low, high = probe.get_watermark_offsets(
                        TopicPartition(topic, partition), timeout=timeout
                    )
                    break
                except KafkaException as exc:
                    # a topic created a moment ago has no leader yet (NOT_LEADER...):
                    # retriable, until the timeout
                    error = exc.args[0] if exc.args else None
                    retriable = isinstance(error, KafkaError) and (
                        error.retriable() or error.code() in electing
                    )
                    attempt += 1
                    if (
                        not retriable
                        or time.monotonic() + WATERMARK_RETRY.delay(attempt) > deadline
                    ):
                        raise
                    time.sleep(WATERMARK_RETRY.delay(attempt))
            if high > low:
                ends[partition] = high
    finally:
        probe.close()
    return ends


def _read_to(
    consumer: Any,
    topic: str,
    ends: dict[int, int],
    found: dict[str, Current],
    bootstrap: str,
    timeout: float,
) -> None:
    """Fold every record into ``found`` until each partition's position reaches its end."""
    from confluent_kafka import KafkaError, TopicPartition

    deadline = time.monotonic() + timeout
    while ends:
        message = consumer.poll(0.2)
        if message is not None:
            error = message.error()
            if error is None:
                _fold(found, message.key(), message.value(), message.headers())
            elif error.code() != KafkaError._PARTITION_EOF:
                raise DirectoryError(f"reading {topic}: {error.str()}")
        for partition, end in list(ends.items()):
            (position,) = consumer.position([TopicPartition(topic, partition)])
            if position.offset >= end:
                del ends[partition]
        if ends and time.monotonic() > deadline:
            raise DirectoryError(
                f"timed out reading {topic} from {bootstrap} (is another import's "
                "transaction still open?)"
            )


def _fold(
    found: dict[str, Current],
    key: bytes | None,
    value: bytes | None,
    headers: object,
) -> None:
    if key is None:
        return
    service_id = key.decode("utf-8", "replace")
    if value is None:
        found.pop(service_id, None)
        return
    source = None
    pairs: list[Any] = list(headers.items()) if isinstance(headers, dict) else []
    if isinstance(headers, list):
        pairs = headers
    for name, raw in pairs:
        if name == SOURCE_HEADER and isinstance(raw, bytes | str):
            source = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        digest: str | None = content_hash(ServiceUpserted.model_validate_json(value))
    except ValidationError:
        digest = None  # not a valid service: an import replaces it
    found[service_id] = Current(digest, source)


def publish(
    bootstrap: str,
    topic: str,
    changes: Plan,
    *,
    source: str,
    transactional_id: str,
    auth: KafkaAuth = PLAINTEXT,
    timeout: float = 60.0,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Write an import's changes in one transaction: all of them become visible, or none.

    ``progress`` hears of each record the broker has (visible once committed).
    Interrupted (Ctrl-C), the transaction is aborted before the interrupt goes on.
    """
    from confluent_kafka import KafkaException

    producer = _transactional(bootstrap, auth, transactional_id)
    failures: list[str] = []

    def delivered(error: Any, message: Any) -> None:
        if error is not None:
            failures.append(str(error))
        elif progress is not None:
            progress(1)

    try:
        producer.init_transactions(timeout)
        producer.begin_transaction()
        for service in changes.publish:
            event = service.event
            headers: list[tuple[str, str | bytes | None]] = [
                (SOURCE_HEADER, source.encode()),
                (HASH_HEADER, content_hash(event).encode()),
            ]
            producer.produce(
                topic,
                key=event.service_id.encode(),
                value=to_bytes(event),
                headers=headers,
                on_delivery=delivered,
            )
            producer.poll(0)
        for service_id in changes.remove:
            producer.produce(
                topic,
                key=service_id.encode(),
                value=None,
                headers=[(SOURCE_HEADER, source.encode())],
                on_delivery=delivered,
            )
            producer.poll(0)
        producer.flush(timeout)
        if failures:
            raise DirectoryError(f"the broker refused records: {failures[0]}")
        producer.commit_transaction(timeout)
    except (KafkaException, DirectoryError, BufferError) as exc:
        _abort(producer)
        raise DirectoryError(f"nothing was published to {topic}: {exc}") from None
    except KeyboardInterrupt:
        _abort(producer)
        raise


def _transactional(bootstrap: str, auth: KafkaAuth, transactional_id: str) -> Any:
    from confluent_kafka import Producer

    return Producer(
        librdkafka(bootstrap, auth, producer=True, **{"transactional.id": transactional_id})
    )


def _abort(producer: Any) -> None:
    from confluent_kafka import KafkaException

    try:
        producer.abort_transaction(10)
    except KafkaException:
        log.warning("aborting the import's transaction failed; the broker aborts it later")


def fence(
    bootstrap: str, transactional_id: str, *, auth: KafkaAuth = PLAINTEXT, timeout: float = 30.0
) -> None:
    """Abort a transaction an earlier import left open (killed before it committed).

    Until the broker aborts it by itself (the transaction timeout), an open
    transaction holds back what a ``read_committed`` reader sees: a new import
    would wait for it. Registering the same transactional id aborts it now.
    """
    from confluent_kafka import KafkaException

    producer = _transactional(bootstrap, auth, transactional_id)
    try:
        producer.init_transactions(timeout)
    except KafkaException as exc:
        raise DirectoryError(f"cannot reach Kafka at {bootstrap}: {exc}") from None
    finally:
        producer.flush(0)
