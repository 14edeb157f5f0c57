"""Deterministic events and commands for the broker-free tests of the network's decisions.

Every id and timestamp is fixed, so that expected outputs can be written out
exactly and two runs of one decision can be compared byte for byte.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from schemas.events import (
    DeadLetterSource,
    ReferralCancelled,
    ReferralRequested,
    ReferralStatusChanged,
    ScreeningSubmitted,
    ServiceCapacityChanged,
    ServiceUpserted,
)
from schemas.topics import Topics

TOPICS = Topics(prefix="sdoh")
CLINIC = "mott-haven"
#: A second clinic, free to choose the same screening and referral ids as CLINIC.
OTHER_CLINIC = "hunts-point"
PATIENT_ID = "pt-8c21"
EST = timezone(timedelta(hours=-5))
#: When the clinic submitted; the referral owner's "now" starts here too.
T0 = datetime(2026, 11, 24, 9, 15, tzinfo=EST)

#: AHC-HRSN answers with two positive needs: food and transportation.
FOOD_AND_TRANSPORT = [
    {"question": "88122-7", "answer": "LA28397-0"},
    {"question": "88123-5", "answer": "LA28398-8"},
    {"question": "93030-5", "answer": "LA33-6"},
]
#: AHC-HRSN answers with one positive need: food.
FOOD_ONLY = [
    {"question": "88122-7", "answer": "LA28397-0"},
    {"question": "88123-5", "answer": "LA28398-8"},
]
#: AHC-HRSN answers with no positive need.
NO_NEED = [
    {"question": "88122-7", "answer": "LA28398-8"},
    {"question": "88123-5", "answer": "LA28398-8"},
    {"question": "93030-5", "answer": "LA32-8"},
]


def eid(n: int) -> UUID:
    """The n-th fixed event id."""
    return UUID(int=n)


def patient(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "id": PATIENT_ID,
        "given_name": "Ana",
        "family_name": "Rivera",
        "phone": "+17185550100",
        "preferred_language": "es",
        "postal_code": "10451",
        "birth_date": "1984-03-02",
    }
    return {**fields, **overrides}


def consent(
    categories: list[str] | None = None, *, granted: bool = True, expires_at: str | None = None
) -> dict[str, Any]:
    return {"granted": granted, "categories": categories, "expires_at": expires_at}


def screening(
    screening_id: str = "scr-1",
    *,
    event: int = 1,
    answers: list[dict[str, Any]] | None = None,
    consent_fields: dict[str, Any] | None = None,
    patient_fields: dict[str, Any] | None = None,
    at: datetime = T0,
) -> ScreeningSubmitted:
    return ScreeningSubmitted.model_validate(
        {
            "event_id": eid(event),
            "occurred_at": at,
            "screening_id": screening_id,
            "patient": patient_fields or patient(),
            "consent": consent_fields or consent(),
            "instrument": "ahc-hrsn",
            "answers": FOOD_AND_TRANSPORT if answers is None else answers,
        }
    )


def requested(
    referral_id: str = "ref-clinic-42",
    *,
    event: int = 2,
    category: str = "food-insecurity",
    consent_fields: dict[str, Any] | None = None,
    service_id: str | None = None,
    priority: str = "routine",
    note: str | None = None,
) -> ReferralRequested:
    return ReferralRequested.model_validate(
        {
            "event_id": eid(event),
            "occurred_at": T0,
            "referral_id": referral_id,
            "patient": patient(),
            "consent": consent_fields or consent(),
            "category": category,
            "service_id": service_id,
            "priority": priority,
            "note": note,
        }
    )


def cancelled(
    referral_id: str, *, event: int = 3, reason: str | None = "patient-moved"
) -> ReferralCancelled:
    return ReferralCancelled.model_validate(
        {"event_id": eid(event), "occurred_at": T0, "referral_id": referral_id, "reason": reason}
    )


def status(
    referral_id: str,
    value: str,
    *,
    event: int = 10,
    reason: str | None = None,
    outcome: str | None = None,
    at: datetime = T0,
) -> ReferralStatusChanged:
    return ReferralStatusChanged.model_validate(
        {
            "event_id": eid(event),
            "occurred_at": at,
            "referral_id": referral_id,
            "status": value,
            "reason": reason,
            "outcome": outcome,
            "note": None,
        }
    )


def capacity(
    service_id: str, available: int, *, event: int = 20, at: datetime = T0
) -> ServiceCapacityChanged:
    return ServiceCapacityChanged.model_validate(
        {
            "event_id": eid(event),
            "occurred_at": at,
            "service_id": service_id,
            "available": available,
        }
    )


def service(
    service_id: str,
    org_id: str,
    *,
    categories: tuple[str, ...] = ("food-insecurity",),
    postal_codes: tuple[str, ...] = ("10451",),
    languages: tuple[str, ...] = ("en",),
    available: int | None = 10,
    response_sla: str | None = "PT4H",
    status: str = "active",
    at: datetime = T0 - timedelta(days=30),
) -> ServiceUpserted:
    return ServiceUpserted.model_validate(
        {
            "event_id": eid(1000 + sum(map(ord, service_id))),
            "occurred_at": at,
            "service_id": service_id,
            "org_id": org_id,
            "name": f"Service {service_id}",
            "status": status,
            "categories": list(categories),
            "postal_codes": list(postal_codes),
            "languages": list(languages),
            "capacity": None if available is None else {"available": available, "unit": "families"},
            "response_sla": response_sla,
        }
    )


def source(topic: str, key: str | None, *, offset: int = 7) -> DeadLetterSource:
    return DeadLetterSource(topic=topic, partition=0, offset=offset, key=key)


def assert_refers_to(letter: Any, payload: bytes) -> None:
    """A dead letter names its message by size and hash and shows a redacted excerpt only."""
    import base64
    import hashlib
    import json

    assert letter.payload_bytes == len(payload)
    assert letter.payload_sha256 == hashlib.sha256(payload).hexdigest()
    shown = base64.b64decode(letter.payload_base64)
    assert len(shown) <= 1024
    document = json.loads(payload)
    excerpt = json.loads(shown)
    assert excerpt.get("event_type") == document.get("event_type")
    for secret in ("patient", "consent", "answers", "note", "reason", "outcome"):
        assert secret not in excerpt, secret
