from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.codes import Category, OrgStatus, TaskStatus
from schemas.events import (
    ANY_EVENT_ADAPTER,
    EVENT_MODELS,
    EVENT_TYPES,
    Answer,
    Consent,
    Event,
    Location,
    OfferedPatient,
    Patient,
    ReferralCancelled,
    ReferralOffered,
    ReferralStatusChanged,
    ReferralUpdated,
    ScreeningScored,
    ScreeningSubmitted,
    ServiceUpserted,
    from_bytes,
    to_bytes,
)
from schemas.privacy import offered_patient
from tests.schemas.examples import CONTRACT_EXAMPLES_JSON, contract_example
from tests.schemas.strategies import EVENT_STRATEGIES, FAST, any_event, patients

NOW = datetime(2026, 11, 24, 9, 15, tzinfo=timezone(timedelta(hours=-5)))


def without(document: dict[str, Any], field: str) -> dict[str, Any]:
    return {name: value for name, value in document.items() if name != field}


# ---------------------------------------------------------------- CONTRACT examples
@pytest.mark.parametrize("event_type", sorted(CONTRACT_EXAMPLES_JSON))
def test_contract_example_parses_into_its_model(event_type: str) -> None:
    event = from_bytes(CONTRACT_EXAMPLES_JSON[event_type].encode())

    assert type(event) is EVENT_TYPES[event_type]
    assert event.event_type == event_type


@pytest.mark.parametrize("event_type", sorted(CONTRACT_EXAMPLES_JSON))
def test_contract_example_survives_a_json_round_trip(event_type: str) -> None:
    event = from_bytes(CONTRACT_EXAMPLES_JSON[event_type].encode())

    again = from_bytes(to_bytes(event))

    assert again == event
    assert to_bytes(again) == to_bytes(event)


def test_every_event_type_has_a_contract_example() -> None:
    assert set(CONTRACT_EXAMPLES_JSON) == set(EVENT_TYPES)


def test_contract_screening_example_keeps_its_values() -> None:
    event = from_bytes(CONTRACT_EXAMPLES_JSON["screening.submitted"].encode())

    assert isinstance(event, ScreeningSubmitted)
    assert event.event_id == UUID("6f0c3f7e-5d0e-4a8e-9b1a-0d2f3c4b5a69")
    assert event.occurred_at == NOW
    assert event.patient.birth_date == date(1984, 3, 2)
    assert event.consent.categories is None
    assert [a.answer for a in event.answers] == ["LA28397-0", "LA31995-6"]


# ---------------------------------------------------------------- round trips
@pytest.mark.parametrize("event_type", sorted(EVENT_STRATEGIES))
@FAST
@given(data=st.data())
def test_every_event_type_survives_bytes_round_trip(event_type: str, data: st.DataObject) -> None:
    event = data.draw(EVENT_STRATEGIES[event_type])

    again = from_bytes(to_bytes(event))

    assert type(again) is type(event)
    assert again == event


@FAST
@given(event=any_event)
def test_serialized_event_is_utf8_json_with_nulls_kept(event: Event) -> None:
    document = json.loads(to_bytes(event).decode("utf-8"))

    assert document["event_type"] == event.event_type
    assert set(document) == set(type(event).model_fields)


# ---------------------------------------------------------------- timestamps
def test_naive_occurred_at_is_rejected() -> None:
    document = contract_example("referral.cancelled") | {"occurred_at": "2026-11-25T08:00:00"}

    with pytest.raises(ValidationError, match="occurred_at"):
        ANY_EVENT_ADAPTER.validate_python(document)


def test_naive_datetime_object_is_rejected() -> None:
    document = contract_example("referral.cancelled") | {"occurred_at": datetime(2026, 11, 25)}

    with pytest.raises(ValidationError, match="timezone"):
        ANY_EVENT_ADAPTER.validate_python(document)


