"""A screening's referral decided in the patients agent's batch (issue 21), without a
broker: both tables' rows durable in one wait before any output, the offer sent with
no hop through the referral commands' topic, and a crash at any point of the batch
neither loses the offer nor sends a second one."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest

from schemas.events import ReferralOffered, from_bytes
from streams.decisions.commands import (
    Placement,
    encode,
    key_partition,
    network_referral_id,
    placed_referral_id,
)
from streams.runtime.agents import Agents
from streams.runtime.gaps import RawEvent, RawMessage
from streams.runtime.hooks import Hooks
from tests.streams.fixtures import CLINIC, FOOD_ONLY, PATIENT_ID, TOPICS, screening
from tests.streams.test_agents import agents, network
from tests.streams.test_outbox import CHANGELOG, Crash, FakeProducer, MemoryRows, Worker
from tests.streams.test_patients import submit
from tests.streams.test_referrals import ES_ORG, SVC_EN, SVC_ES, org_says

PATIENT_CHANGELOG = "refnet-patients-changelog"
PATIENT = f"{CLINIC}:{PATIENT_ID}"
PARTITIONS = 3
HOME = key_partition(PATIENT, PARTITIONS)
#: a screening whose plain referral id lands in another partition than the patient
SCREENING = "scr-2"
FOOD_REFERRAL = f"{SCREENING}.food-insecurity"
PLACED = placed_referral_id(CLINIC, FOOD_REFERRAL, Placement(PARTITIONS, HOME))
OFFERS = TOPICS.org_referrals(ES_ORG)


class PatientRows(MemoryRows):
    """The patients table, with a changelog of its own."""

    def changelog(
        self, key: str, value: dict[str, Any] | None
    ) -> tuple[str, bytes | None, bytes | None]:
        return (
            PATIENT_CHANGELOG,
            key.encode(),
            None if value is None else json.dumps(value).encode(),
        )


def owner(worker: Worker, *services: Any, hooks: Hooks | None = None) -> Agents:
    """The agents of a worker whose command topics have PARTITIONS partitions each."""
    made = agents(worker, network(*services), hooks)
    made.partitions = PARTITIONS
    made.referral_rows = worker.rows
    return made


def screened(offset: int = 0) -> RawEvent:
    command = submit(screening(SCREENING, answers=FOOD_ONLY))
    message = RawMessage(TOPICS.network_patients, HOME, offset, PATIENT.encode(), encode(command))
    return RawEvent(message)


def to_owner(key: str, value: bytes) -> RawEvent:
    partition = key_partition(key, PARTITIONS)
    return RawEvent(RawMessage(TOPICS.network_referrals, partition, 0, key.encode(), value))


async def screen(agents_: Agents, patients: PatientRows, *events: RawEvent) -> None:
    await agents_.apply_events(events, patients, "patients", agents_.handle_patient)


async def refer(agents_: Agents, rows: MemoryRows, *events: RawEvent) -> None:
    await agents_.apply_events(events, rows, "referrals", agents_.handle_referral)


def outputs(producer: FakeProducer) -> list[tuple[str, bytes | None, bytes | None]]:
    """What went out besides the two tables' changelogs."""
    return [(t, k, v) for t, k, v, _ in producer.log if t not in {CHANGELOG, PATIENT_CHANGELOG}]


def offers(producer: FakeProducer) -> list[ReferralOffered]:
    found = [from_bytes(v) for t, _, v in outputs(producer) if t == OFFERS and v is not None]
    return [e for e in found if isinstance(e, ReferralOffered)]


def crash(agent: str) -> None:
    raise Crash(agent)


def test_the_placed_id_is_not_the_plain_one_here() -> None:
    """The cases below exercise a suffixed id, not one that landed by chance."""
    assert network_referral_id(CLINIC, FOOD_REFERRAL) != PLACED


