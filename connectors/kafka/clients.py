"""Every Kafka client refnet builds, with the safe defaults in one place.

A producer waits for every in-sync replica (``acks=all``) and is idempotent, so
a retried send is never written twice; a consumer commits only when told to.
Callers pass what is theirs (a client id, a group, batch sizes) as keywords,
which override the defaults. :class:`~connectors.kafka.auth.KafkaAuth` adds the
connection's security in each client's own dialect (aiokafka, librdkafka).
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from connectors.kafka.auth import PLAINTEXT, KafkaAuth

#: aiokafka producers: every replica acknowledges, a retried send is written once
PRODUCER_DEFAULTS: dict[str, Any] = {"acks": "all", "enable_idempotence": True}
#: aiokafka consumers: offsets move only when refnet commits them
CONSUMER_DEFAULTS: dict[str, Any] = {"enable_auto_commit": False}
#: librdkafka producers: the same guarantees in librdkafka's words
LIBRDKAFKA_PRODUCER_DEFAULTS: dict[str, Any] = {"acks": "all", "enable.idempotence": True}


def producer(bootstrap: str, auth: KafkaAuth = PLAINTEXT, **options: Any) -> AIOKafkaProducer:
    """An idempotent aiokafka producer (``acks=all``); ``options`` override the defaults."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, **{**PRODUCER_DEFAULTS, **options}, **auth.aiokafka()
    )


def consumer(
    bootstrap: str, *topics: str, auth: KafkaAuth = PLAINTEXT, **options: Any
) -> AIOKafkaConsumer:
    """An aiokafka consumer that never commits by itself; ``options`` override the defaults."""
    return AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, **{**CONSUMER_DEFAULTS, **options}, **auth.aiokafka()
    )


def admin(bootstrap: str, auth: KafkaAuth = PLAINTEXT, **options: Any) -> AIOKafkaAdminClient:
    """aiokafka's admin client (topics and offsets; ACLs and SCRAM need :func:`librdkafka`)."""
    return AIOKafkaAdminClient(bootstrap_servers=bootstrap, **options, **auth.aiokafka())


def librdkafka(
    bootstrap: str, auth: KafkaAuth = PLAINTEXT, *, producer: bool = False, **options: Any
) -> dict[str, Any]:
    """A confluent-kafka configuration: quiet logging, the producer guarantees if asked."""
    quiet = logging.getLogger("refnet.librdkafka")
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    config: dict[str, Any] = {"bootstrap.servers": bootstrap, "logger": quiet}
    if producer:
        config.update(LIBRDKAFKA_PRODUCER_DEFAULTS)
    config.update(options)
    config.update(auth.librdkafka())
    return config


__all__ = [
    "CONSUMER_DEFAULTS",
    "LIBRDKAFKA_PRODUCER_DEFAULTS",
    "PRODUCER_DEFAULTS",
    "admin",
    "consumer",
    "librdkafka",
    "producer",
]