@pytest.mark.parametrize(
    "occurred_at",
    [1764000000, 1764000000.5, True, "2026-11-25", "2026-11-25T08:00Z", "2026-11-25T08:00:00+0500"],
)
def test_timestamp_that_is_not_rfc3339_with_offset_is_rejected(occurred_at: object) -> None:
    document = contract_example("referral.cancelled") | {"occurred_at": occurred_at}

    with pytest.raises(ValidationError, match="occurred_at"):
        ANY_EVENT_ADAPTER.validate_python(document)


def test_offset_with_seconds_is_rejected_because_rfc3339_cannot_write_it() -> None:
    odd = timezone(timedelta(hours=1, seconds=30))
    document = contract_example("referral.cancelled") | {
        "occurred_at": datetime(2026, 11, 25, tzinfo=odd)
    }

    with pytest.raises(ValidationError, match="whole number of minutes"):
        ANY_EVENT_ADAPTER.validate_python(document)


@pytest.mark.parametrize(
    "occurred_at",
    ["2026-11-25T08:00:00Z", "2026-11-25t08:00:00.123456+14:00", "1999-01-01T00:00:00-00:00"],
)
def test_rfc3339_timestamps_with_offset_are_accepted(occurred_at: str) -> None:
    document = contract_example("referral.cancelled") | {"occurred_at": occurred_at}

    event = ANY_EVENT_ADAPTER.validate_python(document)

    assert event.occurred_at.utcoffset() is not None


def test_naive_respond_by_and_consent_expiry_are_rejected() -> None:
    offered = contract_example("referral.offered") | {"respond_by": "2026-11-25T09:15:00"}
    requested = contract_example("referral.requested")
    requested["consent"]["expires_at"] = "2027-11-24T09:15:00"

    with pytest.raises(ValidationError, match="respond_by"):
        ANY_EVENT_ADAPTER.validate_python(offered)
    with pytest.raises(ValidationError, match="expires_at"):
        ANY_EVENT_ADAPTER.validate_python(requested)


# ---------------------------------------------------------------- ids
@pytest.mark.parametrize(
    "org_id", ["Bronx_Pantry", "BRONX", "-bronx", "b", "bronx pantry", "x" * 64, "bronx.pantry", ""]
)
def test_bad_party_id_is_rejected(org_id: str) -> None:
    document = contract_example("service.upserted") | {"org_id": org_id}

    with pytest.raises(ValidationError, match="org_id"):
        ANY_EVENT_ADAPTER.validate_python(document)


@pytest.mark.parametrize(
    ("event_type", "field"),
    [
        ("referral.updated", "org_id"),
        ("screening.scored", "clinic_id"),
        ("referral.state-changed", "clinic_id"),
        ("referral.state-changed", "org_id"),
    ],
)
def test_party_ids_are_checked_on_every_event_that_names_a_party(
    event_type: str, field: str
) -> None:
    document = contract_example(event_type) | {field: "Bronx_Pantry"}

    with pytest.raises(ValidationError, match=field):
        ANY_EVENT_ADAPTER.validate_python(document)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_missing_event_id_is_rejected(event_type: str) -> None:
    document = without(contract_example(event_type), "event_id")

    with pytest.raises(ValidationError, match="event_id"):
        EVENT_TYPES[event_type].model_validate(document)


@pytest.mark.parametrize(
    "event_id",
    [
        "6f0c3f7e5d0e4a8e9b1a0d2f3c4b5a69",
        "urn:uuid:6f0c3f7e-5d0e-4a8e-9b1a-0d2f3c4b5a69",
        "{6f0c3f7e-5d0e-4a8e-9b1a-0d2f3c4b5a69}",
        "not-a-uuid",
        12345,
    ],
)
def test_event_id_must_be_a_hyphenated_uuid(event_id: object) -> None:
    document = contract_example("referral.cancelled") | {"event_id": event_id}

    with pytest.raises(ValidationError, match="event_id"):
        ANY_EVENT_ADAPTER.validate_python(document)


