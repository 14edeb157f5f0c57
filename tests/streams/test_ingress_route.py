"""Ingress routing without a broker: each party message goes to its owner or to the dead letters."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka.structs import ConsumerRecord

from schemas.events import DeadLetter, from_bytes, to_bytes
from streams.decisions.commands import (
    PATIENT_COMMAND,
    REFERRAL_COMMAND,
    OrganizationStatus,
    SubmissionReceived,
)
from streams.decisions.network_state import NetworkState
from streams.decisions.outputs import Outgoing
from streams.runtime.ingress import ingress_pattern, is_party_topic, route
from tests.streams.fixtures import (
    CLINIC,
    PATIENT_ID,
    TOPICS,
    assert_refers_to,
    cancelled,
    capacity,
    requested,
    screening,
    service,
    source,
    status,
)

ORG = "bronx-pantry"
#: The broker's timestamp of every record: dead letters carry it as occurred_at.
TIMESTAMP_MS = 1_795_000_000_123
BROKER_TIME = datetime.fromtimestamp(TIMESTAMP_MS / 1000, UTC)


def message(
    topic: str, key: bytes | None, value: bytes | None, *, offset: int = 41, partition: int = 2
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=TIMESTAMP_MS,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key) if key is not None else -1,
        serialized_value_size=len(value) if value is not None else -1,
        headers=[],
    )


def state_with_services() -> NetworkState:
    state = NetworkState()
    state.upsert(service("svc-mine", ORG))
    state.upsert(service("svc-theirs", "harlem-food"))
    return state


def dead(out: Outgoing) -> DeadLetter:
    assert (out.label, out.topic) == ("deadletter", "sdoh.deadletter.v1")
    letter = from_bytes(out.value)
    assert isinstance(letter, DeadLetter)
    return letter


# ---------------------------------------------------------------- clinics
def test_clinic_screening_goes_to_the_patient_owner_keyed_clinic_and_patient() -> None:
    event = screening("scr-1")
    topic = TOPICS.clinic_submissions(CLINIC)
    received = event.occurred_at + timedelta(seconds=3)
    out = route(
        message(topic, PATIENT_ID.encode(), to_bytes(event)), TOPICS, NetworkState(), now=received
    )
    assert (out.label, out.topic, out.key) == (
        "command.submission",
        "sdoh.network.patients.v1",
        "mott-haven:pt-8c21",
    )
    # the network's clock at receipt travels with it: it dates what the network says
    assert PATIENT_COMMAND.validate_json(out.value) == SubmissionReceived(
        command_id=str(event.event_id),
        clinic_id=CLINIC,
        source=source(topic, PATIENT_ID, offset=41).model_copy(update={"partition": 2}),
        event=event,
        received_at=received,
    )


def test_screening_is_keyed_by_the_patient_in_the_event_not_the_message_key() -> None:
    topic = TOPICS.clinic_submissions(CLINIC)
    out = route(message(topic, b"whatever", to_bytes(screening())), TOPICS, NetworkState())
    assert out.key == "mott-haven:pt-8c21"


def test_requested_referral_goes_to_the_patient_owner() -> None:
    topic = TOPICS.clinic_submissions("other-clinic")
    out = route(message(topic, None, to_bytes(requested())), TOPICS, NetworkState())
    assert (out.topic, out.key) == ("sdoh.network.patients.v1", "other-clinic:pt-8c21")
    command = PATIENT_COMMAND.validate_json(out.value)
    assert isinstance(command, SubmissionReceived)
    assert command.clinic_id == "other-clinic"


def test_cancel_is_keyed_by_the_message_key_as_patient_id() -> None:
    topic = TOPICS.clinic_submissions(CLINIC)
    out = route(message(topic, b"pt-77", to_bytes(cancelled("ref-1"))), TOPICS, NetworkState())
    assert (out.label, out.topic, out.key) == (
        "command.submission",
        "sdoh.network.patients.v1",
        "mott-haven:pt-77",
    )


def test_cancel_without_a_key_goes_to_the_dead_letters_as_validation() -> None:
    value = to_bytes(cancelled("ref-1"))
    topic = TOPICS.clinic_submissions(CLINIC)
    out = route(message(topic, None, value), TOPICS, NetworkState())
    assert out.key == ""
    letter = dead(out)
    assert letter.error.kind == "validation"
    assert letter.error.message == "referral.cancelled needs the patient id as its message key"
    assert letter.source.model_dump() == {"topic": topic, "partition": 2, "offset": 41, "key": None}
    assert_refers_to(letter, value)
    assert letter.occurred_at == BROKER_TIME


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (b"\xff\xfe not utf-8", "decode"),
        (b"{not json", "decode"),
        (b"[1, 2]", "decode"),
        (b'{"event_type": "screening.submitted"}', "validation"),
        (b'{"event_type": "referral.offered"}', "validation"),
        (b'{"event_type": "no.such-event"}', "unknown-event-type"),
    ],
)
def test_unusable_value_goes_to_the_dead_letters_with_its_bytes(value: bytes, kind: str) -> None:
    topic = TOPICS.clinic_submissions(CLINIC)
    out = route(message(topic, b"pt-1", value, offset=9), TOPICS, NetworkState())
    assert out.key == "pt-1"
    letter = dead(out)
    assert letter.error.kind == kind
    assert letter.payload_base64 == base64.b64encode(value).decode("ascii")
    assert (letter.source.topic, letter.source.offset, letter.source.key) == (topic, 9, "pt-1")


def test_null_value_on_a_party_topic_is_a_decode_dead_letter() -> None:
    topic = TOPICS.org_updates(ORG)
    letter = dead(route(message(topic, b"ref-1", None), TOPICS, NetworkState()))
    assert letter.error.kind == "decode"
    assert letter.payload_base64 == ""


def test_non_utf8_key_is_kept_readable_in_the_dead_letter() -> None:
    topic = TOPICS.clinic_submissions(CLINIC)
    out = route(message(topic, b"pt-\xff", to_bytes(screening())), TOPICS, NetworkState())
    letter = dead(out)
    assert letter.error.kind == "decode"
    assert letter.source.key == "pt-\\xff"
    assert out.key == "pt-\\xff"


def test_dead_letters_for_the_same_message_have_the_same_id() -> None:
    topic = TOPICS.clinic_submissions(CLINIC)
    one = route(message(topic, b"k", b"garbage"), TOPICS, NetworkState())
    two = route(message(topic, b"k", b"garbage"), TOPICS, NetworkState())
    other = route(message(topic, b"k", b"garbage", offset=42), TOPICS, NetworkState())
    assert one == two
    assert dead(one).event_id != dead(other).event_id


# ---------------------------------------------------------------- organizations
def test_org_status_goes_to_the_referral_owner_with_its_raw_bytes() -> None:
    event = status("ref-1", "accepted")
    value = to_bytes(event)
    topic = TOPICS.org_updates(ORG)
    out = route(message(topic, b"ref-1", value), TOPICS, state_with_services())
    assert (out.label, out.topic, out.key) == (
        "command.org-status",
        "sdoh.network.referrals.v1",
        "ref-1",
    )
    command = REFERRAL_COMMAND.validate_json(out.value)
    assert command == OrganizationStatus(
        command_id=str(event.event_id),
        org_id=ORG,
        event=event,
        source=source(topic, "ref-1", offset=41).model_copy(update={"partition": 2}),
        raw_base64=base64.b64encode(value).decode("ascii"),
    )


def test_org_status_is_keyed_by_its_referral_id_whatever_the_message_key() -> None:
    topic = TOPICS.org_updates(ORG)
    value = to_bytes(status("ref-9", "accepted"))
    out = route(message(topic, None, value), TOPICS, NetworkState())
    assert (out.topic, out.key) == ("sdoh.network.referrals.v1", "ref-9")


def test_capacity_of_the_orgs_own_service_goes_to_the_capacity_topic() -> None:
    event = capacity("svc-mine", 3)
    topic = TOPICS.org_updates(ORG)
    received = datetime(2026, 11, 24, 14, 16, tzinfo=UTC)
    out = route(
        message(topic, b"svc-mine", to_bytes(event)), TOPICS, state_with_services(), now=received
    )
    # ordered by the network's clock when it received the report, not the party's
    stamped = event.model_copy(update={"occurred_at": received})
    assert out == Outgoing(
        topic="sdoh.network.capacity.v1",
        key="svc-mine",
        value=to_bytes(stamped),
        label="service.capacity-changed",
    )


@pytest.mark.parametrize("service_id", ["svc-theirs", "svc-unknown"])
def test_capacity_of_a_service_the_org_does_not_run_is_an_authorization_dead_letter(
    service_id: str,
) -> None:
    value = to_bytes(capacity(service_id, 0))
    topic = TOPICS.org_updates(ORG)
    out = route(message(topic, service_id.encode(), value), TOPICS, state_with_services())
    letter = dead(out)
    assert letter.error.kind == "authorization"
    assert letter.error.message == "service is not in the directory under organization bronx-pantry"
    assert_refers_to(letter, value)


def test_clinic_event_on_an_org_topic_is_a_validation_dead_letter() -> None:
    topic = TOPICS.org_updates(ORG)
    letter = dead(route(message(topic, b"k", to_bytes(screening())), TOPICS, NetworkState()))
    assert letter.error.kind == "validation"


# ---------------------------------------------------------------- topics
@pytest.mark.parametrize(
    "topic",
    ["elsewhere.clinic.mott-haven.submissions.v1", "sdoh.clinic.Bad_Id.submissions.v1", "random"],
)
def test_topic_outside_the_catalog_is_an_unknown_topic_dead_letter(topic: str) -> None:
    value = to_bytes(screening())
    letter = dead(route(message(topic, b"pt-1", value), TOPICS, NetworkState()))
    assert letter.error.kind == "unknown-topic"
    assert letter.source.topic == topic
    assert_refers_to(letter, value)


def test_ingress_reads_clinic_submissions_and_org_updates_only() -> None:
    assert ingress_pattern(TOPICS).startswith("^(?:")
    assert is_party_topic(TOPICS, TOPICS.clinic_submissions(CLINIC))
    assert is_party_topic(TOPICS, TOPICS.org_updates(ORG))
    for topic in (
        TOPICS.clinic_updates(CLINIC),
        TOPICS.org_referrals(ORG),
        TOPICS.directory,
        TOPICS.network_patients,
        "other.clinic.mott-haven.submissions.v1",
    ):
        assert not is_party_topic(TOPICS, topic)
