"""Events as clinics, organizations and directory admins publish them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from schemas.events import (
    ReferralCancelled,
    ReferralRequested,
    ReferralStatusChanged,
    ScreeningSubmitted,
    ServiceCapacityChanged,
    ServiceUpserted,
)


def _base() -> dict[str, Any]:
    return {"event_id": uuid.uuid4(), "occurred_at": datetime.now(UTC)}


def service(
    service_id: str,
    org_id: str,
    *,
    categories: tuple[str, ...] = ("food-insecurity",),
    postal_codes: tuple[str, ...] = ("10451", "10452"),
    languages: tuple[str, ...] = ("en",),
    available: int | None = 10,
    response_sla: str | None = "PT1H",
    status: str = "active",
) -> ServiceUpserted:
    return ServiceUpserted.model_validate(
        {
            **_base(),
            "service_id": service_id,
            "org_id": org_id,
            "name": f"Service {service_id}",
            "status": status,
            "categories": list(categories),
            "postal_codes": list(postal_codes),
            "languages": list(languages),
            "capacity": None
            if available is None
            else {"available": available, "unit": "households"},
            "response_sla": response_sla,
        }
    )


def patient(
    pid: str = "pt-8c21", *, language: str = "en", postal_code: str = "10451"
) -> dict[str, Any]:
    return {
        "id": pid,
        "given_name": "Ana",
        "phone": "+17185550100",
        "preferred_language": language,
        "postal_code": postal_code,
        "birth_date": "1984-03-02",
    }


def consent(categories: list[str] | None = None, granted: bool = True) -> dict[str, Any]:
    return {"granted": granted, "categories": categories, "expires_at": None}


FOOD_AND_TRANSPORT = [
    {"question": "88122-7", "answer": "LA28397-0"},  # often worried food would run out
    {"question": "88123-5", "answer": "LA28398-8"},
    {"question": "93030-5", "answer": "LA33-6"},  # transportation: yes
]
FOOD_ONLY = [
    {"question": "88122-7", "answer": "LA6729-3"},
    {"question": "88123-5", "answer": "LA28398-8"},
]


def screening(
    screening_id: str,
    *,
    answers: list[dict[str, Any]] | None = None,
    patient_fields: dict[str, Any] | None = None,
    consent_fields: dict[str, Any] | None = None,
) -> ScreeningSubmitted:
    return ScreeningSubmitted.model_validate(
        {
            **_base(),
            "screening_id": screening_id,
            "patient": patient_fields or patient(),
            "consent": consent_fields or consent(),
            "instrument": "ahc-hrsn",
            "answers": answers if answers is not None else FOOD_AND_TRANSPORT,
        }
    )


def requested(referral_id: str, category: str = "food-insecurity", **kw: Any) -> ReferralRequested:
    return ReferralRequested.model_validate(
        {
            **_base(),
            "referral_id": referral_id,
            "patient": kw.get("patient_fields") or patient(),
            "consent": kw.get("consent_fields") or consent(),
            "category": category,
            "service_id": kw.get("service_id"),
            "priority": "routine",
            "note": None,
        }
    )


def cancelled(referral_id: str, reason: str | None = "patient moved") -> ReferralCancelled:
    return ReferralCancelled.model_validate(
        {**_base(), "referral_id": referral_id, "reason": reason}
    )


def status(
    referral_id: str, value: str, reason: str | None = None, outcome: str | None = None
) -> ReferralStatusChanged:
    return ReferralStatusChanged.model_validate(
        {
            **_base(),
            "referral_id": referral_id,
            "status": value,
            "reason": reason,
            "outcome": outcome,
            "note": None,
        }
    )


def capacity(service_id: str, available: int) -> ServiceCapacityChanged:
    return ServiceCapacityChanged.model_validate(
        {**_base(), "service_id": service_id, "available": available}
    )