async def test_a_screenings_offer_goes_out_from_the_patients_batch_after_both_rows() -> None:
    producer = FakeProducer()
    worker = Worker(producer)
    patients = PatientRows()
    agents_ = owner(worker, SVC_EN, SVC_ES)
    await screen(agents_, patients, screened())

    topics = producer.topics()
    first_output = next(i for i, t in enumerate(topics) if t not in {CHANGELOG, PATIENT_CHANGELOG})
    assert set(topics[:first_output]) == {CHANGELOG, PATIENT_CHANGELOG}  # both rows first
    assert TOPICS.network_referrals not in topics  # no hop
    (offer,) = offers(producer)
    assert offer.referral_id == PLACED
    row = worker.rows.data[PLACED]
    assert row["partition"] == HOME and row["outbox"] == []
    assert patients.data[PATIENT]["outbox"] == []
    assert patients.data[PATIENT]["network_ids"] == {FOOD_REFERRAL: PLACED}
    # the owner's bookkeeping, as for a referral it received: holder and deadline
    assert agents_.net.holder_of == {PLACED: ES_ORG}
    assert agents_.net.deadlines.due_of(PLACED) is not None
    # what the patient's outbox recorded: the open, kept for a replay
    changelog = [v for t, _, v, _ in producer.log if t == PATIENT_CHANGELOG and v is not None]
    recorded = json.loads(changelog[0])["outbox"][0]["messages"]
    assert [(m["topic"], m["key"]) for m in recorded if m["label"] == "command.open"] == [
        (TOPICS.network_referrals, PLACED)
    ]


async def test_without_a_shared_partition_count_the_referral_takes_the_hop() -> None:
    producer = FakeProducer()
    worker = Worker(producer)
    agents_ = owner(worker, SVC_EN, SVC_ES)
    agents_.partitions = None
    await screen(agents_, PatientRows(), screened())
    plain = network_referral_id(CLINIC, FOOD_REFERRAL)
    assert [k for t, k, _ in outputs(producer) if t == TOPICS.network_referrals] == [plain.encode()]
    assert offers(producer) == [] and worker.rows.data == {}


async def _crashed(patients: PatientRows, rows: MemoryRows) -> list[dict[str, Any]]:
    """A screening's batch dies after both rows are durable, before any output;
    returns the offer's recorded messages."""
    first = Worker(FakeProducer(), rows)
    with pytest.raises(Crash):
        await screen(
            owner(first, SVC_EN, SVC_ES, hooks=Hooks(after_state=crash)), patients, screened()
        )
    assert outputs(first.producer) == []
    recorded: list[dict[str, Any]] = rows.data[PLACED]["outbox"][0]["messages"]
    assert any(m["topic"] == OFFERS for m in recorded)
    return recorded


async def test_a_replay_after_a_crash_sends_the_recorded_offer_once_through_the_owner() -> None:
    patients, rows = PatientRows(), MemoryRows()
    recorded = await _crashed(patients, rows)

    # restarted, the directory changed: the patient's recorded outputs go out as they
    # were, the open through the referral commands' topic this time
    producer = FakeProducer()
    again = owner(Worker(producer, rows), SVC_EN)
    await screen(again, patients, screened())
    opens = [(k, v) for t, k, v in outputs(producer) if t == TOPICS.network_referrals]
    assert [k for k, _ in opens] == [PLACED.encode()]
    assert offers(producer) == []

    # the owner finds the referral's own recorded offer: the same bytes, once
    owner_producer = FakeProducer()
    at_owner = owner(Worker(owner_producer, rows), SVC_EN)
    _key, value = opens[0]
    assert value is not None
    await refer(at_owner, rows, to_owner(PLACED, value))
    assert [(t, k, v) for t, k, v in outputs(owner_producer)] == [
        (m["topic"], m["key"].encode(), m["value"].encode()) for m in recorded
    ]

    # and the open once more (the patient's outbox still held it): at most the same
    # bytes again, never an offer with a new event id
    later = FakeProducer()
    await refer(owner(Worker(later, rows), SVC_EN), rows, to_owner(PLACED, value))
    assert {o.event_id for o in offers(later)} <= {o.event_id for o in offers(owner_producer)}


