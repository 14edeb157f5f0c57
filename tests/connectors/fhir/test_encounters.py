"""A facility's FHIR Encounter as ``encounter.notified``: events, class, time, reasons,
the patient, and refusals that name the rule and never the value."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from connectors.fhir.encounters import encounter_from, render_encounter
from connectors.fhir.inputs import GatewayInputError
from connectors.fhir.patients import Resolver
from schemas.codes import EncounterClass, EncounterEvent
from tests.connectors.fhir.examples import ICD10, SNOMED, encounter, patient


@pytest.mark.parametrize(
    ("status", "cls", "expected"),
    [
        ("in-progress", "IMP", EncounterEvent.ADMIT),
        ("arrived", "IMP", EncounterEvent.ADMIT),
        ("in-progress", "EMER", EncounterEvent.ED_VISIT),
        ("triaged", "EMER", EncounterEvent.ED_VISIT),
        ("finished", "IMP", EncounterEvent.DISCHARGE),
        ("finished", "EMER", EncounterEvent.DISCHARGE),
        ("in-progress", "AMB", EncounterEvent.REGISTRATION),
        ("arrived", "OBSENC", EncounterEvent.REGISTRATION),
    ],
)
def test_status_and_class_say_what_happened(
    status: str, cls: str, expected: EncounterEvent
) -> None:
    event = encounter_from(encounter(status, cls), Resolver())
    assert event.event is expected
    assert event.encounter_class is EncounterClass(cls)


def test_an_admission_maps_every_field_the_network_needs() -> None:
    event = encounter_from(encounter(), Resolver())
    assert event.event_type == "encounter.notified"
    assert event.encounter_id == "V-1001"
    assert event.encounter_at == datetime(2026, 12, 6, 3, 14, tzinfo=UTC)
    assert [(r.system, r.code) for r in event.reasons] == [
        (ICD10, "J45.901"),
        (SNOMED, "195967001"),
    ]
    p = event.patient
    assert (p.id, p.given_name, p.family_name) == ("mrn-778", "Marisol", "Rivera")
    assert p.birth_date == date(1987, 4, 12)
    assert (p.postal_code, p.phone) == ("21201", "+14105550142")


def test_a_discharge_is_dated_by_the_end_of_the_period() -> None:
    event = encounter_from(encounter("finished"), Resolver())
    assert event.encounter_at == datetime(2026, 12, 7, 15, 0, tzinfo=UTC)


def test_the_patient_may_come_from_the_transaction_bundle() -> None:
    resolver = Resolver({"Patient/p1": patient("mrn-9")})
    event = encounter_from(encounter(contained=False), resolver)
    assert event.patient.id == "mrn-9"


def _refused(resource: dict[str, Any], resolver: Resolver | None = None) -> str:
    with pytest.raises(GatewayInputError) as caught:
        encounter_from(resource, resolver or Resolver())
    assert 400 <= caught.value.status < 500
    return str(caught.value)


@pytest.mark.parametrize("status", ["planned", "cancelled", "entered-in-error", "onleave"])
def test_a_status_that_reports_no_encounter_is_refused(status: str) -> None:
    assert "Encounter.status" in _refused(encounter(status))


def test_a_class_outside_v3_actcode_or_refnets_codes_is_refused() -> None:
    wrong_system = encounter()
    wrong_system["class"]["system"] = "http://example.org/classes"
    assert "v3-ActCode" in _refused(wrong_system)
    assert "class.code" in _refused(encounter(cls="FLD"))


def test_refusals_name_the_rule_never_the_value() -> None:
    no_birth = encounter()
    del no_birth["contained"][0]["birthDate"]
    assert "birthDate" in _refused(no_birth)
    no_family = encounter()
    no_family["contained"][0]["name"] = [{"given": ["Marisol"]}]
    message = _refused(no_family)
    assert "family" in message and "Marisol" not in message
    bad_time = encounter()
    bad_time["period"] = {"start": "2026-12-05"}
    assert "time zone" in _refused(bad_time)
    naive = encounter()
    naive["period"] = {"start": "2026-12-05T22:14:00"}
    assert "period.start" in _refused(naive)
    bad_postal = encounter()
    bad_postal["contained"][0]["address"] = [{"postalCode": "<script>secret-777</script>"}]
    assert "secret-777" not in _refused(bad_postal)


def test_a_subject_the_gateway_cannot_see_is_refused() -> None:
    assert "Encounter.subject" in _refused(encounter(contained=False))


def test_an_invalid_fhir_encounter_is_refused_by_the_r4_model() -> None:
    bad = encounter()
    bad["period"] = "yesterday"
    assert "period" in _refused(bad)
    unknown = encounter()
    unknown["colour"] = "blue"
    assert "colour" in _refused(unknown)


def test_more_reasons_than_the_contract_allows_are_refused() -> None:
    many = [{"coding": [{"system": ICD10, "code": f"Z{i:02d}.0"}]} for i in range(21)]
    assert "more than 20" in _refused(encounter(reasons=many))


def test_the_facility_reads_back_the_encounter_without_demographics() -> None:
    event = encounter_from(encounter("finished", "EMER"), Resolver())
    resource = render_encounter(event)
    assert resource["resourceType"] == "Encounter" and resource["id"] == "V-1001"
    assert resource["status"] == "finished" and resource["class"]["code"] == "EMER"
    assert resource["subject"]["identifier"]["value"] == "mrn-778"
    assert datetime.fromisoformat(resource["period"]["end"]) == event.encounter_at
    assert "start" not in resource["period"]
    flat = str(resource)
    for private in ("Marisol", "Rivera", "1987", "21201", "+14105550142"):
        assert private not in flat
