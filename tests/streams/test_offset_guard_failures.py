"""The offset guard never lets an agent go past a hole it has not filled, without a
broker: a read-back that fails is tried again, then the batch fails unacknowledged
(the worker stops); a hole larger than one read is read whole."""

from __future__ import annotations

from typing import Any

import pytest

from streams.decisions.commands import encode
from streams.runtime import gaps
from streams.runtime.agents import Agents
from streams.runtime.gaps import OffsetGuard, RawEvent, RawMessage
from streams.runtime.hooks import Hooks
from tests.streams.fixtures import T0, TOPICS
from tests.streams.test_agents import EVERY_TOPIC, event, network
from tests.streams.test_outbox import QUICK, FakeProducer, Worker
from tests.streams.test_referrals import NET, SVC_EN, SVC_ES, open_command


class FlakyGuard:
    """Fails ``failures`` read-backs, then finds the command at offset 0 skipped."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.applied_offsets: list[int] = []

    async def missed(self, event: Any, agent: str = "") -> list[Any]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker away")
        if event.message.offset > 0:
            return [_event_at(0)]
        return []

    def applied(self, event: Any) -> None:
        self.applied_offsets.append(event.message.offset)


def _event_at(offset: int) -> RawEvent:
    return event(encode(open_command()), offset=offset)


def owner(worker: Worker, guard: Any, fatal: list[str]) -> Agents:
    worker.known.topic_names = EVERY_TOPIC
    return Agents(
        network(SVC_EN, SVC_ES),
        changelog=worker.changelog,
        delivery=worker.delivery,
        guard=guard,
        observer=worker.observer,
        clock=lambda: T0,
        hooks=Hooks(),
        acknowledge=lambda record: None,
        guard_backoff=QUICK,
        on_fatal=fatal.append,
    )


async def test_a_failed_read_back_is_tried_again_and_the_hole_applied_first() -> None:
    producer = FakeProducer()
    worker = Worker(producer)
    guard = FlakyGuard(failures=2)
    fatal: list[str] = []
    agents = owner(worker, guard, fatal)
    poke = event(gaps.POKE, offset=1)

    await agents.apply_events([poke], worker.rows, "referrals", agents.handle_referral)

    assert guard.applied_offsets == [0, 1], "the skipped command was never applied"
    assert NET in worker.rows.data
    assert fatal == []


async def test_a_read_back_that_keeps_failing_fails_the_batch_unacknowledged() -> None:
    producer = FakeProducer()
    worker = Worker(producer)
    guard = FlakyGuard(failures=1_000)
    fatal: list[str] = []
    agents = owner(worker, guard, fatal)
    poke = event(gaps.POKE, offset=1)

    with pytest.raises(Exception):  # noqa: B017 - the batch fails, whatever the error
        await agents.apply_events([poke], worker.rows, "referrals", agents.handle_referral)

    assert guard.applied_offsets == [], "the guard moved past a hole it never filled"
    assert producer.log == []
    assert fatal and "offset" in fatal[0]


async def test_a_hole_larger_than_one_read_is_read_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gaps, "MAX_FILL", 2)
    guard = OffsetGuard("", "group", generation=lambda: 1)

    async def next_offset(topic: str, partition: int) -> int:
        return 0

    async def read(topic: str, partition: int, start: int, end: int) -> list[RawEvent]:
        end = min(end, start + gaps.MAX_FILL)  # as the broker read does
        return [RawEvent(RawMessage(topic, partition, o, b"k", b"v")) for o in range(start, end)]

    monkeypatch.setattr(guard, "next_offset", next_offset)
    monkeypatch.setattr(guard, "_read", read)
    missed = await guard.missed(RawEvent(RawMessage(TOPICS.network_referrals, 0, 5, b"k", b"v")))
    assert [r.message.offset for r in missed] == [0, 1, 2, 3, 4]
