"""Referral ids in the patient's partition (issue 21), without a broker: the patient
owner gives a screening's referral a network id that Kafka's default partitioner
puts where the patient's record lives, the same id on every replay, and every
later command about the referral goes to that id."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from schemas.codes import Category
from schemas.events import ConsentUpdated
from streams.decisions.commands import (
    MAX_ID_LENGTH,
    REFERRAL_COMMAND,
    AlertReferral,
    CancelReferral,
    ForgetReferral,
    OpenReferral,
    PatientEncounter,
    Placement,
    ReferralClosed,
    UpdateConsent,
    key_partition,
    murmur2,
    network_referral_id,
    placed_referral_id,
)
from streams.decisions.outputs import Outgoing
from streams.decisions.patients import PatientRecord, decide
from tests.streams.fixtures import (
    CLINIC,
    FOOD_ONLY,
    PATIENT_ID,
    T0,
    TOPICS,
    cancelled,
    eid,
    requested,
    screening,
)
from tests.streams.test_encounters import encounter
from tests.streams.test_patients import submit

PATIENT = f"{CLINIC}:{PATIENT_ID}"
FOOD_REFERRAL = "scr-1.food-insecurity"
PLAIN = network_referral_id(CLINIC, FOOD_REFERRAL)


def test_murmur2_is_kafkas_default_partitioners_hash() -> None:
    rng = random.Random(21)
    samples = [bytes(rng.randrange(256) for _ in range(rng.randrange(40))) for _ in range(3000)]
    samples += [b"", PLAIN.encode(), "é~ü".encode()]
    assert [murmur2(s) for s in samples] == [aiokafka_murmur2(s) for s in samples]


@pytest.mark.parametrize("partitions", [2, 3, 8, 24])
def test_a_placed_id_lands_in_every_asked_partition_and_is_the_same_each_time(
    partitions: int,
) -> None:
    for partition in range(partitions):
        placement = Placement(partitions=partitions, partition=partition)
        placed = placed_referral_id(CLINIC, FOOD_REFERRAL, placement)
        assert key_partition(placed, partitions) == partition
        assert placed == placed_referral_id(CLINIC, FOOD_REFERRAL, placement)
        if key_partition(PLAIN, partitions) == partition:
            assert placed == PLAIN  # it lands there already: unchanged
        else:
            assert placed.startswith(f"{PLAIN}~")


def test_without_a_placement_or_with_one_partition_the_id_is_the_plain_one() -> None:
    assert placed_referral_id(CLINIC, FOOD_REFERRAL, None) == PLAIN
    assert placed_referral_id(CLINIC, FOOD_REFERRAL, Placement(1, 0)) == PLAIN


def test_a_placed_id_of_a_longest_id_still_fits_and_lands() -> None:
    long_id = "r" * MAX_ID_LENGTH
    for partition in range(5):
        placed = placed_referral_id(CLINIC, long_id, Placement(5, partition))
        assert len(placed) <= MAX_ID_LENGTH
        assert key_partition(placed, 5) == partition


def _opens(outputs: list[Outgoing]) -> list[OpenReferral]:
    commands = [
        REFERRAL_COMMAND.validate_json(o.value) for o in outputs if o.label == "command.open"
    ]
    return [c for c in commands if isinstance(c, OpenReferral)]


def _screened(placement: Placement) -> tuple[PatientRecord, OpenReferral, Outgoing]:
    decision = decide(
        None, submit(screening(answers=FOOD_ONLY)), topics=TOPICS, placement=placement
    )
    assert decision.record is not None
    (opening,) = _opens(decision.outputs)
    (out,) = [o for o in decision.outputs if o.label == "command.open"]
    return decision.record, opening, out


def _away() -> Placement:
    """A placement the plain id does not land in."""
    return Placement(3, (key_partition(PLAIN, 3) + 1) % 3)


def test_a_screenings_referral_opens_under_its_placed_id_and_the_clinic_keeps_its_own() -> None:
    placement = _away()
    record, opening, out = _screened(placement)
    placed = placed_referral_id(CLINIC, FOOD_REFERRAL, placement)
    assert placed != PLAIN
    assert (out.topic, out.key) == (TOPICS.network_referrals, placed)
    assert opening.referral_id == placed and opening.command_id == f"open:{placed}"
    assert opening.clinic_referral_id == FOOD_REFERRAL
    assert record.open == {Category.FOOD_INSECURITY: FOOD_REFERRAL}
    assert record.network_ids == {FOOD_REFERRAL: placed}
    # replayed on no record (a crash lost it): the same id
    assert _screened(placement)[1].referral_id == placed


def test_later_commands_of_the_clinic_go_to_the_placed_id() -> None:
    placement = _away()
    record, opening, _ = _screened(placement)
    placed = opening.referral_id

    cancel = decide(record, submit(cancelled(FOOD_REFERRAL, event=3)), topics=TOPICS)
    (out,) = cancel.outputs
    command = REFERRAL_COMMAND.validate_json(out.value)
    assert isinstance(command, CancelReferral)
    assert (out.key, command.referral_id) == (placed, placed)

    withdrawn = ConsentUpdated.new(
        patient_id=PATIENT_ID, consent={"granted": False}, occurred_at=T0 + timedelta(hours=1)
    )
    consent = decide(record, submit(withdrawn), topics=TOPICS)
    updates = [REFERRAL_COMMAND.validate_json(o.value) for o in consent.outputs]
    assert [(type(c), c.referral_id) for c in updates] == [(UpdateConsent, placed)]

    seen = PatientEncounter(command_id=f"encounter:{eid(500)}", encounter=encounter())
    alerts = decide(record, seen, topics=TOPICS, key=PATIENT, now=T0 + timedelta(hours=2))
    to_referral = [o for o in alerts.outputs if o.topic == TOPICS.network_referrals]
    assert [o.key for o in to_referral] == [placed]
    assert isinstance(REFERRAL_COMMAND.validate_json(to_referral[0].value), AlertReferral)


def test_a_closed_and_forgotten_referral_forgets_its_placed_id() -> None:
    record, opening, _ = _screened(_away())
    closed = ReferralClosed(
        command_id="closed-1", referral_id=FOOD_REFERRAL, category=Category.FOOD_INSECURITY
    )
    after = decide(record, closed, topics=TOPICS).record
    assert after is not None and after.network_ids == {FOOD_REFERRAL: opening.referral_id}
    forget = ForgetReferral(command_id="forget-1", referral_id=FOOD_REFERRAL)
    decision = decide(after, forget, topics=TOPICS)
    assert decision.delete  # nothing open, nothing remembered: the row goes
    assert decision.record is not None and decision.record.network_ids == {}


def test_a_clinicians_referral_keeps_its_scoped_id_and_takes_the_hop() -> None:
    decision = decide(None, submit(requested("ref-42")), topics=TOPICS, placement=_away())
    (opening,) = _opens(decision.outputs)
    assert opening.referral_id == network_referral_id(CLINIC, "ref-42")
    assert decision.record is not None and decision.record.network_ids == {}
