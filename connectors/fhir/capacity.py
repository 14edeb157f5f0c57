"""An organization's capacity, as a HealthcareService with the IG's capacity extension.

The Gravity IG's (SDOH Clinical Care STU 3) ``SDOHCC-ExtensionHealthcareServiceCapacityStatus``
on HealthcareService is complex: ``capacityStatus`` (1..1, a CodeableConcept from
``SDOHCC-ValueSetCapacityStatus``: ``capacity``, ``no-capacity``, ``waitlist``,
``additional-assessment-required`` of ``SDOHCC-CodeSystemTemporaryCodes``) and
``capacityNotes`` (0..1, a string). refnet's count of places left travels in a
sub-extension of its own, ``available`` (valueUnsignedInt), which is optional: an
organization sends the IG's shape, refnet's count, or both. Read back, a service always
carries ``capacityStatus`` (from the count when only a count was given: ``capacity``
above 0, ``no-capacity`` at 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from connectors.fhir.inputs import GatewayInputError
from connectors.fhir.mapping import fhir_id
from schemas.codes import SDOH_CATEGORY_SYSTEM
from schemas.events import CapacityStatus

CAPACITY_EXTENSION: Final = (
    "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/"
    "SDOHCC-ExtensionHealthcareServiceCapacityStatus"
)
#: the IG's capacity status codes are in its temporary code system (as the categories are)
CAPACITY_STATUS_SYSTEM: Final = SDOH_CATEGORY_SYSTEM
CAPACITY_DISPLAY: Final = {
    CapacityStatus.CAPACITY: "Capacity",
    CapacityStatus.NO_CAPACITY: "No Capacity",
    CapacityStatus.WAITLIST: "Waitlist",
    CapacityStatus.ADDITIONAL_ASSESSMENT_REQUIRED: "Additional Assessment Required",
}
#: the longest capacityNotes kept (the organization's words for referral sources)
MAX_NOTES: Final = 1000


@dataclass(frozen=True, slots=True)
class ServiceCapacity:
    """What an organization states of one service's capacity."""

    available: int | None = None
    status: CapacityStatus | None = None
    notes: str | None = None

    def effective_status(self) -> CapacityStatus:
        """The IG's status: as stated, else from the count."""
        if self.status is not None:
            return self.status
        return CapacityStatus.CAPACITY if self.available else CapacityStatus.NO_CAPACITY

    def as_json(self) -> dict[str, Any]:
        return {
            "available": self.available,
            "status": self.status.value if self.status else None,
            "notes": self.notes,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServiceCapacity:
        status = data.get("status")
        known = CapacityStatus(status) if status else None
        return cls(data.get("available"), known, data.get("notes"))


def _status(part: dict[str, Any]) -> CapacityStatus:
    concept = part.get("valueCodeableConcept")
    codings = concept.get("coding") if isinstance(concept, dict) else None
    for coding in codings if isinstance(codings, list) else []:
        if not isinstance(coding, dict) or coding.get("system") != CAPACITY_STATUS_SYSTEM:
            continue
        code = coding.get("code")
        if isinstance(code, str) and code in CapacityStatus.__members__.values():
            return CapacityStatus(code)
        break
    raise GatewayInputError(
        "capacityStatus needs a valueCodeableConcept with a coding of "
        f"{CAPACITY_STATUS_SYSTEM}: one of {', '.join(s.value for s in CapacityStatus)}"
    )


def _available(part: dict[str, Any]) -> int:
    value = part.get("valueUnsignedInt", part.get("valueInteger"))
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise GatewayInputError("'available' needs a valueUnsignedInt (places left, 0 or more)")
    return value


def capacity_from(resource: dict[str, Any]) -> ServiceCapacity:
    """The capacity a HealthcareService states (a 422 with the reason when it states none,
    or states it in a shape the IG does not have)."""
    available: int | None = None
    status: CapacityStatus | None = None
    notes: str | None = None
    found = False
    extensions = resource.get("extension")
    for ext in extensions if isinstance(extensions, list) else []:
        if not isinstance(ext, dict) or ext.get("url") != CAPACITY_EXTENSION:
            continue
        found = True
        parts = ext.get("extension")
        for part in parts if isinstance(parts, list) else []:
            if not isinstance(part, dict):
                continue
            if part.get("url") == "available":
                available = _available(part)
            elif part.get("url") == "capacityStatus":
                status = _status(part)
            elif part.get("url") == "capacityNotes":
                text = part.get("valueString")
                if not isinstance(text, str):
                    raise GatewayInputError("capacityNotes needs a valueString")
                notes = text[:MAX_NOTES]
    if not found or (available is None and status is None):
        raise GatewayInputError(
            f"the HealthcareService needs the capacity-status extension ({CAPACITY_EXTENSION}) "
            "with capacityStatus (valueCodeableConcept) and/or refnet's 'available' "
            "(valueUnsignedInt)"
        )
    if status is CapacityStatus.NO_CAPACITY and available:
        raise GatewayInputError("capacityStatus no-capacity contradicts 'available' above 0")
    return ServiceCapacity(available, status, notes)


def healthcare_service(org_id: str, service_id: str, capacity: ServiceCapacity) -> dict[str, Any]:
    """The organization's service with its capacity, in the IG's shape."""
    status = capacity.effective_status()
    parts: list[dict[str, Any]] = []
    if capacity.available is not None:
        parts.append({"url": "available", "valueUnsignedInt": capacity.available})
    parts.append(
        {
            "url": "capacityStatus",
            "valueCodeableConcept": {
                "coding": [
                    {
                        "system": CAPACITY_STATUS_SYSTEM,
                        "code": status.value,
                        "display": CAPACITY_DISPLAY[status],
                    }
                ]
            },
        }
    )
    notes = capacity.notes
    if notes is None and capacity.available is not None:
        notes = f"{capacity.available} available"
    if notes is not None:
        parts.append({"url": "capacityNotes", "valueString": notes})
    return {
        "resourceType": "HealthcareService",
        "id": fhir_id(service_id),
        "identifier": [{"system": "urn:refnet:service-id", "value": service_id}],
        "active": True,
        "providedBy": {"reference": f"Organization/{org_id}"},
        "extension": [{"url": CAPACITY_EXTENSION, "extension": parts}],
    }


__all__ = [
    "CAPACITY_EXTENSION",
    "CAPACITY_STATUS_SYSTEM",
    "ServiceCapacity",
    "capacity_from",
    "healthcare_service",
]