@pytest.mark.parametrize("referral_id", ["", " ref-1", "ref-1 ", "ref\n1", "r" * 129])
def test_blank_padded_control_or_overlong_ids_are_rejected(referral_id: str) -> None:
    document = contract_example("referral.cancelled") | {"referral_id": referral_id}

    with pytest.raises(ValidationError, match="referral_id"):
        ANY_EVENT_ADAPTER.validate_python(document)


# ---------------------------------------------------------------- status changes
@pytest.mark.parametrize("status", ["rejected", "failed", "cancelled"])
def test_reasonless_rejected_failed_or_cancelled_status_is_rejected(status: str) -> None:
    document = contract_example("referral.status-changed") | {"status": status, "reason": None}

    with pytest.raises(ValidationError, match=f"status {status} needs a reason"):
        ANY_EVENT_ADAPTER.validate_python(document)


@pytest.mark.parametrize("status", ["rejected", "failed", "cancelled"])
def test_rejected_failed_or_cancelled_status_with_reason_is_accepted(status: str) -> None:
    document = contract_example("referral.status-changed") | {
        "status": status,
        "reason": "no-capacity",
    }

    event = ANY_EVENT_ADAPTER.validate_python(document)

    assert isinstance(event, ReferralStatusChanged)
    assert event.status == OrgStatus(status)


@pytest.mark.parametrize("status", ["accepted", "in-progress", "on-hold", "completed"])
def test_other_statuses_need_no_reason(status: str) -> None:
    document = contract_example("referral.status-changed") | {"status": status}

    assert ReferralStatusChanged.model_validate(document).status == status


def test_status_outside_the_organization_vocabulary_is_rejected() -> None:
    document = contract_example("referral.status-changed") | {"status": "requested"}

    with pytest.raises(ValidationError, match="status"):
        ANY_EVENT_ADAPTER.validate_python(document)


def test_referral_updated_attempt_cannot_be_negative() -> None:
    document = contract_example("referral.updated") | {"attempt": -1}

    with pytest.raises(ValidationError, match="attempt"):
        ReferralUpdated.model_validate(document)


# ---------------------------------------------------------------- services
def test_response_sla_is_read_from_iso8601() -> None:
    event = ServiceUpserted.model_validate(contract_example("service.upserted"))

    assert event.response_sla == timedelta(hours=24)


@pytest.mark.parametrize(
    ("wire", "expected"),
    [("PT24H", timedelta(hours=24)), ("P2D", timedelta(days=2)), ("PT30S", timedelta(seconds=30))],
)
def test_contract_durations_parse(wire: str, expected: timedelta) -> None:
    document = contract_example("service.upserted") | {"response_sla": wire}

    assert ServiceUpserted.model_validate(document).response_sla == expected


def test_response_sla_serializes_back_as_iso8601() -> None:
    event = ServiceUpserted.model_validate(
        contract_example("service.upserted") | {"response_sla": "PT36H30M"}
    )

    wire = json.loads(to_bytes(event))["response_sla"]

    assert wire == "P1DT12H30M"
    assert ServiceUpserted.model_validate(json.loads(to_bytes(event))).response_sla == timedelta(
        hours=36, minutes=30
    )


@pytest.mark.parametrize("response_sla", [86400, "24:00:00", "PT0S", "-PT1H", "1 day", "P"])
def test_response_sla_that_is_not_a_positive_iso8601_duration_is_rejected(
    response_sla: object,
) -> None:
    document = contract_example("service.upserted") | {"response_sla": response_sla}

    with pytest.raises(ValidationError, match="response_sla"):
        ServiceUpserted.model_validate(document)


