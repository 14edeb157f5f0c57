"""The batch and outbox protocol, without a broker: an in-memory table and producer.

Outputs never go before the state that explains them, a crash between the two
leaves them in the row's outbox for the replay to send again byte for byte,
and what cannot be delivered becomes a dead letter.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import BaseModel

from connectors.observability.observer import NullObserver
from connectors.retry import Backoff
from schemas.codes import DeadLetterKind
from streams.decisions.commands import PurgeReferral
from streams.decisions.outputs import Outgoing
from streams.runtime.delivery import Delivery
from streams.runtime.outbox import Batch, Changelog, replayed, stored_outbox
from tests.streams.fixtures import T0, TOPICS

CHANGELOG = "refnet-referrals-changelog"
ORG_TOPIC = TOPICS.org_referrals("harlem-food")
CLINIC_TOPIC = TOPICS.clinic_updates("mott-haven")
QUICK = Backoff(first=0.001, cap=0.001)


class Refused(Exception):
    """The in-memory broker refuses a message."""


class FakeProducer:
    """Acknowledges every message at once, in order, except for ``refused`` topics."""

    def __init__(self, refused: set[str] | None = None) -> None:
        self.refused = refused or set()
        self.log: list[tuple[str, bytes | None, bytes | None, int | None]] = []

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None
    ) -> asyncio.Future[None]:
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if topic in self.refused:
            ack.set_exception(Refused(topic))
        else:
            self.log.append((topic, key, value, partition))
            ack.set_result(None)
        return ack

    def topics(self) -> list[str]:
        return [topic for topic, *_ in self.log]

    def on(self, topic: str) -> list[tuple[str, bytes | None, bytes | None, int | None]]:
        return [entry for entry in self.log if entry[0] == topic]


class MemoryRows:
    """A table in a dict; its changelog rows are JSON."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def stage(self, key: str, partition: int, value: dict[str, Any] | None) -> None:
        if value is None:
            self.data.pop(key, None)
        else:
            self.data[key] = value

    def changelog(
        self, key: str, value: dict[str, Any] | None
    ) -> tuple[str, bytes | None, bytes | None]:
        return CHANGELOG, key.encode(), None if value is None else json.dumps(value).encode()


class KnownTopics:
    def __init__(self, *names: str) -> None:
        self.topic_names = frozenset(names)
        self.looks = 0

    async def list_orgs(self) -> None:
        self.looks += 1


class Recorder(NullObserver):
    def __init__(self) -> None:
        self.dead: list[str] = []
        self.produced: list[str] = []
        self.retries = 0

    def dead_lettered(self, kind: str) -> None:
        self.dead.append(kind)

    def output_produced(self, event_type: str) -> None:
        self.produced.append(event_type)

    def send_retried(self, agent: str) -> None:
        self.retries += 1


class Record(BaseModel):
    referral_id: str
    step: int


class Crash(Exception):
    """The worker dies between the state and the outputs."""


def command(n: int = 1) -> PurgeReferral:
    return PurgeReferral(command_id=f"cmd-{n}", referral_id="ref-1")


def outputs(n: int = 1) -> list[Outgoing]:
    return [
        Outgoing(ORG_TOPIC, "ref-1", f'{{"offer":{n}}}'.encode(), "referral.offered"),
        Outgoing(CLINIC_TOPIC, "ref-1", f'{{"update":{n}}}'.encode(), "referral.updated"),
    ]


class Worker:
    """One batch protocol over the in-memory table and producer."""

    def __init__(self, producer: FakeProducer, rows: MemoryRows | None = None) -> None:
        self.producer = producer
        self.rows = rows or MemoryRows()
        self.fatal: list[str] = []
        self.observer = Recorder()
        self.known = KnownTopics(ORG_TOPIC, CLINIC_TOPIC, TOPICS.deadletter)
        self.changelog = Changelog(producer, backoff=QUICK, on_fatal=self.fatal.append)
        self.delivery = Delivery(
            producer,
            TOPICS,
            self.known,
            observer=self.observer,
            clock=lambda: T0,
            backoff=QUICK,
            on_fatal=self.fatal.append,
        )

    def batch(self, *, after_state: Any = None) -> Batch:
        return Batch(
            self.rows,
            "referrals",
            changelog=self.changelog,
            delivery=self.delivery,
            after_state=after_state,
        )


async def test_the_state_and_its_outbox_are_durable_before_any_output() -> None:
    producer = FakeProducer()
    worker = Worker(producer)
    batch = worker.batch()
    batch.apply("ref-1", 3, Record(referral_id="ref-1", step=1), outputs(), command(), delete=False)
    await batch.commit()

    assert producer.topics() == [CHANGELOG, ORG_TOPIC, CLINIC_TOPIC, CHANGELOG]
    _, key, value, partition = producer.log[0]
    assert (key, partition) == (b"ref-1", 3)
    assert value is not None
    durable = json.loads(value)
    assert durable["step"] == 1
    assert durable["outbox"] == [
        {"command_id": "cmd-1", "messages": [out.stored() for out in outputs()]}
    ]
    assert [v for _, _, v, _ in producer.log[1:3]] == [out.value for out in outputs()]
    # delivered: the outbox is emptied, in memory and in the changelog
    assert worker.rows.data["ref-1"]["outbox"] == []
    last = producer.log[-1][2]
    assert last is not None and json.loads(last)["outbox"] == []
    assert worker.observer.produced == ["referral.offered", "referral.updated"]


