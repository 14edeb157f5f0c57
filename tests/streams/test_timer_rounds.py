"""The worker's deadline round, without a broker: a deadline leaves the index only
once the owner has moved the referral on; a send that fails or is never confirmed,
and a record that does not read, put it back."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition

from connectors.observability.observer import NullObserver
from streams.decisions.network_state import NetworkState
from streams.decisions.referrals import fail
from streams.runtime.config import NetworkConfig
from streams.runtime.network import Network, partition_of_key
from streams.runtime.timers import Timers
from tests.streams.fixtures import T0, TOPICS
from tests.streams.test_referrals import ctx, open_command, opened

OTHER = "clinic-b:ref-9"


class BrokerAway(Exception):
    pass


class CommandTopic:
    """The referral commands' topic: ``refuse`` sends raise, ``unconfirmed`` ones are
    handed over but their acknowledgement fails."""

    def __init__(self, refuse: int = 0, unconfirmed: int = 0) -> None:
        self.refuse = refuse
        self.unconfirmed = unconfirmed
        self.sent: list[bytes] = []

    async def send(self, *, key: bytes, value: bytes) -> asyncio.Future[None]:
        if self.refuse:
            self.refuse -= 1
            raise BrokerAway("request timed out")
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.unconfirmed:
            self.unconfirmed -= 1
            ack.set_exception(BrokerAway("not acknowledged"))
        else:
            self.sent.append(key)
            ack.set_result(None)
        return ack


def round_of(table: dict[str, Any], topic: CommandTopic, now: datetime) -> Timers:
    assigned = {TopicPartition(TOPICS.network_referrals, 3)}
    app: Any = SimpleNamespace(assignor=SimpleNamespace(assigned_actives=lambda: assigned))
    view: Any = SimpleNamespace(state=NetworkState())
    net = Network(app=app, config=NetworkConfig(), topics=TOPICS, bootstrap="", view=view)
    guard: Any = None
    return Timers(net, table, topic, guard, observer=NullObserver(), clock=lambda: now)


def due_offers() -> tuple[dict[str, Any], datetime]:
    record = opened()
    other = record.model_copy(update={"referral_id": OTHER})
    respond_by = record.pending_deadline()
    assert respond_by is not None
    table = {r.referral_id: r.model_dump(mode="json") for r in (record, other)}
    return table, respond_by


async def test_a_send_that_raises_loses_no_deadline() -> None:
    table, respond_by = due_offers()
    topic = CommandTopic(refuse=1)
    timers = round_of(table, topic, respond_by)
    for rid in table:
        timers.net.deadlines.set(3, rid, respond_by)

    await timers.tick()

    assert set(timers.net.deadlines.partitions()) == {3}
    assert {d.referral_id for d in timers.net.deadlines} == set(table), "deadlines lost"


async def test_an_unconfirmed_send_is_sent_again_after_a_backoff() -> None:
    table, respond_by = due_offers()
    del table[OTHER]
    topic = CommandTopic(unconfirmed=1)
    timers = round_of(table, topic, respond_by)
    [rid] = table
    timers.net.deadlines.set(3, rid, respond_by)

    await timers.tick()
    assert topic.sent == []
    again = timers.net.deadlines.due_of(rid)
    assert again is not None and again > respond_by, "the unconfirmed timeout was forgotten"

    timers.clock = lambda: again
    await timers.tick()
    assert topic.sent == [rid.encode()]


async def test_a_record_that_does_not_read_keeps_its_deadline_and_the_others_go() -> None:
    table, respond_by = due_offers()
    table[OTHER]["status"] = "no-such-status"
    topic = CommandTopic()
    timers = round_of(table, topic, respond_by)
    for rid in sorted(table, reverse=True):  # the broken record first in the round
        timers.net.deadlines.set(3, rid, respond_by)

    await timers.tick()

    assert topic.sent == [opened().referral_id.encode()]
    assert OTHER in timers.net.deadlines


async def test_a_sent_command_keeps_its_deadline_until_the_owner_moves_the_referral_on() -> None:
    table, respond_by = due_offers()
    topic = CommandTopic()
    timers = round_of(table, topic, respond_by)
    for rid in table:
        timers.net.deadlines.set(3, rid, respond_by)

    await timers.tick()
    assert len(topic.sent) == 2
    # the commands may be lost on their way to the owner: looked at again later
    assert {d.referral_id for d in timers.net.deadlines} == set(table)
    assert all(d.due > respond_by for d in timers.net.deadlines)
    # nothing is due again at once
    await timers.tick()
    assert len(topic.sent) == 2
    later = respond_by + timedelta(hours=1)
    timers.clock = lambda: later
    await timers.tick()
    assert len(topic.sent) == 4  # the owner never applied them: sent again


async def test_a_stored_referral_without_a_partition_is_indexed_on_its_keys() -> None:
    # rows written before every stored referral carried its partition: a referral
    # whose opening failed kept -1, which no timer owns and the rebuild skipped
    failed = fail(None, open_command(), ctx(), "KeyError").record
    assert failed is not None and failed.partition == -1
    table = {failed.referral_id: failed.model_dump(mode="json")}
    timers = round_of(table, CommandTopic(), T0)
    partitions = timers.net.config.partitions

    await timers.net.reload_deadlines(table, frozenset(range(partitions)))

    expected = partition_of_key(failed.referral_id, partitions)
    assert timers.net.deadlines.partition_of(failed.referral_id) == expected


async def test_a_timeout_sent_again_is_counted_once() -> None:
    table, respond_by = due_offers()
    del table[OTHER]
    counted: list[str] = []

    class Counting(NullObserver):
        def offer_timed_out(self) -> None:
            counted.append("timeout")

    timers = round_of(table, CommandTopic(), respond_by)
    timers.observer = Counting()
    [rid] = table
    timers.net.deadlines.set(3, rid, respond_by)
    await timers.tick()
    later = respond_by + timedelta(hours=1)
    timers.clock = lambda: later
    await timers.tick()
    assert counted == ["timeout"]