@pytest.mark.parametrize(
    "location", [{"lat": 91, "lon": 0}, {"lat": 0, "lon": -181}, {"lat": "nan", "lon": 0}]
)
def test_location_out_of_range_is_rejected(location: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Location.model_validate(location)


def test_negative_capacity_is_rejected() -> None:
    document = contract_example("service.upserted") | {"capacity": {"available": -1}}

    with pytest.raises(ValidationError, match=r"capacity\.available"):
        ServiceUpserted.model_validate(document)


def test_min_age_above_max_age_is_rejected() -> None:
    document = contract_example("service.upserted") | {"min_age": 18, "max_age": 12}

    with pytest.raises(ValidationError, match="min_age is above max_age"):
        ServiceUpserted.model_validate(document)


def test_service_upserted_defaults_lists_to_empty() -> None:
    document = contract_example("service.upserted")
    for field in ("postal_codes", "languages", "location", "radius_km", "capacity"):
        document.pop(field)

    event = ServiceUpserted.model_validate(document)

    assert event.postal_codes == []
    assert event.languages == []
    assert event.location is None


# ---------------------------------------------------------------- answers
def test_numeric_answer_may_be_given_as_a_number() -> None:
    assert Answer.model_validate_json('{"question": "95614-4", "answer": 12}').answer == 12
    assert Answer.model_validate_json('{"question": "95614-4", "answer": 1.5}').answer == 1.5
    assert Answer.model_validate_json('{"question": "95614-4", "answer": "12"}').answer == "12"


@pytest.mark.parametrize("answer", ["true", "null", "[1]", "1e400"])
def test_boolean_null_list_or_infinite_answer_is_rejected(answer: str) -> None:
    with pytest.raises(ValidationError, match="answer"):
        Answer.model_validate_json(f'{{"question": "95614-4", "answer": {answer}}}')


# ---------------------------------------------------------------- consent
def test_consent_with_null_categories_covers_every_category() -> None:
    consent = Consent(granted=True, categories=None, expires_at=None)

    assert all(consent.covers(category, NOW) for category in Category)


def test_consent_with_categories_covers_only_those() -> None:
    consent = Consent(granted=True, categories=[Category.FOOD_INSECURITY])

    assert consent.covers(Category.FOOD_INSECURITY, NOW)
    assert not consent.covers(Category.HOMELESSNESS, NOW)


def test_consent_with_empty_categories_covers_nothing() -> None:
    consent = Consent(granted=True, categories=[])

    assert not consent.covers(Category.FOOD_INSECURITY, NOW)


def test_consent_not_granted_covers_nothing() -> None:
    assert not Consent(granted=False).covers(Category.FOOD_INSECURITY, NOW)


def test_consent_stops_covering_when_it_expires() -> None:
    consent = Consent(granted=True, expires_at=NOW)

    assert consent.covers(Category.FOOD_INSECURITY, NOW - timedelta(seconds=1))
    assert not consent.covers(Category.FOOD_INSECURITY, NOW)
    assert not consent.covers(Category.FOOD_INSECURITY, NOW.astimezone(UTC) + timedelta(days=1))


def test_consent_is_checked_at_an_aware_time_only() -> None:
    with pytest.raises(ValueError, match="aware"):
        Consent(granted=True).covers(Category.FOOD_INSECURITY, datetime(2026, 11, 24))


# ---------------------------------------------------------------- model behaviour
def test_unknown_fields_are_ignored_at_every_level() -> None:
    document = contract_example("screening.submitted")
    document["future_field"] = {"x": 1}
    document["patient"]["gender_identity"] = "unknown"
    document["consent"]["scope"] = "treatment"
    document["answers"][0]["system"] = "http://loinc.org"

    event = ANY_EVENT_ADAPTER.validate_python(document)

    assert "future_field" not in json.loads(to_bytes(event))
    assert event == ANY_EVENT_ADAPTER.validate_python(contract_example("screening.submitted"))


def test_events_are_immutable() -> None:
    event = ReferralCancelled.model_validate(contract_example("referral.cancelled"))

    with pytest.raises(ValidationError, match="frozen"):
        event.reason = "other"  # type: ignore[misc]


def test_new_fills_a_fresh_event_id_and_an_aware_now() -> None:
    first = ServiceUpserted.new(
        service_id="svc-1", org_id="bronx-pantry", name="Pantry", status="active", categories=[]
    )
    second = ServiceUpserted.new(
        service_id="svc-1", org_id="bronx-pantry", name="Pantry", status="active", categories=[]
    )

    assert first.event_id != second.event_id
    assert first.occurred_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - first.occurred_at) < timedelta(minutes=1)


