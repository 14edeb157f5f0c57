"""FHIR R4 Encounters and Patients as a facility sends them (test data only)."""

from __future__ import annotations

import copy
from typing import Any

ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"


def patient(mrn: str = "mrn-778", pid: str = "p1") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.1", "value": mrn}],
        "name": [{"family": "Rivera", "given": ["Marisol"]}],
        "birthDate": "1987-04-12",
        "telecom": [
            {"system": "email", "value": "m@example.org"},
            {"system": "phone", "value": "+14105550142"},
        ],
        "address": [{"line": ["12 Elm St"], "postalCode": "21201"}],
    }


def encounter(
    status: str = "in-progress",
    cls: str = "IMP",
    *,
    contained: bool = True,
    visit: str = "V-1001",
    reasons: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": "enc-1",
        "identifier": [{"system": "urn:visit", "value": visit}],
        "status": status,
        "class": {"system": ACT, "code": cls},
        "period": {"start": "2026-12-05T22:14:00-05:00", "end": "2026-12-07T10:00:00-05:00"},
        "reasonCode": copy.deepcopy(reasons)
        if reasons is not None
        else [
            {
                "coding": [
                    {"system": ICD10, "code": "J45.901"},
                    {"system": "http://example.org/local", "code": "ASTHMA-X"},
                ],
                "text": "asthma attack at home on Elm St",
            },
            {"coding": [{"system": SNOMED, "code": "195967001"}]},
        ],
        "subject": {"reference": "#pat" if contained else "Patient/p1"},
    }
    if contained:
        resource["contained"] = [{**patient(), "id": "pat"}]
    return resource


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{i}",
                "resource": r,
                "request": {"method": "POST", "url": r["resourceType"]},
            }
            for i, r in enumerate(resources)
        ],
    }
