"""An answer the ingress cannot deliver never holds up the other parties."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.errors import KafkaTimeoutError

from schemas.topics import Topics
from streams.decisions.network_state import NetworkState
from streams.decisions.outputs import Outgoing
from streams.runtime.ingress import Ingress

TOPICS = Topics()
GONE = TOPICS.clinic_updates("deprovisioned")
LIVE = TOPICS.clinic_updates("mott-haven")


class Producer:
    """Sends to every topic but one, whose metadata never comes (a deleted inbox)."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.tried: list[str] = []

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[object]:
        self.tried.append(topic)
        if topic == GONE:
            raise KafkaTimeoutError()
        self.sent.append(topic)
        done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def ingress(producer: Producer, seen: list[str]) -> Ingress:
    return Ingress(
        "unused:9092",
        TOPICS,
        producer,  # type: ignore[arg-type]
        NetworkState(),
        group_id="g",
        refresh_seconds=5,
        observe=seen.append,
    )


def reply(topic: str) -> Outgoing:
    return Outgoing(label="message.refused:limit", topic=topic, key="k", value=b"{}")


async def test_a_missing_inbox_is_tried_once_then_left_alone_and_counted() -> None:
    producer, seen = Producer(), []
    door = ingress(producer, seen)
    answers: list[Any] = [await door._answer(reply(GONE)) for _ in range(3)]
    answers.append(await door._answer(reply(LIVE)))
    assert answers[:3] == [None, None, None]
    assert answers[3] is not None
    # one wait for the gone inbox, not one per refused message
    assert producer.tried == [GONE, LIVE]
    assert producer.sent == [LIVE]
    assert seen == ["message.refused:unanswered"] * 3 + ["message.refused:limit"]


async def test_an_answer_that_fails_after_sending_is_counted_not_raised() -> None:
    producer, seen = Producer(), []
    door = ingress(producer, seen)
    failed: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    failed.set_exception(KafkaTimeoutError())
    await door._answered([failed])
    assert seen == ["message.refused:unanswered"]
