"""The events the benchmarks publish: services, patients and their screenings."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from schemas.events import ScreeningSubmitted, ServiceUpserted

#: AHC-HRSN answers: food insecurity and a transportation need.
FOOD_AND_TRANSPORT = [
    {"question": "88122-7", "answer": "LA28397-0"},  # often worried food would run out
    {"question": "88123-5", "answer": "LA28398-8"},
    {"question": "93030-5", "answer": "LA33-6"},  # transportation: yes
]
#: Food insecurity alone.
FOOD = FOOD_AND_TRANSPORT[:2]
#: Food insecurity alone, worried "sometimes".
FOOD_ONLY = [
    {"question": "88122-7", "answer": "LA6729-3"},
    {"question": "88123-5", "answer": "LA28398-8"},
]


def service(
    service_id: str,
    org_id: str,
    *,
    postal_codes: tuple[str, ...],
    categories: tuple[str, ...] = ("food-insecurity",),
    languages: tuple[str, ...] = ("en",),
    capacity: dict[str, Any] | None = None,
    response_sla: str = "PT24H",
    name: str | None = None,
    occurred_at: datetime | None = None,
) -> ServiceUpserted:
    return ServiceUpserted.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "occurred_at": occurred_at or datetime.now(UTC),
            "service_id": service_id,
            "org_id": org_id,
            "name": name or f"Service {service_id}",
            "status": "active",
            "categories": list(categories),
            "postal_codes": list(postal_codes),
            "languages": list(languages),
            "capacity": capacity,
            "response_sla": response_sla,
        }
    )


def patient(
    patient_id: str,
    *,
    language: str = "en",
    postal_code: str = "10451",
    birth_date: str | None = "1984-03-02",
) -> dict[str, Any]:
    fields = {
        "id": patient_id,
        "given_name": "Ana",
        "phone": "+17185550100",
        "preferred_language": language,
        "postal_code": postal_code,
    }
    return fields if birth_date is None else {**fields, "birth_date": birth_date}


def screening(
    screening_id: str, *, answers: list[dict[str, str]], patient_fields: dict[str, Any]
) -> ScreeningSubmitted:
    """A clinic's AHC-HRSN screening, consent granted for every category."""
    return ScreeningSubmitted.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "occurred_at": datetime.now(UTC),
            "screening_id": screening_id,
            "patient": patient_fields,
            "consent": {"granted": True, "categories": None, "expires_at": None},
            "instrument": "ahc-hrsn",
            "answers": answers,
        }
    )