def test_new_keeps_an_explicit_event_id_and_time() -> None:
    event_id = UUID("6f0c3f7e-5d0e-4a8e-9b1a-0d2f3c4b5a69")

    event = ReferralUpdated.new(
        event_id=event_id,
        occurred_at=NOW,
        referral_id="ref-1",
        patient_id="pt-1",
        category="food-insecurity",
        status="requested",
        attempt=0,
    )

    assert (event.event_id, event.occurred_at) == (event_id, NOW)
    assert event.status is TaskStatus.REQUESTED


def test_event_types_map_every_model_by_its_wire_name() -> None:
    assert len(EVENT_TYPES) == len(EVENT_MODELS) == 19
    for event_type, model in EVENT_TYPES.items():
        assert model.model_fields["event_type"].default == event_type


def test_any_event_rejects_an_unknown_event_type() -> None:
    document = contract_example("referral.cancelled") | {"event_type": "referral.deleted"}

    with pytest.raises(ValidationError, match="union_tag_invalid"):
        ANY_EVENT_ADAPTER.validate_python(document)


# ---------------------------------------------------------------- privacy
def test_offered_patient_carries_only_the_minimum_necessary() -> None:
    patient = Patient.model_validate(contract_example("referral.requested")["patient"])

    offered = offered_patient(patient)

    assert offered.model_dump() == {
        "given_name": "Ana",
        "phone": "+17185550100",
        "preferred_language": "es",
        "postal_code": "10451",
    }


def test_offered_patient_model_has_exactly_four_fields() -> None:
    assert set(OfferedPatient.model_fields) == {
        "given_name",
        "phone",
        "preferred_language",
        "postal_code",
    }


@FAST
@given(patient=patients)
def test_offered_patient_never_carries_birth_date_family_name_or_patient_id(
    patient: Patient,
) -> None:
    wire = json.loads(offered_patient(patient).model_dump_json())

    assert set(wire) == {"given_name", "phone", "preferred_language", "postal_code"}
    assert wire["given_name"] == patient.given_name


def test_offer_patient_ignores_extra_patient_fields_it_is_handed() -> None:
    document = contract_example("referral.offered")
    document["patient"] |= {"birth_date": "1984-03-02", "family_name": "Rivera", "id": "pt-8c21"}

    event = ReferralOffered.model_validate(document)

    assert "birth_date" not in json.loads(to_bytes(event))["patient"]


def test_scored_screening_carries_no_name_phone_or_birth_date() -> None:
    identifying = {"patient", "given_name", "family_name", "phone", "birth_date", "postal_code"}

    assert not identifying & set(ScreeningScored.model_fields)


# ---------------------------------------------------------------- no lax coercion
@pytest.mark.parametrize(
    ("event_type", "field", "value"),
    [
        ("service.capacity-changed", "available", True),
        ("service.capacity-changed", "available", "12"),
        ("service.capacity-changed", "available", 12.0),
        ("referral.updated", "attempt", False),
        ("referral.state-changed", "attempt", "1"),
        ("service.upserted", "min_age", True),
        ("service.upserted", "radius_km", "5"),
    ],
)
def test_numbers_must_be_json_numbers_not_booleans_or_strings(
    event_type: str, field: str, value: object
) -> None:
    document = contract_example(event_type) | {field: value}

    with pytest.raises(ValidationError, match=field):
        ANY_EVENT_ADAPTER.validate_python(document)


@pytest.mark.parametrize("granted", ["yes", "true", 1, 0, None])
def test_consent_granted_must_be_a_json_boolean(granted: object) -> None:
    with pytest.raises(ValidationError, match="granted"):
        Consent.model_validate({"granted": granted})
