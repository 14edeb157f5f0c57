"""An organization's places left, as a HealthcareService with the IG's capacity extension.

The IG's (STU 3) capacity-status extension on HealthcareService is complex, with
``capacityStatus`` and ``capacityNotes``. refnet's count of places left travels
in a sub-extension of its own, ``available`` (valueUnsignedInt).
"""

from __future__ import annotations

from typing import Any, Final

from connectors.fhir.inputs import GatewayInputError
from connectors.fhir.mapping import fhir_id

CAPACITY_EXTENSION: Final = (
    "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/"
    "SDOHCC-ExtensionHealthcareServiceCapacityStatus"
)


def available_from(resource: dict[str, Any]) -> int:
    """The places left a HealthcareService states (a 422 without a usable count)."""
    available = None
    for ext in resource.get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == CAPACITY_EXTENSION:
            for part in ext.get("extension") or []:
                if isinstance(part, dict) and part.get("url") == "available":
                    available = part.get("valueUnsignedInt", part.get("valueInteger"))
    if not isinstance(available, int) or isinstance(available, bool) or available < 0:
        raise GatewayInputError(
            f"the HealthcareService needs the capacity-status extension ({CAPACITY_EXTENSION}) "
            "with the sub-extension 'available' (valueUnsignedInt)"
        )
    return available


def healthcare_service(org_id: str, service_id: str, available: int) -> dict[str, Any]:
    """The organization's service with its places left."""
    return {
        "resourceType": "HealthcareService",
        "id": fhir_id(service_id),
        "identifier": [{"system": "urn:refnet:service-id", "value": service_id}],
        "providedBy": {"reference": f"Organization/{org_id}"},
        "extension": [
            {
                "url": CAPACITY_EXTENSION,
                "extension": [
                    {"url": "available", "valueUnsignedInt": available},
                    {"url": "capacityNotes", "valueString": f"{available} available"},
                ],
            }
        ],
    }


__all__ = ["CAPACITY_EXTENSION", "available_from", "healthcare_service"]
