"""The JSON examples of docs/contract.md, with its "..." placeholders filled in.

Kept as JSON text, as a clinic or organization would send them. The last three
events have no example in docs/contract.md; theirs follow the models.
"""

from __future__ import annotations

import json
from typing import Any

PATIENT = """{"id": "pt-8c21", "given_name": "Ana", "family_name": "Rivera",
 "phone": "+17185550100", "preferred_language": "es", "postal_code": "10451",
 "birth_date": "1984-03-02"}"""
CONSENT = """{"granted": true, "categories": ["food-insecurity", "housing-instability"],
 "expires_at": "2027-11-24T09:15:00-05:00"}"""

CONTRACT_EXAMPLES_JSON: dict[str, str] = {
    "screening.submitted": """
{"event_id": "6f0c3f7e-5d0e-4a8e-9b1a-0d2f3c4b5a69", "event_type": "screening.submitted",
 "occurred_at": "2026-11-24T09:15:00-05:00", "screening_id": "scr-0001",
 "patient": {"id": "pt-8c21", "given_name": "Ana", "phone": "+17185550100",
             "preferred_language": "es", "postal_code": "10451", "birth_date": "1984-03-02"},
 "consent": {"granted": true, "categories": null, "expires_at": null},
 "instrument": "ahc-hrsn",
 "answers": [{"question": "88122-7", "answer": "LA28397-0"},
             {"question": "71802-3", "answer": "LA31995-6"}]}
""",
    "referral.requested": """
{"event_id": "0b6e2a4c-8f1d-4c3e-a5b7-19d2e6f8a0c1", "event_type": "referral.requested",
 "occurred_at": "2026-11-24T10:02:13-05:00",
 "referral_id": "ref-clinic-42", "patient": @PATIENT@, "consent": @CONSENT@,
 "category": "food-insecurity", "service_id": null, "priority": "routine",
 "note": "Family of four, needs weekend pickup."}
""".replace("@PATIENT@", PATIENT).replace("@CONSENT@", CONSENT),
    "referral.cancelled": """
{"event_id": "2c9d7e1f-3a4b-4c5d-8e6f-7a8b9c0d1e2f", "event_type": "referral.cancelled",
 "occurred_at": "2026-11-25T08:00:00Z", "referral_id": "ref-clinic-42",
 "reason": "no-longer-interested"}
""",
    "referral.offered": """
{"event_id": "5e4d3c2b-1a09-4f8e-b7d6-c5b4a3928170", "event_type": "referral.offered",
 "occurred_at": "2026-11-24T09:15:02-05:00",
 "referral_id": "ref-clinic-42", "service_id": "svc-pantry-1", "category": "food-insecurity",
 "priority": "routine", "respond_by": "2026-11-25T09:15:00-05:00",
 "patient": {"given_name": "Ana", "phone": "+17185550100", "preferred_language": "es",
             "postal_code": "10451"},
 "note": "Family of four, needs weekend pickup."}
""",
    "referral.withdrawn": """
{"event_id": "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", "event_type": "referral.withdrawn",
 "occurred_at": "2026-11-25T09:15:01-05:00", "referral_id": "ref-clinic-42", "reason": "timeout"}
""",
    "referral.status-changed": """
{"event_id": "3f2e1d0c-9b8a-4796-a5b4-c3d2e1f0a9b8", "event_type": "referral.status-changed",
 "occurred_at": "2026-11-24T13:40:00-05:00",
 "referral_id": "ref-clinic-42", "status": "accepted", "reason": null, "outcome": null,
 "note": null}
""",
    "service.capacity-changed": """
{"event_id": "7d6c5b4a-3928-4170-8f6e-5d4c3b2a1908", "event_type": "service.capacity-changed",
 "occurred_at": "2026-11-24T17:00:00-05:00", "service_id": "svc-pantry-1", "available": 11,
 "capacity_status": "capacity"}
""",
    "referral.updated": """
{"event_id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "event_type": "referral.updated",
 "occurred_at": "2026-11-24T09:15:02-05:00", "referral_id": "ref-clinic-42",
 "patient_id": "pt-8c21", "category": "food-insecurity", "screening_id": "scr-0001",
 "status": "requested", "business_status": "offered", "org_id": "bronx-pantry",
 "service_id": "svc-pantry-1", "reason": null, "outcome": null, "attempt": 1}
""",
    "service.upserted": """
{"event_id": "4b3a2918-0716-4f5e-9d4c-3b2a19080706", "event_type": "service.upserted",
 "occurred_at": "2026-11-20T12:00:00Z",
 "service_id": "svc-pantry-1", "org_id": "bronx-pantry", "name": "Grand Concourse Pantry",
 "status": "active", "categories": ["food-insecurity"],
 "postal_codes": ["10451", "10452"], "location": {"lat": 40.8222, "lon": -73.9217}, "radius_km": 5,
 "languages": ["en", "es"], "min_age": null, "max_age": null,
 "capacity": {"available": 12, "unit": "households per week"},
 "response_sla": "PT24H"}
""",
    "deadletter": """
{"event_id": "8e7d6c5b-4a39-4281-9f0e-d1c2b3a49586", "event_type": "deadletter",
 "occurred_at": "2026-11-24T09:15:03Z",
 "source": {"topic": "sdoh.org.bronx-pantry.updates.v1", "partition": 3, "offset": 1187,
            "key": "ref-clinic-42"},
 "error": {"kind": "transition", "message": "completed is not allowed from requested"},
 "payload_base64": "eyJldmVudF90eXBlIjogInJlZmVycmFsLnN0YXR1cy1jaGFuZ2VkIn0=",
 "payload_bytes": 41,
 "payload_sha256": "a164cab4eb8a92ccd7da7c2adfe107191d0180d0d0e0bf7d44475da9f6f7cde9"}
""",
    "screening.scored": """
{"event_id": "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f", "event_type": "screening.scored",
 "occurred_at": "2026-11-24T09:15:01-05:00", "screening_id": "scr-0001",
 "patient_id": "pt-8c21", "clinic_id": "bronx-health", "instrument": "ahc-hrsn",
 "answers": [{"question": "88122-7", "answer": "LA28397-0"},
             {"question": "71802-3", "answer": "LA31995-6"},
             {"question": "95614-4", "answer": 12}],
 "needs": [{"category": "food-insecurity", "rule": "ahc-food"},
           {"category": "homelessness", "rule": "ahc-living-situation"}],
 "problems": [{"kind": "missing-answer", "question": "88123-5", "detail": null}],
 "consented_categories": ["food-insecurity", "homelessness"]}
""",
    "referral.state-changed": """
{"event_id": "d4c3b2a1-0f9e-4d8c-b7a6-958473625140", "event_type": "referral.state-changed",
 "occurred_at": "2026-11-24T13:40:00.250-05:00", "referral_id": "ref-clinic-42",
 "patient_id": "pt-8c21", "clinic_id": "bronx-health", "category": "food-insecurity",
 "screening_id": "scr-0001", "from_status": "requested", "to_status": "accepted",
 "business_status": null, "org_id": "bronx-pantry", "service_id": "svc-pantry-1",
 "reason": null, "outcome": null, "attempt": 1, "actor": "organization",
 "cause_event_id": "3f2e1d0c-9b8a-4796-a5b4-c3d2e1f0a9b8"}
""",
    "consent.updated": """
{"event_id": "e5f4a3b2-c1d0-4e9f-8a7b-6c5d4e3f2a1b", "event_type": "consent.updated",
 "occurred_at": "2026-11-26T11:20:00-05:00", "patient_id": "pt-8c21",
 "consent": {"granted": true, "categories": ["food-insecurity"],
             "expires_at": "2027-11-26T11:20:00-05:00"}}
""",
    "message.refused": """
{"event_id": "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d", "event_type": "message.refused",
 "occurred_at": "2026-11-24T09:15:03Z",
 "source": {"topic": "sdoh.org.bronx-pantry.updates.v1", "partition": 3, "offset": 1187,
            "key": "bronx-health:ref-clinic-42"},
 "refused_event_id": "3f2e1d0c-9b8a-4796-a5b4-c3d2e1f0a9b8",
 "refused_event_type": "referral.status-changed", "screening_id": null,
 "referral_id": "bronx-health:ref-clinic-42",
 "error": {"kind": "transition",
           "rule": "the offer to bronx-pantry was withdrawn before this answer arrived"},
 "referral_state": {"offer": "withdrawn", "attempt": 1,
                    "withdrawn_event_id": "0e1d2c3b-4a59-4687-9786-a5b4c3d2e1f0",
                    "status": null, "at": null}}
""",
    "referral.status-recorded": """
{"event_id": "7b6a5948-3d2c-4b1a-9f8e-7d6c5b4a3928", "event_type": "referral.status-recorded",
 "occurred_at": "2026-11-24T13:40:00.250-05:00", "referral_id": "bronx-health:ref-clinic-42",
 "status": "accepted", "business_status": null, "reason": null, "outcome": null,
 "attempt": 1, "service_id": "svc-pantry-1",
 "cause_event_id": "3f2e1d0c-9b8a-4796-a5b4-c3d2e1f0a9b8"}
""",
    "screening.answered": """
{"event_id": "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a", "event_type": "screening.answered",
 "occurred_at": "2026-11-24T09:15:01-05:00", "screening_id": "scr-0001",
 "patient_id": "pt-8c21", "instrument": "ahc-hrsn",
 "cause_event_id": "6f0c3f7e-5d0e-4a8e-9b1a-0d2f3c4b5a69",
 "needs": [{"category": "food-insecurity", "rule": "hvs.either-item"}],
 "referrals": [{"referral_id": "scr-0001.food-insecurity", "category": "food-insecurity",
                "outcome": "opened"}],
 "problems": [{"kind": "unknown-answer", "question": "96779-4"}]}
""",
    "encounter.notified": """
{"event_id": "7b6a5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d", "event_type": "encounter.notified",
 "occurred_at": "2026-11-27T03:12:09Z", "encounter_id": "V-20261127-0042",
 "patient": {"id": "MRN-448812", "given_name": "Ana", "family_name": "Rivera",
             "birth_date": "1984-03-02", "postal_code": "10451", "phone": "+17185550100"},
 "event": "ed-visit", "encounter_class": "EMER", "encounter_at": "2026-11-26T22:10:00-05:00",
 "reasons": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "J45.901"}]}
""",
    "encounter.alerted": """
{"event_id": "8c7b6a5d-4e3f-4b2a-8d9c-0e1f2a3b4c5d", "event_type": "encounter.alerted",
 "occurred_at": "2026-11-27T03:12:10Z", "patient_id": null,
 "referral_id": "scr-0001.food-insecurity", "facility_id": null, "event": "ed-visit",
 "encounter_class": "EMER", "encounter_on": "2026-11-26", "encounter_at": null, "reasons": [],
 "encounter_event_id": "7b6a5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"}
""",
    "encounter.routed": """
{"event_id": "9d8c7b6a-5e4f-4c3b-9a0d-1e2f3a4b5c6d", "event_type": "encounter.routed",
 "occurred_at": "2026-11-27T03:12:10Z",
 "encounter_event_id": "7b6a5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d",
 "facility_id": "lincoln-hospital", "event": "ed-visit", "encounter_class": "EMER",
 "encounter_at": "2026-11-26T22:10:00-05:00", "outcome": "alerted",
 "recipient_kind": "organization", "recipient_id": "bronx-pantry",
 "referral_id": "scr-0001.food-insecurity"}
""",
}


def contract_example(event_type: str) -> dict[str, Any]:
    """A fresh copy of the example document for ``event_type``."""
    document: dict[str, Any] = json.loads(CONTRACT_EXAMPLES_JSON[event_type])
    return document
