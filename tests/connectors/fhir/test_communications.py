"""Encounter alerts as FHIR Communications: a clinic's names its patient and the
facility; an organization's is about its referral's Task and names no patient."""

from __future__ import annotations

import uuid
from typing import Any

from fhir.resources.R4B.communication import Communication

from connectors.fhir.communications import (
    ENCOUNTER_ON_EXTENSION,
    communication_id,
    render_alert,
)
from schemas.events import EncounterAlerted
from tests.connectors.fhir.examples import ICD10


def alert(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event": "ed-visit",
        "encounter_class": "EMER",
        "encounter_on": "2026-12-05",
        "encounter_event_id": str(uuid.uuid4()),
    }
    base.update(fields)
    return EncounterAlerted.new(**base).model_dump(mode="json")


def _codes(resource: dict[str, Any]) -> set[str]:
    return {c["coding"][0]["code"] for c in resource["category"]}


def test_a_clinics_alert_names_its_patient_the_facility_and_the_reasons() -> None:
    message = alert(
        patient_id="pt-8c21",
        facility_id="st-agnes",
        encounter_at="2026-12-05T22:14:00-05:00",
        reasons=[{"system": ICD10, "code": "J45.901"}],
    )
    resource = render_alert(message, "clinic", "mott-haven")
    Communication.model_validate(resource)
    assert resource["id"] == communication_id(message) == message["event_id"]
    assert resource["subject"] == {
        "reference": "Patient/pt-8c21",
        "identifier": {"value": "pt-8c21"},
    }
    assert resource["about"][0]["reference"] == "Organization/st-agnes"
    assert resource["sent"] == message["occurred_at"]
    assert {"encounter-alert", "ed-visit", "EMER"} <= _codes(resource)
    assert resource["reasonCode"] == [{"coding": [{"system": ICD10, "code": "J45.901"}]}]
    assert resource["recipient"] == [{"reference": "Organization/mott-haven"}]
    assert {"url": ENCOUNTER_ON_EXTENSION, "valueDate": "2026-12-05"} in resource["extension"]


def test_an_organizations_alert_is_about_its_task_and_names_no_patient() -> None:
    message = alert(referral_id="ref 1/x")
    resource = render_alert(message, "org", "bronx-pantry")
    Communication.model_validate(resource)
    assert "subject" not in resource and "reasonCode" not in resource
    (about,) = resource["about"]
    assert about["reference"].startswith("Task/h-")  # the referral id is not a FHIR id
    assert "facility" not in resource["payload"][0]["contentString"]


def test_an_organizations_alert_carries_the_reasons_its_consent_let_through() -> None:
    message = alert(referral_id="ref-1", reasons=[{"system": ICD10, "code": "J45.901"}])
    resource = render_alert(message, "org", "bronx-pantry")
    assert resource["reasonCode"][0]["coding"][0]["code"] == "J45.901"
    assert resource["about"] == [{"reference": "Task/ref-1"}]
