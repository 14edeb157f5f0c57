"""Encounters in the runtime's shells, without a broker: the ingress's routing of a
facility's message, the linkage agent's batches, the secret, the metrics."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client import REGISTRY

from connectors.observability.observer import PrometheusObserver
from schemas.events import (
    DeadLetter,
    EncounterNotified,
    EncounterRouted,
    MessageRefused,
    from_bytes,
    to_bytes,
)
from streams.decisions.commands import (
    LINKAGE_COMMAND,
    PATIENT_COMMAND,
    FindPatients,
    LinkPatient,
    SubmissionReceived,
    encode,
)
from streams.decisions.encounters import PATIENTS_PER_KEY, patient_keys
from streams.decisions.network_state import NetworkState
from streams.runtime.agents import Agents
from streams.runtime.config import NetworkConfig
from streams.runtime.gaps import RawEvent, RawMessage
from streams.runtime.ingress import answer, ingress_pattern, is_party_topic, route
from tests.schemas.examples import contract_example
from tests.streams.fixtures import CLINIC, PATIENT_ID, TOPICS, screening
from tests.streams.test_agents import agents, network
from tests.streams.test_ingress_route import message
from tests.streams.test_outbox import FakeProducer, Worker

HOSPITAL = "lincoln-hospital"
SECRET = b"a network secret of 32 bytes...!"
FACILITY = TOPICS.facility_submissions(HOSPITAL)


def notified(**patient: Any) -> bytes:
    document = contract_example("encounter.notified")
    document["patient"].update(patient)
    return json.dumps(document).encode()


# ------------------------------------------------------------------ the ingress
def test_the_ingress_reads_every_facilitys_submissions() -> None:
    assert is_party_topic(TOPICS, FACILITY)
    assert not is_party_topic(TOPICS, TOPICS.facility_updates(HOSPITAL))
    assert "facility" in ingress_pattern(TOPICS)


def test_an_encounter_goes_on_with_its_linkage_keys_and_without_the_patient() -> None:
    out = route(message(FACILITY, b"MRN-448812", notified()), TOPICS, NetworkState(), secret=SECRET)
    assert (out.topic, out.label) == (TOPICS.network_linkage, "command.find")
    command = LINKAGE_COMMAND.validate_json(out.value)
    assert isinstance(command, FindPatients)
    event = EncounterNotified.model_validate_json(notified())
    assert command.keys == patient_keys(SECRET, event.patient) and out.key == command.keys[0]
    assert command.strict and set(command.strict) < set(command.keys)
    assert command.encounter.facility_id == HOSPITAL
    assert (
        str(command.encounter.encounter_event_id)
        == contract_example("encounter.notified")["event_id"]
    )
    text = out.value.decode()
    for value in ("Ana", "Rivera", "1984-03-02", "10451", "7185550100", "MRN-448812", "V-2026"):
        assert value not in text


def test_a_clinics_patient_and_the_hospitals_share_a_key_though_written_differently() -> None:
    clinic = route(
        message(TOPICS.clinic_submissions(CLINIC), PATIENT_ID.encode(), to_bytes(screening())),
        TOPICS,
        NetworkState(),
        secret=SECRET,
    )
    submitted = PATIENT_COMMAND.validate_json(clinic.value)
    assert isinstance(submitted, SubmissionReceived)
    assert submitted.linkage_keys == patient_keys(SECRET, screening().patient)
    assert len(submitted.linkage_keys) > 2
    hospital = route(
        message(FACILITY, b"MRN-1", notified(given_name="ANA", phone="(718) 555-0100")),
        TOPICS,
        NetworkState(),
        secret=SECRET,
    )
    find = LINKAGE_COMMAND.validate_json(hospital.value)
    assert isinstance(find, FindPatients)
    assert find.keys == submitted.linkage_keys
    # another secret, other keys: parties who do not know it cannot compute them
    other = route(message(FACILITY, b"MRN-1", notified()), TOPICS, NetworkState(), secret=b"x" * 16)
    assert LINKAGE_COMMAND.validate_json(other.value).keys != find.keys  # type: ignore[union-attr]


def test_an_encounter_too_little_is_known_of_is_no_match_at_once() -> None:
    out = route(
        message(FACILITY, b"MRN-1", notified(postal_code=None, phone=None)),
        TOPICS,
        NetworkState(),
        secret=SECRET,
    )
    event = from_bytes(out.value)
    assert isinstance(event, EncounterRouted) and event.outcome == "no-match"
    assert out.label == "encounter.routed:no-match:none"


def test_without_a_secret_an_encounter_is_refused_as_internal_and_clinics_carry_no_keys() -> None:
    out = route(message(FACILITY, b"MRN-1", notified()), TOPICS, NetworkState())
    letter = from_bytes(out.value)
    assert isinstance(letter, DeadLetter) and letter.error.kind == "internal"
    clinic = route(
        message(TOPICS.clinic_submissions(CLINIC), b"p", to_bytes(screening())),
        TOPICS,
        NetworkState(),
    )
    command = PATIENT_COMMAND.validate_json(clinic.value)
    assert isinstance(command, SubmissionReceived) and command.linkage_keys == []


def test_a_facilitys_bad_message_is_answered_on_its_updates_topic() -> None:
    record = message(FACILITY, b"MRN-x", b"\xff not json {")
    out = route(record, TOPICS, NetworkState(), secret=SECRET)
    reply = answer(record, out, TOPICS)
    assert reply is not None
    assert (reply.topic, reply.key) == (TOPICS.facility_updates(HOSPITAL), "MRN-x")
    refused = from_bytes(reply.value)
    assert isinstance(refused, MessageRefused) and refused.error.kind == "decode"
    # an event a facility may not send is refused too
    wrong = message(FACILITY, b"MRN-x", to_bytes(screening()))
    letter = from_bytes(route(wrong, TOPICS, NetworkState(), secret=SECRET).value)
    assert isinstance(letter, DeadLetter) and letter.error.kind == "validation"


def test_patient_keys_need_the_secret_and_enough_of_the_patient() -> None:
    patient = screening().patient
    assert patient_keys(None, patient) == []
    assert len(patient_keys(SECRET, patient)) > 2  # strict and fuzzy keys
    assert patient_keys(SECRET, patient.model_copy(update={"birth_date": None})) == []


def test_a_worker_refuses_a_short_linkage_secret_and_never_shows_it() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        NetworkConfig(linkage_secret=b"short")
    assert "secret of 32" not in repr(NetworkConfig(linkage_secret=SECRET))


# ------------------------------------------------------------------ the linkage agent
def event(key: str, value: bytes, offset: int = 0) -> RawEvent:
    return RawEvent(RawMessage(TOPICS.network_linkage, 1, offset, key.encode(), value))


async def apply(owner: Agents, worker: Worker, *events: RawEvent) -> None:
    await owner.apply_events(events, worker.rows, "linkage", owner.handle_linkage)


class Counting(Worker):
    def __init__(self) -> None:
        super().__init__(FakeProducer())
        self.applied: list[tuple[str, str]] = []
        self.observer.command_applied = lambda a, k: self.applied.append((a, k))  # type: ignore[method-assign]


async def test_the_linkage_agent_keeps_links_and_counts_a_refused_one() -> None:
    worker = Counting()
    owner = agents(worker, network())
    links = [
        event("k", encode(LinkPatient(command_id=f"l{n}", patient=f"c:{n}")), n)
        for n in range(PATIENTS_PER_KEY + 1)
    ]
    await apply(owner, worker, *links)
    assert worker.rows.data["k"]["patients"] == [f"c:{n}" for n in range(PATIENTS_PER_KEY)]
    assert worker.applied.count(("linkage", "link-refused")) == 1


async def test_the_linkage_agent_passes_an_encounter_on_without_writing_a_row() -> None:
    worker = Counting()
    owner = agents(worker, network())
    find = FindPatients.model_validate(
        {
            "command_id": "find:x:0",
            "keys": ["k1", "k2"],
            "encounter": {
                "encounter_event_id": "7b6a5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d",
                "facility_id": HOSPITAL,
                "event": "admit",
                "encounter_class": "IMP",
                "encounter_at": "2026-11-26T22:10:00-05:00",
                "received_at": "2026-11-27T03:12:09Z",
            },
        }
    )
    await apply(owner, worker, event("k1", encode(find)))
    assert "k1" not in worker.rows.data
    sent = [(t, k) for t, k, _, _ in worker.producer.log]
    assert sent == [(TOPICS.network_linkage, b"k2")]


# ------------------------------------------------------------------ the metrics
def test_encounters_routed_are_counted_by_outcome_and_recipient_kind_only() -> None:
    def count(outcome: str, recipient: str) -> float:
        labels = {"outcome": outcome, "recipient": recipient}
        return REGISTRY.get_sample_value("refnet_encounters_routed_total", labels) or 0.0

    before = count("no-consent", "organization"), count("no-match", "none")
    PrometheusObserver().output_produced("encounter.routed:no-consent:organization")
    PrometheusObserver().ingress_routed("encounter.routed:no-match:none")
    assert (count("no-consent", "organization"), count("no-match", "none")) == (
        before[0] + 1,
        before[1] + 1,
    )
    outputs = REGISTRY.get_sample_value("refnet_outputs_total", {"event_type": "encounter.routed"})
    assert outputs is not None and outputs >= 1