async def test_a_batch_writes_each_row_once_and_keeps_every_command_s_outputs() -> None:
    producer = FakeProducer()
    worker = Worker(producer)
    batch = worker.batch()
    batch.apply(
        "ref-1", 0, Record(referral_id="ref-1", step=1), outputs(1), command(1), delete=False
    )
    batch.apply(
        "ref-1", 0, Record(referral_id="ref-1", step=2), outputs(2), command(2), delete=False
    )
    await batch.commit()

    first = producer.log[0][2]
    assert first is not None
    assert [e["command_id"] for e in json.loads(first)["outbox"]] == ["cmd-1", "cmd-2"]
    assert producer.topics() == [CHANGELOG, *[out.topic for out in outputs() * 2], CHANGELOG]
    assert batch.seen == {("ref-1", "cmd-1"), ("ref-1", "cmd-2")}


async def test_after_a_crash_the_replay_sends_the_recorded_outputs_byte_for_byte() -> None:
    rows = MemoryRows()
    crashed = Worker(FakeProducer(), rows)

    def crash(agent: str) -> None:
        raise Crash(agent)

    batch = crashed.batch(after_state=crash)
    batch.apply("ref-1", 0, Record(referral_id="ref-1", step=1), outputs(), command(), delete=False)
    with pytest.raises(Crash):
        await batch.commit()
    assert crashed.producer.topics() == [CHANGELOG]  # the state, not its outputs

    # the restarted worker reads the row back and meets the same command again
    stored = rows.get("ref-1")
    assert [e["command_id"] for e in stored_outbox(stored)] == ["cmd-1"]
    again = replayed(stored, command())
    assert again == outputs()
    assert replayed(stored, command(2)) is None  # another command decides anew

    producer = FakeProducer()
    restarted = Worker(producer, rows)
    replay = restarted.batch()
    replay.send(command(), again, key="ref-1")
    await replay.commit()
    assert [(t, k, v) for t, k, v, _ in producer.log] == [
        (out.topic, out.key.encode(), out.value) for out in outputs()
    ]


async def test_a_deleted_row_is_deleted_only_after_its_outputs() -> None:
    producer = FakeProducer()
    rows = MemoryRows()
    rows.data["ref-1"] = {"referral_id": "ref-1", "step": 9, "outbox": []}
    batch = Worker(producer, rows).batch()
    batch.apply("ref-1", 2, None, outputs(), command(), delete=True)
    assert "ref-1" not in rows.data  # later commands of the batch see it gone
    await batch.commit()

    assert producer.topics() == [ORG_TOPIC, CLINIC_TOPIC, CHANGELOG]
    assert producer.log[-1] == (CHANGELOG, b"ref-1", None, 2)


async def test_outputs_the_broker_refuses_become_internal_dead_letters() -> None:
    producer = FakeProducer(refused={ORG_TOPIC})
    worker = Worker(producer)
    batch = worker.batch()
    batch.apply("ref-1", 0, Record(referral_id="ref-1", step=1), outputs(), command(), delete=False)
    await batch.commit()

    letters = producer.on(TOPICS.deadletter)
    assert len(letters) == 1
    letter = letters[0][2]
    assert letter is not None
    error = json.loads(letter)["error"]
    assert error["kind"] == DeadLetterKind.INTERNAL.value
    assert "its outputs could not be produced" in error["message"]
    assert worker.observer.dead == [DeadLetterKind.INTERNAL.value]
    assert worker.observer.retries == 4
    assert worker.fatal == []
    # the state went first, the dead letter after every try
    assert producer.topics()[0] == CHANGELOG


async def test_outputs_for_a_topic_that_does_not_exist_are_undeliverable_dead_letters() -> None:
    producer = FakeProducer()
    worker = Worker(producer)
    gone = Outgoing(TOPICS.org_referrals("deprovisioned"), "ref-1", b"{}", "referral.offered")
    await worker.delivery.deliver([(command(), [gone, outputs()[1]])], "referrals")

    assert producer.topics() == [TOPICS.deadletter, CLINIC_TOPIC]
    letter = producer.log[0][2]
    assert letter is not None
    assert json.loads(letter)["error"]["kind"] == DeadLetterKind.UNDELIVERABLE.value
    assert worker.known.looks == 1  # a party provisioned a moment ago would be found
    assert worker.observer.dead == [DeadLetterKind.UNDELIVERABLE.value]


async def test_a_broker_refusing_even_the_dead_letters_stops_the_worker() -> None:
    producer = FakeProducer(refused={ORG_TOPIC, TOPICS.deadletter})
    worker = Worker(producer)
    await worker.delivery.deliver([(command(), outputs())], "referrals")
    assert worker.fatal == ["referrals: the broker refuses every message"]


async def test_a_changelog_that_refuses_writes_stops_the_worker_before_any_output() -> None:
    producer = FakeProducer(refused={CHANGELOG})
    worker = Worker(producer)

    def stop(reason: str) -> None:  # fatal() ends the process: nothing after it runs
        raise Crash(reason)

    worker.changelog = Changelog(producer, backoff=QUICK, on_fatal=stop)
    batch = worker.batch()
    batch.apply("ref-1", 0, Record(referral_id="ref-1", step=1), outputs(), command(), delete=False)
    with pytest.raises(Crash, match="a changelog refuses writes"):
        await batch.commit()
    assert producer.log == []
