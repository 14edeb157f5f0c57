"""A screening read back as the QuestionnaireResponse its clinic posted (issue 18, item 16).

The gateway keeps no answers and no demographics: what it reads back is what the
network knows of the screening without them, from the ``screening.submitted`` just
sent or the network's ``screening.answered`` on the clinic's updates topic: the id,
the questionnaire, the patient's reference, the time, and ``completed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.fhir.mapping import fhir_id
from schemas.instruments import QUESTIONNAIRE_CANONICALS

_CANONICAL_OF = {instrument.value: url for url, instrument in QUESTIONNAIRE_CANONICALS.items()}


def screening_record(message: Mapping[str, Any]) -> dict[str, Any]:
    """What the gateway keeps of a screening (``screening.submitted`` or
    ``screening.answered``): ids, instrument and time only."""
    patient = message.get("patient")
    patient_id = patient.get("id") if isinstance(patient, Mapping) else message.get("patient_id")
    return {
        "screening_id": str(message["screening_id"]),
        "patient_id": str(patient_id),
        "instrument": str(message.get("instrument") or ""),
        "at": str(message.get("occurred_at") or ""),
    }


def questionnaire_response(record: Mapping[str, Any]) -> dict[str, Any]:
    """The QuestionnaireResponse of a kept screening (no items: the gateway keeps none)."""
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": fhir_id(record["screening_id"]),
        "meta": {"lastUpdated": record["at"]},
        "identifier": {"system": "urn:refnet:screening-id", "value": record["screening_id"]},
        "status": "completed",
        "subject": {"reference": f"Patient/{fhir_id(record['patient_id'])}"},
        "authored": record["at"],
    }
    canonical = _CANONICAL_OF.get(record["instrument"])
    if canonical is not None:
        resource["questionnaire"] = canonical
    return resource


__all__ = ["questionnaire_response", "screening_record"]
