"""The submissions loop subscribed to the network's listing, on the real broker: it
asks for the metadata of its own topics only (a pattern asks for every topic's),
and reads a clinic that the listing shows later."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from schemas.events import to_bytes
from schemas.topics import Topics
from streams.decisions.commands import patient_key
from streams.decisions.network_state import NetworkState
from streams.runtime import ingress as ingress_module
from streams.runtime.ingress import Ingress
from streams.runtime.ingress_groups import ingress_groups
from streams.runtime.subscription import Listed
from tests.kafka_topics import create_topic
from tests.network.test_ingress_groups import _keys, _produce
from tests.streams.fixtures import PATIENT_ID, screening

pytestmark = pytest.mark.integration


async def test_a_listed_ingress_asks_for_its_topics_only_and_follows_the_listing(
    kafka_bootstrap: str, topics: Topics, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await create_topic(kafka_bootstrap, topics.clinic_submissions(f"one-{unique}"))
    second = await create_topic(kafka_bootstrap, topics.clinic_submissions(f"two-{unique}"))
    others = [
        await create_topic(kafka_bootstrap, topics.org_updates(f"org-{n}-{unique}"))
        for n in range(3)
    ]
    for name in (topics.network_patients, topics.deadletter):
        await create_topic(kafka_bootstrap, name)
    listing = {first, *others}

    consumers: list[Any] = []
    real = ingress_module.clients.consumer

    def kept(*args: Any, **kwargs: Any) -> Any:
        consumers.append(real(*args, **kwargs))
        return consumers[-1]

    monkeypatch.setattr(ingress_module.clients, "consumer", kept)
    submissions, _ = ingress_groups(f"li-{unique}", topics)
    producer = ingress_module.clients.producer(kafka_bootstrap)
    await producer.start()
    ingress = Ingress(
        kafka_bootstrap,
        topics,
        producer,
        NetworkState(),
        group_id=submissions.group_id,
        refresh_seconds=1,
        pattern=submissions.pattern,
        listed=Listed(submissions.pattern, lambda: frozenset(listing), look_every=0.2),
    )
    task = asyncio.ensure_future(ingress.run())
    try:
        one = screening(screening_id="scr-one")
        await _produce(kafka_bootstrap, first, [(PATIENT_ID.encode(), to_bytes(one))])
        key_one = patient_key(f"one-{unique}", PATIENT_ID).encode()
        await _keys(kafka_bootstrap, topics.network_patients, {key_one})
        consumer = consumers[0]  # the ingress's (the readers here come after it)
        client = consumer._client
        assert not client.cluster.need_all_topic_metadata
        assert client._topics == {first}

        listing.add(second)  # a clinic provisioned: the next listing shows it
        two = screening(screening_id="scr-two")
        await _produce(kafka_bootstrap, second, [(PATIENT_ID.encode(), to_bytes(two))])
        key_two = patient_key(f"two-{unique}", PATIENT_ID).encode()
        await _keys(kafka_bootstrap, topics.network_patients, {key_one, key_two})
        assert client._topics == {first, second}
        assert not client.cluster.need_all_topic_metadata
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await producer.stop()
