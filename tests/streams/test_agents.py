"""The referral owner's handling of a batch, without a broker: what it decides goes
out after the state, a replay re-sends the recorded bytes, and what it cannot
read or decide is dead-lettered."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from schemas.codes import DeadLetterKind
from streams.decisions.commands import encode, network_referral_id
from streams.decisions.network_state import NetworkState
from streams.runtime.agents import Agents
from streams.runtime.config import NetworkConfig
from streams.runtime.gaps import POKE, RawEvent, RawMessage
from streams.runtime.hooks import Hooks
from streams.runtime.network import Network
from tests.streams.fixtures import T0, TOPICS
from tests.streams.test_outbox import CHANGELOG, Crash, FakeProducer, MemoryRows, Worker
from tests.streams.test_referrals import (
    CLINIC,
    ES_ORG,
    NET,
    SVC_EN,
    SVC_ES,
    open_command,
    org_says,
)


class Everything(frozenset[str]):
    """Every topic exists."""

    def __contains__(self, name: object) -> bool:
        return True


EVERY_TOPIC = Everything({TOPICS.deadletter})


class NoGaps:
    """An offset guard that finds nothing skipped."""

    async def missed(self, event: Any, agent: str = "") -> list[Any]:
        return []

    def applied(self, event: Any) -> None:
        pass


def network(*services: Any) -> Network:
    state = NetworkState()
    for service in services:
        state.upsert(service)
    app: Any = SimpleNamespace()  # the agents' handlers never reach the Faust app
    view: Any = SimpleNamespace(state=state)
    return Network(app=app, config=NetworkConfig(), topics=TOPICS, bootstrap="", view=view)


def agents(worker: Worker, net: Network, hooks: Hooks | None = None) -> Agents:
    worker.known.topic_names = EVERY_TOPIC
    guard: Any = NoGaps()
    return Agents(
        net,
        changelog=worker.changelog,
        delivery=worker.delivery,
        guard=guard,
        observer=worker.observer,
        clock=lambda: T0,
        hooks=hooks or Hooks(),
        acknowledge=lambda record: None,
    )


def event(value: bytes, *, key: str = NET, offset: int = 0) -> RawEvent:
    message = RawMessage(TOPICS.network_referrals, 3, offset, key.encode(), value)
    return RawEvent(message)


def sent(producer: FakeProducer) -> list[tuple[str, bytes | None, bytes | None]]:
    """What went out besides the table's changelog."""
    return [(t, k, v) for t, k, v, _ in producer.log if t != CHANGELOG]


async def apply(owner: Agents, rows: MemoryRows, *events: RawEvent) -> None:
    await owner.apply_events(events, rows, "referrals", owner.handle_referral)


async def test_an_open_is_offered_after_its_state_and_its_deadline_is_kept() -> None:
    producer = FakeProducer()
    worker = Worker(producer)
    net = network(SVC_EN, SVC_ES)
    await apply(agents(worker, net), worker.rows, event(encode(open_command())))

    assert producer.topics()[0] == CHANGELOG
    assert TOPICS.org_referrals(ES_ORG) in producer.topics()[1:]
    assert net.holder_of == {NET: ES_ORG}
    assert net.deadlines.due_of(NET) is not None
    assert worker.rows.data[NET]["outbox"] == []


async def test_a_replay_after_a_crash_re_sends_the_recorded_offer_whatever_changed() -> None:
    rows = MemoryRows()
    first = Worker(FakeProducer(), rows)

    def crash(agent: str) -> None:
        raise Crash(agent)

    opening = event(encode(open_command()))
    with pytest.raises(Crash):
        await apply(agents(first, network(SVC_EN, SVC_ES), Hooks(after_state=crash)), rows, opening)
    assert sent(first.producer) == []
    recorded = rows.data[NET]["outbox"][0]["messages"]

    # restarted: the directory lost the service that won; the recorded offer still goes
    producer = FakeProducer()
    again = Worker(producer, rows)
    await apply(agents(again, network(SVC_EN)), rows, opening)
    assert [
        (t, k.decode() if k else None, v.decode() if v else None) for t, k, v in sent(producer)
    ] == [(m["topic"], m["key"], m["value"]) for m in recorded]


async def test_a_command_repeated_in_a_batch_and_a_poke_have_no_effect() -> None:
    opening = encode(open_command())
    alone = Worker(FakeProducer())
    await apply(agents(alone, network(SVC_EN, SVC_ES)), alone.rows, event(opening))

    producer = FakeProducer()
    worker = Worker(producer)
    repeated = (event(opening), event(POKE, offset=1), event(opening, offset=2))
    await apply(agents(worker, network(SVC_EN, SVC_ES)), worker.rows, *repeated)
    assert sent(producer) == sent(alone.producer) != []
    assert worker.rows.data == alone.rows.data


async def test_what_is_not_a_command_is_dead_lettered_as_validation() -> None:
    producer = FakeProducer()
    worker = Worker(producer)
    await apply(agents(worker, network()), worker.rows, event(b'{"kind":"nonsense"}'))

    [(topic, _, value)] = sent(producer)
    assert topic == TOPICS.deadletter and value is not None
    letter = json.loads(value)
    assert letter["error"]["kind"] == DeadLetterKind.VALIDATION.value
    assert letter["source"]["topic"] == TOPICS.network_referrals
    assert worker.rows.data == {}


async def test_a_decision_that_raises_ends_the_referral_and_is_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("bug")

    monkeypatch.setattr("streams.runtime.agents.decide_referral", broken)
    producer = FakeProducer()
    worker = Worker(producer)
    await apply(agents(worker, network(SVC_EN, SVC_ES)), worker.rows, event(encode(open_command())))

    assert producer.topics()[0] == CHANGELOG  # the failed referral is stored first
    assert worker.rows.data[NET]["status"] == "failed"


async def test_a_referral_whose_opening_failed_carries_its_partition_and_is_purged_in_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("bug")

    monkeypatch.setattr("streams.runtime.agents.decide_referral", broken)
    worker = Worker(FakeProducer())
    net = network(SVC_EN, SVC_ES)
    await apply(agents(worker, net), worker.rows, event(encode(open_command())))

    assert worker.rows.data[NET]["status"] == "failed"
    assert worker.rows.data[NET]["partition"] == 3, "no timer owns the failed referral"
    assert net.deadlines.partition_of(NET) == 3  # its retention's end, on its own partition


async def test_one_partys_event_id_never_removes_another_referrals_command_in_a_batch() -> None:
    worker = Worker(FakeProducer())
    owner = agents(worker, network(SVC_EN, SVC_ES))
    other = network_referral_id(CLINIC, "ref-2")
    await apply(
        owner,
        worker.rows,
        event(encode(open_command())),
        event(encode(open_command("ref-2")), key=other, offset=1),
    )
    first, second = (worker.rows.data[k]["offer"]["org_id"] for k in (NET, other))

    # each organization's answer chose the same event_id, in the same batch
    await apply(
        owner,
        worker.rows,
        event(encode(org_says(first, "accepted", event=10)), offset=2),
        event(
            encode(org_says(second, "accepted", event=10, referral_id=other)), key=other, offset=3
        ),
    )
    assert [worker.rows.data[k]["status"] for k in (NET, other)] == ["accepted", "accepted"]