async def test_a_replay_with_only_the_referrals_row_sends_its_recorded_offer_in_one_hop() -> None:
    patients, rows = PatientRows(), MemoryRows()
    recorded = await _crashed(patients, rows)
    del patients.data[PATIENT]  # its changelog write was lost; the referral's was not

    producer = FakeProducer()
    await screen(owner(Worker(producer, rows), SVC_EN), patients, screened())
    assert TOPICS.network_referrals not in producer.topics()
    sent = [(t, k, v) for t, k, v in outputs(producer) if t == OFFERS]
    assert sent == [
        (m["topic"], m["key"].encode(), m["value"].encode())
        for m in recorded
        if m["topic"] == OFFERS
    ]
    assert PLACED in patients.data[PATIENT]["network_ids"].values()


async def test_a_replay_with_only_the_patients_row_opens_the_referral_at_its_owner() -> None:
    patients, rows = PatientRows(), MemoryRows()
    await _crashed(patients, rows)
    del rows.data[PLACED]  # its changelog write was lost; the patient's was not

    producer = FakeProducer()
    again = owner(Worker(producer, rows), SVC_EN, SVC_ES)
    await screen(again, patients, screened())
    opens = [v for t, k, v in outputs(producer) if t == TOPICS.network_referrals]
    assert len(opens) == 1 and offers(producer) == []
    owner_producer = FakeProducer()
    assert opens[0] is not None
    await refer(
        owner(Worker(owner_producer, rows), SVC_EN, SVC_ES), rows, to_owner(PLACED, opens[0])
    )
    assert [o.referral_id for o in offers(owner_producer)] == [PLACED]


class HeldProducer(FakeProducer):
    """Holds the acknowledgement of the patients' changelog until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.holding = asyncio.Event()

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None
    ) -> asyncio.Future[None]:
        ack = await super().send(topic, key, value, partition)
        if topic != PATIENT_CHANGELOG or self.release.is_set():
            return ack
        self.holding.set()
        held: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def later() -> None:
            await self.release.wait()
            held.set_result(None)

        asyncio.get_running_loop().create_task(later())
        return held


async def test_the_referrals_agent_waits_for_a_patients_batch_that_staged_a_referral() -> None:
    producer = HeldProducer()
    worker = Worker(producer)
    agents_ = owner(worker, SVC_EN, SVC_ES)
    patients_batch = asyncio.create_task(screen(agents_, PatientRows(), screened()))
    await producer.holding.wait()  # the referral's row is staged, not yet durable
    assert PLACED in worker.rows.data

    accepted = org_says(ES_ORG, "accepted", referral_id=PLACED)
    referrals_batch = asyncio.create_task(
        refer(agents_, worker.rows, to_owner(PLACED, encode(accepted)))
    )
    for _ in range(20):
        await asyncio.sleep(0)
    assert not referrals_batch.done()
    assert worker.rows.data[PLACED]["status"] != "accepted"
    assert outputs(producer) == []  # nothing before the state that explains it

    producer.release.set()
    await asyncio.gather(patients_batch, referrals_batch)
    labels = [t for t, _, _ in outputs(producer) if t == OFFERS]
    assert labels  # the offer, then what the acceptance sent, in that order
    sent = [from_bytes(v).event_type for t, _, v in outputs(producer) if t == OFFERS and v]
    assert sent[0] == "referral.offered"
    assert "referral.status-recorded" in sent[1:]
    assert worker.rows.data[PLACED]["outbox"] == []


class Metadata:
    """An aiokafka producer's view of the topics' partitions."""

    def __init__(self, counts: dict[str, int] | None) -> None:
        self.counts = counts

    async def partitions_for(self, topic: str) -> set[int]:
        if self.counts is None:
            raise ConnectionError("no broker")
        return set(range(self.counts[topic]))


def with_metadata(counts: dict[str, int] | None) -> Any:
    net = network()
    net.app.producer = SimpleNamespace(_ensure_producer=lambda: Metadata(counts))
    return net


async def test_the_partition_count_is_read_once_and_only_a_shared_one_places_referrals() -> None:
    names = (TOPICS.network_patients, TOPICS.network_referrals)
    same = with_metadata({names[0]: 6, names[1]: 6})
    assert await same.shared_partition_count(*names) == 6
    different = with_metadata({names[0]: 6, names[1]: 3})
    assert await different.shared_partition_count(*names) is None
    assert await with_metadata(None).shared_partition_count(*names) is None
