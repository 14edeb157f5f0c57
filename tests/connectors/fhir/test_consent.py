"""A resource takes only its own patient's Consent, and consent never widens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.fhir.consent import consent_from
from connectors.fhir.inputs import GatewayInputError
from connectors.fhir.patients import Resolver
from connectors.fhir.screenings import referral_from, screening_from
from schemas.codes import SDOH_CATEGORY_SYSTEM, Category
from tests.network import builders as b

NOW = datetime(2026, 12, 6, 17, tzinfo=UTC)
IPV = Category.INTIMATE_PARTNER_VIOLENCE


def _code(*codes: str, system: str = SDOH_CATEGORY_SYSTEM) -> list[dict[str, Any]]:
    return [{"coding": [{"system": system, "code": c}]} for c in codes]


def _patient(ident: str, given: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": ident,
        "identifier": [{"value": f"mrn-{ident}"}],
        "name": [{"given": [given]}],
    }


def _consent(patient: str | None, status: str = "active", **provision: Any) -> dict[str, Any]:
    consent: dict[str, Any] = {
        "resourceType": "Consent",
        "status": status,
        "provision": {"type": "permit", **provision},
    }
    if patient is not None:
        consent["patient"] = {"reference": patient}
    return consent


def _bundle(*resources: dict[str, Any]) -> Resolver:
    """The index POST /fhir builds of a Bundle's entries (by fullUrl and type/id)."""
    index: dict[str, dict[str, Any]] = {}
    for n, resource in enumerate(resources):
        index[f"urn:uuid:00000000-0000-0000-0000-{n:012d}"] = resource
        if "id" in resource:
            index[f"{resource['resourceType']}/{resource['id']}"] = resource
    return Resolver(index)


def _screening(of: str) -> dict[str, Any]:
    items = [
        {
            "linkId": f"/{a['question']}",
            "answer": [{"valueCoding": {"system": "http://loinc.org", "code": a["answer"]}}],
        }
        for a in b.FOOD_AND_TRANSPORT
    ]
    return {
        "resourceType": "QuestionnaireResponse",
        "id": f"scr-{of}",
        "questionnaire": "http://loinc.org/q/96777-8",
        "status": "completed",
        "subject": {"reference": f"Patient/{of}"},
        "item": items,
    }


def _referral(of: str) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": f"ref-{of}",
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{of}"},
        "category": _code("food-insecurity"),
    }


def test_in_a_bundle_each_screening_takes_its_own_patient_s_consent() -> None:
    resolver = _bundle(
        _patient("a", "Ana"),
        _consent("Patient/a"),
        _patient("b", "Bo"),
        _consent("Patient/b", status="rejected"),
        _screening("a"),
        _screening("b"),
    )
    for_a, consented_a = screening_from(_screening("a"), resolver)
    for_b, consented_b = screening_from(_screening("b"), resolver)
    assert consented_a and for_a.consent.granted
    assert consented_b and not for_b.consent.granted


def test_another_patient_s_consent_is_no_consent() -> None:
    resolver = _bundle(_patient("a", "Ana"), _consent("Patient/a"), _patient("b", "Bo"))
    screening, consented = screening_from(_screening("b"), resolver)
    assert not consented and not screening.consent.granted
    with pytest.raises(GatewayInputError, match="Consent"):
        referral_from(_referral("b"), resolver)
    assert referral_from(_referral("a"), resolver).consent.granted


def test_a_consent_naming_no_patient_is_no_consent() -> None:
    resolver = _bundle(_patient("b", "Bo"), _consent(None))
    screening, consented = screening_from(_screening("b"), resolver)
    assert not consented and not screening.consent.granted


def test_supporting_info_naming_another_patient_s_consent_is_refused() -> None:
    other = {**_consent("Patient/a"), "id": "ca"}
    resolver = _bundle(_patient("a", "Ana"), other, _patient("b", "Bo"))
    referral = {**_referral("b"), "supportingInfo": [{"reference": "Consent/ca"}]}
    with pytest.raises(GatewayInputError, match="patient is not the resource's subject"):
        referral_from(referral, resolver)


def test_a_nested_deny_removes_its_category_from_all() -> None:
    consent = consent_from(
        _consent("#p", provision=[{"type": "deny", "code": _code(IPV.value)}]), NOW
    )
    assert consent.granted and consent.categories is not None
    assert set(consent.categories) == set(Category) - {IPV}
    assert not consent.covers(IPV, NOW)
    assert consent.covers(Category.FOOD_INSECURITY, NOW)


def test_a_nested_deny_narrows_an_explicit_list_and_may_empty_it() -> None:
    listed = _code("food-insecurity", IPV.value)
    narrowed = consent_from(
        _consent("#p", code=listed, provision=[{"type": "deny", "code": _code(IPV.value)}]), NOW
    )
    assert narrowed.categories == [Category.FOOD_INSECURITY]
    emptied = consent_from(
        _consent(
            "#p", code=_code(IPV.value), provision=[{"type": "deny", "code": _code(IPV.value)}]
        ),
        NOW,
    )
    assert not emptied.granted
    everything = consent_from(_consent("#p", provision=[{"type": "deny"}]), NOW)
    assert not everything.granted


@pytest.mark.parametrize(
    ("provision", "rule"),
    [
        ({"actor": [{"reference": {"reference": "Organization/x"}}]}, "actor"),
        ({"purpose": [{"system": "x", "code": "y"}]}, "purpose"),
        ({"period": {"start": "2027-03-01T00:00:00Z"}}, "period.start"),
        ({"period": {"start": "2026-12-07"}}, "period.start"),
        ({"code": _code("x", system="http://loinc.org")}, "SDOHCC categories"),
        ({"action": [{"coding": [{"code": "access"}]}]}, "action"),
        ({"provision": [{"type": "permit", "code": _code(IPV.value)}]}, "nested provision"),
        ({"provision": [{"type": "deny", "actor": [{"role": {}}]}]}, "actor"),
        ({"provision": [{"type": "deny", "period": {"end": "2027-01-01"}}]}, "period"),
        ({"provision": [{"type": "deny", "code": _code("x", system="urn:y")}]}, "SDOHCC"),
    ],
)
def test_a_restriction_refnet_cannot_represent_is_refused(
    provision: dict[str, Any], rule: str
) -> None:
    with pytest.raises(GatewayInputError, match=rule) as refused:
        consent_from(_consent("#p", **provision), NOW)
    assert refused.value.status == 422


def test_a_past_start_and_a_disclose_action_are_taken() -> None:
    disclose = [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentaction",
                    "code": "disclose",
                }
            ]
        }
    ]
    start = (NOW - timedelta(days=1)).isoformat()
    consent = consent_from(_consent("#p", period={"start": start}, action=disclose), NOW)
    assert consent.granted and consent.categories is None
    assert consent_from(_consent("#p", period={"start": "2026-12-05"}), NOW).granted


def test_a_refused_consent_stays_refused_whatever_it_nests() -> None:
    consent = _consent("#p", status="active", provision=[{"type": "permit"}])
    consent["provision"]["type"] = "deny"
    assert not consent_from(consent, NOW).granted


def test_two_consents_of_one_patient_are_refused_rather_than_one_chosen() -> None:
    resolver = _bundle(
        _patient("a", "Ana"), _consent("Patient/a"), _consent("Patient/a", status="rejected")
    )
    with pytest.raises(GatewayInputError, match="more than one Consent"):
        screening_from(_screening("a"), resolver)
