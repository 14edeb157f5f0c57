"""Capacity in the Gravity IG's terms (issue 18, item 19): the IG's HealthcareService
capacity-status extension read and written, refnet's own ``available`` still taken."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectors.fhir.capacity import (
    CAPACITY_EXTENSION,
    CAPACITY_STATUS_SYSTEM,
    ServiceCapacity,
    capacity_from,
    healthcare_service,
)
from connectors.fhir.inputs import GatewayInputError
from schemas.events import CapacityStatus

EXAMPLE = json.loads(
    (
        Path(__file__).resolve().parents[1]
        / "fixtures"
        / "fhir"
        / "SDOHCC-HealthcareServiceSocialCareProgram.json"
    ).read_text()
)


def _parts(resource: dict[str, Any]) -> dict[str, Any]:
    [ext] = [e for e in resource["extension"] if e["url"] == CAPACITY_EXTENSION]
    return {p["url"]: p for p in ext["extension"]}


def _with(*parts: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "HealthcareService",
        "extension": [{"url": CAPACITY_EXTENSION, "extension": list(parts)}],
    }


def _status(code: str) -> dict[str, Any]:
    coding = {"system": CAPACITY_STATUS_SYSTEM, "code": code}
    return {"url": "capacityStatus", "valueCodeableConcept": {"coding": [coding]}}


def test_the_ig_example_round_trips_without_a_count() -> None:
    capacity = capacity_from(EXAMPLE)
    assert capacity == ServiceCapacity(available=None, status=CapacityStatus.CAPACITY)
    back = healthcare_service("org-a", "svc-1", capacity)
    [coding] = _parts(back)["capacityStatus"]["valueCodeableConcept"]["coding"]
    [sent] = _parts(EXAMPLE)["capacityStatus"]["valueCodeableConcept"]["coding"]
    assert (coding["system"], coding["code"]) == (sent["system"], sent["code"])
    assert "available" not in _parts(back)
    assert capacity_from(back) == capacity


@pytest.mark.parametrize("code", [s.value for s in CapacityStatus])
def test_every_ig_status_is_taken_with_notes(code: str) -> None:
    notes = {"url": "capacityNotes", "valueString": "about 15 on the waitlist"}
    capacity = capacity_from(_with(_status(code), notes))
    assert capacity.status == CapacityStatus(code)
    assert capacity.notes == "about 15 on the waitlist"
    assert _parts(healthcare_service("o", "s", capacity))["capacityNotes"] == notes


def test_refnets_count_alone_is_still_taken_and_reads_back_with_the_igs_status() -> None:
    capacity = capacity_from(_with({"url": "available", "valueUnsignedInt": 0}))
    assert capacity == ServiceCapacity(available=0)
    parts = _parts(healthcare_service("o", "s", capacity))
    assert parts["available"] == {"url": "available", "valueUnsignedInt": 0}
    assert parts["capacityStatus"]["valueCodeableConcept"]["coding"][0]["code"] == "no-capacity"
    four = capacity_from(_with({"url": "available", "valueUnsignedInt": 4}, _status("waitlist")))
    assert four == ServiceCapacity(available=4, status=CapacityStatus.WAITLIST)


@pytest.mark.parametrize(
    ("resource", "says"),
    [
        ({"resourceType": "HealthcareService"}, "capacity-status extension"),
        (_with(), "capacityStatus"),
        (_with(_status("full")), "one of capacity, no-capacity"),
        (
            _with({"url": "capacityStatus", "valueCodeableConcept": {"coding": [{"code": "x"}]}}),
            "coding of",
        ),
        (_with({"url": "available", "valueUnsignedInt": -1}), "valueUnsignedInt"),
        (_with({"url": "available", "valueUnsignedInt": 2}, _status("no-capacity")), "contradicts"),
        (_with(_status("capacity"), {"url": "capacityNotes", "valueString": 5}), "valueString"),
    ],
)
def test_a_capacity_the_ig_cannot_have_is_refused_with_the_reason(
    resource: dict[str, Any], says: str
) -> None:
    with pytest.raises(GatewayInputError, match=says):
        capacity_from(resource)
