"""The listener's way to Kafka: one idempotent producer (``acks=all``, from
:mod:`connectors.kafka.clients`) that publishes and lists the broker's topics."""

from __future__ import annotations

from connectors.kafka import clients
from connectors.kafka.auth import PLAINTEXT, KafkaAuth


class KafkaPublisher:
    def __init__(self, bootstrap: str, auth: KafkaAuth = PLAINTEXT) -> None:
        self._producer = clients.producer(
            bootstrap, auth, client_id="refnet-mllp", request_timeout_ms=15000
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        """Returns once every in-sync replica has the record."""
        await self._producer.send_and_wait(topic, value, key=key)

    async def topic_names(self) -> set[str]:
        """Every topic the broker lets this principal see."""
        metadata = await self._producer.client.fetch_all_metadata()
        return set(metadata.topics())


__all__ = ["KafkaPublisher"]
