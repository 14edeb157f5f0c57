"""Encounter alerts (``encounter.alerted``) as FHIR R4 Communications.

A clinic's alert names its patient (``subject``) and the facility; an
organization's is ``about`` the referral Task it holds and carries only what the
patient's consent lets it hear (the event, the class, the day, and reasons only
under with-reason consent: the event carries no more). ``sent`` is the alert's
``occurred_at``; ``category`` says what happened (refnet's encounter event) and
the encounter's class (v3-ActCode); ``reasonCode`` the ICD-10-CM or SNOMED
codes; the extension ``urn:refnet:StructureDefinition:encounter-on`` the day of
the encounter. The id is the alert's event id.
"""

from __future__ import annotations

from typing import Any, Final

from fhir.resources.R4B.communication import Communication

from connectors.fhir.encounters import ACT_CODE_SYSTEM, ENCOUNTER_EVENT_SYSTEM
from connectors.fhir.mapping import fhir_id
from connectors.fhir.tasks import NETWORK_ORG

ALERT_CATEGORY_SYSTEM: Final = "urn:refnet:CodeSystem:alert"
EVENT_ID_SYSTEM: Final = "urn:refnet:event-id"
#: the day of the encounter (``valueDate``), on every alert
ENCOUNTER_ON_EXTENSION: Final = "urn:refnet:StructureDefinition:encounter-on"

#: how an encounter event reads in a Communication and in the inbox
EVENT_DISPLAY: Final = {
    "admit": "Admitted",
    "discharge": "Discharged",
    "ed-visit": "Seen in the emergency department",
    "registration": "Registered for a visit",
    "transfer": "Transferred",
    "update": "Visit updated",
}


def communication_id(alert: dict[str, Any]) -> str:
    """The Communication id of an ``encounter.alerted`` event."""
    return fhir_id(str(alert["event_id"]))


def render_alert(alert: dict[str, Any], party_kind: str, party_id: str) -> dict[str, Any]:
    """An ``encounter.alerted`` event (as on the topic) as a Communication for its recipient."""
    event = str(alert["event"])
    display = EVENT_DISPLAY.get(event, event)
    text = f"Hospital alert: {display.lower()} on {alert['encounter_on']}"
    resource: dict[str, Any] = {
        "resourceType": "Communication",
        "id": communication_id(alert),
        "extension": [{"url": ENCOUNTER_ON_EXTENSION, "valueDate": str(alert["encounter_on"])}],
        "identifier": [{"system": EVENT_ID_SYSTEM, "value": str(alert["event_id"])}],
        "status": "completed",
        "category": [
            {
                "coding": [
                    {
                        "system": ALERT_CATEGORY_SYSTEM,
                        "code": "encounter-alert",
                        "display": "Hospital encounter alert",
                    }
                ]
            },
            {"coding": [{"system": ENCOUNTER_EVENT_SYSTEM, "code": event, "display": display}]},
            {"coding": [{"system": ACT_CODE_SYSTEM, "code": str(alert["encounter_class"])}]},
        ],
        "sent": alert["occurred_at"],
        "sender": {"reference": f"Organization/{NETWORK_ORG}"},
        "recipient": [{"reference": f"Organization/{fhir_id(party_id)}"}],
    }
    if party_kind == "clinic":
        patient_id = alert.get("patient_id")
        if patient_id:
            resource["subject"] = {
                "reference": f"Patient/{fhir_id(str(patient_id))}",
                "identifier": {"value": str(patient_id)},
            }
        if alert.get("facility_id"):
            text += f" at facility {alert['facility_id']}"
            resource["about"] = [
                {
                    "reference": f"Organization/{fhir_id(str(alert['facility_id']))}",
                    "display": "the facility",
                }
            ]
        if alert.get("encounter_at"):
            text += f" ({alert['encounter_at']})"
    elif alert.get("referral_id"):
        resource["about"] = [{"reference": f"Task/{fhir_id(str(alert['referral_id']))}"}]
    reasons = [r for r in alert.get("reasons") or [] if isinstance(r, dict)]
    if reasons:
        resource["reasonCode"] = [
            {"coding": [{"system": str(r.get("system")), "code": str(r.get("code"))}]}
            for r in reasons
        ]
    resource["payload"] = [{"contentString": text}]
    dumped: dict[str, Any] = Communication.model_validate(resource).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    return dumped


__all__ = [
    "ALERT_CATEGORY_SYSTEM",
    "ENCOUNTER_ON_EXTENSION",
    "EVENT_DISPLAY",
    "EVENT_ID_SYSTEM",
    "communication_id",
    "render_alert",
]
