"""The MLLP listener: HL7 v2 ADT from provisioned facilities, an HL7 ACK for each,
``encounter.notified`` on the facility's submissions topic (``refnet mllp``).

- :mod:`.listener`: connections, bounds, ACKs;
- :mod:`.framing`: python-hl7's MLLP reader, bounded;
- :mod:`.facilities`: which facilities are provisioned (their topic exists);
- :mod:`.broker`: the producer;
- :mod:`.metrics`: Prometheus metrics (no patient data in labels).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from connectors.kafka.auth import PLAINTEXT, KafkaAuth
from connectors.mllp.broker import KafkaPublisher
from connectors.mllp.facilities import FacilityDirectory
from connectors.mllp.listener import ListenerConfig, MllpListener, Publisher


async def serve(
    config: ListenerConfig,
    bootstrap: str,
    stop: asyncio.Event,
    *,
    auth: KafkaAuth = PLAINTEXT,
    facility_cache: float = 10.0,
    credentials_dir: Path | None = None,
    on_listening: Callable[[str, int], None] | None = None,
) -> None:
    """Run the listener against the broker at ``bootstrap`` until ``stop`` is set.

    ``credentials_dir``: where each facility's credentials file is (``refnet
    provision facility``); a facility's messages are published with its own login.
    """
    publisher = KafkaPublisher(
        bootstrap, auth, topics=config.topics, credentials_dir=credentials_dir
    )
    await publisher.start()
    try:
        facilities = FacilityDirectory(config.topics, publisher.topic_names, ttl=facility_cache)
        listener = MllpListener(config, publisher, facilities)
        host, port = await listener.start()
        try:
            if on_listening is not None:
                on_listening(host, port)
            await stop.wait()
        finally:
            await listener.stop()
    finally:
        await publisher.stop()


__all__ = [
    "FacilityDirectory",
    "KafkaPublisher",
    "ListenerConfig",
    "MllpListener",
    "Publisher",
    "serve",
]
