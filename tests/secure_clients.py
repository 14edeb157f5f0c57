"""Parties as any librdkafka client would be: confluent-kafka with a credentials file as it is.

Each call returns what the client saw (records, or the error codes its callbacks
and messages carried), so a test asserts on what a party's IT would meet.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer

from schemas.events import Event, to_bytes

#: librdkafka's codes for "the broker said no" (as opposed to "it did not answer").
DENIED = frozenset(
    {
        "TOPIC_AUTHORIZATION_FAILED",
        "GROUP_AUTHORIZATION_FAILED",
        "CLUSTER_AUTHORIZATION_FAILED",
        "_AUTHENTICATION",
        "SASL_AUTHENTICATION_FAILED",
    }
)


def kafka_config(path: Path) -> dict[str, str]:
    """The ``kafka`` member of a credentials file: librdkafka keys, used as they are."""
    config = json.loads(path.read_text())["kafka"]
    assert set(config) >= {
        "bootstrap.servers",
        "security.protocol",
        "sasl.mechanism",
        "sasl.username",
        "sasl.password",
        "ssl.ca.location",
    }
    return dict(config)


@dataclass
class Outcome:
    """What one client attempt met."""

    errors: list[str] = field(default_factory=list)
    values: list[dict[str, Any]] = field(default_factory=list)
    delivered: int = 0

    @property
    def denied(self) -> bool:
        return any(code in DENIED for code in self.errors)


def produce(
    config: dict[str, str],
    topic: str,
    messages: list[tuple[str | None, Event | bytes]],
    *,
    timeout: float = 10.0,
) -> Outcome:
    """Produce ``messages`` (key, event) and wait for every delivery report."""
    outcome = Outcome()

    def report(err: KafkaError | None, _msg: Any) -> None:
        if err is None:
            outcome.delivered += 1
        else:
            outcome.errors.append(err.name())

    producer = Producer(
        {
            **config,
            "enable.idempotence": True,
            "acks": "all",
            "message.timeout.ms": int(timeout * 1000),
            "log_level": 0,
            "error_cb": lambda err: outcome.errors.append(err.name()),
        }
    )
    for key, event in messages:
        value = to_bytes(event) if isinstance(event, Event) else event
        producer.produce(
            topic, value, key=key.encode() if key is not None else None, on_delivery=report
        )
    producer.flush(timeout + 5)
    return outcome


def consume(
    config: dict[str, str],
    topic: str,
    *,
    group: str,
    until: Any = None,
    count: int | None = None,
    timeout: float = 30.0,
    timestamps: bool = False,
) -> Outcome:
    """Read ``topic`` from its beginning, in consumer group ``group`` (a new one reads
    from the start; nothing is committed), until ``until(values)``, ``count`` values,
    an error, or ``timeout``. A topic the client may not read fails at once with
    TOPIC_AUTHORIZATION_FAILED (the subscription asks for its metadata). With
    ``timestamps``, each value gets the message's timestamp (ms) as ``_timestamp_ms``."""
    outcome = Outcome()
    consumer = Consumer(
        {
            **config,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "log_level": 0,
            "error_cb": lambda err: outcome.errors.append(err.name()),
        }
    )
    consumer.subscribe([topic])
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.3)
            if message is not None:
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue
                    outcome.errors.append(error.name())
                    return outcome
                value = message.value()
                document = json.loads(value) if value else {}
                if timestamps:
                    document["_timestamp_ms"] = message.timestamp()[1]
                outcome.values.append(document)
            if count is not None and len(outcome.values) >= count:
                return outcome
            if until is not None and until(outcome.values):
                return outcome
            if outcome.denied:
                return outcome
        return outcome
    finally:
        consumer.close()


def fresh_group(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


__all__ = ["DENIED", "Outcome", "consume", "fresh_group", "kafka_config", "produce"]
