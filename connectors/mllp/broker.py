"""The listener's way to Kafka: idempotent producers (``acks=all``, from
:mod:`connectors.kafka.clients`) that publish and list the broker's topics.

On a secured broker each facility's messages are published with the facility's
own login (its credentials file from ``refnet provision facility``, under
``credentials_dir``), as the gateway publishes for each party: the ACLs that
let a facility write only its own topic hold for the listener too. A facility
without a credentials file (a development broker) is published for with the
listener's own login. One producer per facility, made on its first message.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aiokafka import AIOKafkaProducer

from connectors.kafka import clients
from connectors.kafka.auth import PLAINTEXT, KafkaAuth, KafkaAuthError
from schemas.topics import TopicKind, Topics

log = logging.getLogger(__name__)


class KafkaPublisher:
    def __init__(
        self,
        bootstrap: str,
        auth: KafkaAuth = PLAINTEXT,
        *,
        topics: Topics | None = None,
        credentials_dir: Path | None = None,
    ) -> None:
        self._bootstrap = bootstrap
        self._auth = auth
        self._topics = topics
        self._credentials_dir = credentials_dir
        self._producer = self._new(auth, "refnet-mllp")
        self._facilities: dict[str, AIOKafkaProducer] = {}
        self._lock = asyncio.Lock()

    def _new(self, auth: KafkaAuth, client_id: str) -> AIOKafkaProducer:
        return clients.producer(
            self._bootstrap, auth, client_id=client_id, request_timeout_ms=15000
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        for producer in self._facilities.values():
            await producer.stop()
        self._facilities.clear()
        await self._producer.stop()

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        """Returns once every in-sync replica has the record."""
        producer = await self._producer_for(topic)
        await producer.send_and_wait(topic, value, key=key)

    async def _producer_for(self, topic: str) -> AIOKafkaProducer:
        facility = self._facility_of(topic)
        if facility is None or self._credentials_dir is None:
            return self._producer
        async with self._lock:
            if facility in self._facilities:
                return self._facilities[facility]
            path = self._credentials_dir / f"facility-{facility}.json"
            if not path.exists():
                return self._producer
            try:
                _, auth = KafkaAuth.from_file(path)
            except KafkaAuthError:
                log.warning(
                    "credentials of facility %s cannot be read; using the listener's", facility
                )
                return self._producer
            producer = self._new(auth, f"refnet-mllp-{facility}")
            await producer.start()
            self._facilities[facility] = producer
            return producer

    def _facility_of(self, topic: str) -> str | None:
        parsed = self._topics.parse(topic) if self._topics is not None else None
        if parsed is None or parsed[0] is not TopicKind.FACILITY_SUBMISSIONS:
            return None
        return parsed[1]

    async def topic_names(self) -> set[str]:
        """Every topic the broker lets this principal see."""
        metadata = await self._producer.client.fetch_all_metadata()
        return set(metadata.topics())


__all__ = ["KafkaPublisher"]
