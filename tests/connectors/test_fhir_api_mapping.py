"""The gateway's FHIR mapping, webhook signatures and token store, without a broker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectors.fhir.consent import consent_from
from connectors.fhir.inputs import GatewayInputError
from connectors.fhir.patch import apply_json_patch
from connectors.fhir.patients import Resolver
from connectors.fhir.screenings import referral_from, screening_from
from connectors.fhir.tasks import org_task, status_change_from
from connectors.gateway.notifier import check_url, new_secret, sign, verify
from connectors.gateway.tokens import TokenStore, issue_token, revoke_token, tokens_path
from schemas.codes import SDOH_CATEGORY_SYSTEM, Category, Instrument
from schemas.events import ReferralOffered

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fhir"


def _patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "pat",
        "identifier": [{"value": "mrn-1"}],
        "name": [{"given": ["Colin"], "family": "Abbas"}],
        "telecom": [{"system": "phone", "value": "+17185550100"}],
        "address": [{"postalCode": "10451"}],
    }


def _consent(**provision: Any) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "id": "c",
        "status": "active",
        "patient": {"reference": "#pat"},
        "provision": provision,
    }


def _hvs(*contained: dict[str, Any]) -> dict[str, Any]:
    qr = json.loads(
        (FIXTURES / "SDOHCC-QuestionnaireResponseHungerVitalSignExample.json").read_text()
    )
    qr["contained"] = list(contained)
    qr["subject"] = {"reference": "#pat"}
    return qr


def test_the_igs_hunger_vital_sign_with_contained_patient_and_consent_is_a_screening() -> None:
    event, consented = screening_from(_hvs(_patient(), _consent()), Resolver())
    assert consented
    assert event.instrument is Instrument.HUNGER_VITAL_SIGN
    assert ("88122-7", "LA28397-0") in {(a.question, a.answer) for a in event.answers}
    assert (event.patient.id, event.patient.given_name) == ("mrn-1", "Colin")
    assert event.consent.granted and event.consent.categories is None


def test_a_screening_without_consent_discloses_nothing() -> None:
    event, consented = screening_from(_hvs(_patient()), Resolver())
    assert not consented and not event.consent.granted


def test_a_bare_patient_reference_is_refused_without_echoing_it() -> None:
    qr = _hvs()
    qr["subject"] = {"reference": "Patient/pat-53234", "display": "COLIN ABBAS"}
    with pytest.raises(GatewayInputError) as error:
        screening_from(qr, Resolver())
    assert error.value.status == 422 and "ABBAS" not in str(error.value)


def test_consent_categories_period_and_denials() -> None:
    limited = consent_from(
        _consent(
            code=[{"coding": [{"system": SDOH_CATEGORY_SYSTEM, "code": "food-insecurity"}]}],
            period={"end": "2030-01-01T00:00:00Z"},
        )
    )
    assert limited.granted and limited.categories == [Category.FOOD_INSECURITY]
    assert limited.expires_at is not None and limited.expires_at.year == 2030
    assert not consent_from(_consent(type="deny")).granted
    assert not consent_from({**_consent(), "status": "inactive"}).granted
    with pytest.raises(GatewayInputError):
        consent_from(_consent(code=[{"coding": [{"system": SDOH_CATEGORY_SYSTEM, "code": "x"}]}]))


def test_a_service_request_needs_a_category_and_a_consent() -> None:
    sr: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": "ref-1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "#pat"},
        "contained": [_patient()],
        "category": [{"coding": [{"system": SDOH_CATEGORY_SYSTEM, "code": "food-insecurity"}]}],
        "performer": [{"reference": "HealthcareService/svc-1"}],
    }
    with pytest.raises(GatewayInputError, match="Consent"):
        referral_from(sr, Resolver())
    sr["contained"].append(_consent())
    event = referral_from(sr, Resolver())
    assert (event.referral_id, event.category, event.service_id) == (
        "ref-1",
        Category.FOOD_INSECURITY,
        "svc-1",
    )
    with pytest.raises(GatewayInputError, match="category"):
        referral_from({**sr, "category": []}, Resolver())


def _offer() -> dict[str, Any]:
    return json.loads(
        ReferralOffered.new(
            referral_id="mott-haven:ref-1",
            service_id="svc-1",
            category="food-insecurity",
            respond_by="2030-01-01T00:00:00Z",
            patient={"given_name": "Colin", "phone": "+17185550100", "postal_code": "10451"},
        ).model_dump_json()
    )


def test_an_offer_is_a_gravity_task_with_the_minimum_necessary() -> None:
    task, sr, patient = org_task({"offer": _offer()}, "bronx-pantry")
    assert task["status"] == "requested"
    assert task["focus"]["reference"] == f"ServiceRequest/{sr['id']}"
    assert task["for"]["reference"] == f"Patient/{patient['id']}"
    assert task["restriction"]["period"]["end"].startswith("2030-01-01")
    assert set(patient) == {"resourceType", "id", "name", "telecom", "address"}
    withdrawn, _, _ = org_task({"offer": _offer(), "withdrawn": "timeout"}, "bronx-pantry")
    assert (withdrawn["status"], withdrawn["statusReason"]["text"]) == ("cancelled", "timeout")


def test_a_patched_task_becomes_a_status_change() -> None:
    task, _, _ = org_task({"offer": _offer()}, "bronx-pantry")
    patched = apply_json_patch(
        task,
        [
            {"op": "replace", "path": "/status", "value": "completed"},
            {"op": "add", "path": "/output", "value": [{"valueString": "enrolled in SNAP"}]},
        ],
    )
    event = status_change_from(patched, "mott-haven:ref-1")
    assert (event.status.value, event.outcome) == ("completed", "enrolled in SNAP")
    with pytest.raises(GatewayInputError, match="reason"):
        status_change_from({**task, "status": "rejected"}, "r")
    with pytest.raises(GatewayInputError, match="status"):
        status_change_from({**task, "status": "requested"}, "r")
    for bad in (
        [{"op": "move", "path": "/status"}],
        [{"op": "replace", "path": "/nope/deeper", "value": 1}],
        [{"op": "remove", "path": "/identifier/9"}],
        "not a list",
    ):
        with pytest.raises(GatewayInputError):
            apply_json_patch(task, bad)
    with pytest.raises(GatewayInputError) as conflict:
        apply_json_patch(task, [{"op": "test", "path": "/status", "value": "accepted"}])
    assert conflict.value.status == 409


def test_signatures_follow_standard_webhooks() -> None:
    # the Standard Webhooks specification's published example
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": signature,
    }
    assert verify(secret, headers, body, now=1614265330)
    assert not verify(secret, headers, body, now=1614265330 + 3600)  # too old
    assert not verify(new_secret(), headers, body, now=1614265330)
    assert not verify(secret, {**headers, "webhook-id": "other"}, body, now=1614265330)


def test_webhook_urls_are_https_unless_loopback_is_allowed() -> None:
    assert check_url("https://hooks.example.org/refnet", allow_http_loopback=False) is None
    assert check_url("http://127.0.0.1:9000/hook", allow_http_loopback=False) is not None
    assert check_url("http://127.0.0.1:9000/hook", allow_http_loopback=True) is None
    assert check_url("http://hooks.example.org/", allow_http_loopback=True) is not None
    assert check_url("https://user:pw@hooks.example.org/", allow_http_loopback=False) is not None


def test_tokens_are_stored_hashed_and_replaced_on_reissue(tmp_path: Path) -> None:
    first = issue_token(tmp_path, "org", "bronx-pantry")
    store = TokenStore(tmp_path)
    assert store.lookup(first) is not None and store.lookup(first).id == "bronx-pantry"  # type: ignore[union-attr]
    assert first not in tokens_path(tmp_path).read_text()
    assert tokens_path(tmp_path).stat().st_mode & 0o777 == 0o600
    second = issue_token(tmp_path, "org", "bronx-pantry")
    assert TokenStore(tmp_path).lookup(first) is None
    assert TokenStore(tmp_path).lookup(second) is not None
    assert revoke_token(tmp_path, "org", "bronx-pantry")
    assert TokenStore(tmp_path).lookup(second) is None
