"""FHIR as implementers expect it, without a broker (issue 18, items 16, 18 and 20):
search paging, sorting and unknown parameters; versions and If-Match; the
CapabilityStatement; Consent dates of every FHIR precision; the organization's Task
tied to the ServiceRequest and the clinic's Task; the Subscription handshake."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib import metadata
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from starlette.exceptions import HTTPException as StarletteHTTPException

from connectors.fhir.consent import consent_from
from connectors.fhir.inputs import GatewayInputError
from connectors.fhir.mapping import REFERRAL_ID_SYSTEM
from connectors.fhir.subscriptions import handshake
from connectors.fhir.tasks import org_task
from connectors.gateway import rest
from connectors.gateway.routers.metadata import capability_statement
from connectors.gateway.search import parse_search, searchset
from schemas.events import ReferralOffered

BASE = "https://gw.example"
GRAVITY = "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition"


def _task(n: int, updated: str) -> dict[str, Any]:
    return {"resourceType": "Task", "id": f"t{n}", "lastModified": updated}


def _found(count: int) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [(_task(n, (start + timedelta(hours=n)).isoformat()), []) for n in range(count)]


def _link(bundle: dict[str, Any], relation: str) -> list[tuple[str, str]] | None:
    for link in bundle.get("link", []):
        if link["relation"] == relation:
            return parse_qsl(urlsplit(link["url"]).query)
    return None


def test_count_pages_with_a_next_link_until_the_last_page() -> None:
    search = parse_search("Task", [("status", "requested"), ("_count", "2")], ["status"])
    first = searchset(BASE, search, _found(5))
    assert first["total"] == 5
    assert [e["resource"]["id"] for e in first["entry"]] == ["t0", "t1"]
    assert ("status", "requested") in (_link(first, "self") or [])
    seen = [e["resource"]["id"] for e in first["entry"]]
    page = first
    while (following := _link(page, "next")) is not None:
        assert ("status", "requested") in following
        page = searchset(BASE, parse_search("Task", following, ["status"]), _found(5))
        seen += [e["resource"]["id"] for e in page["entry"]]
    assert seen == ["t0", "t1", "t2", "t3", "t4"]


def test_unknown_parameters_are_refused_unless_lenient_and_then_not_in_self() -> None:
    query = [("status", "requested"), ("patient", "Patient/x")]
    with pytest.raises(GatewayInputError) as refused:
        parse_search("Task", query, ["status"])
    assert refused.value.status == 400 and "patient" in str(refused.value)
    with pytest.raises(GatewayInputError):
        parse_search("Task", query, ["status"], "handling=strict")
    lenient = parse_search("Task", query, ["status"], "return=minimal; handling=lenient")
    self_link = _link(searchset(BASE, lenient, []), "self") or []
    assert ("status", "requested") in self_link
    assert all(name != "patient" for name, _ in self_link)


def test_sort_by_last_updated_or_refused() -> None:
    newest = searchset(BASE, parse_search("Task", [("_sort", "-_lastUpdated")], []), _found(3))
    assert [e["resource"]["id"] for e in newest["entry"]] == ["t2", "t1", "t0"]
    oldest = searchset(BASE, parse_search("Task", [("_sort", "_lastUpdated")], []), _found(3)[::-1])
    assert [e["resource"]["id"] for e in oldest["entry"]] == ["t0", "t1", "t2"]
    for bad in ([("_sort", "status")], [("_count", "0")], [("_count", "many")]):
        with pytest.raises(GatewayInputError):
            parse_search("Task", bad, ["status"])


def test_an_empty_result_has_no_entry_key() -> None:
    empty = searchset(BASE, parse_search("Task", [], []), [])
    assert empty["total"] == 0 and "entry" not in empty
    assert "entry" not in rest.searchset(BASE, [], [])


def test_versions_change_with_content_and_if_match_is_checked() -> None:
    task = _task(1, "2026-01-01T00:00:00+00:00")
    version = rest.version_of(task)
    assert rest.versioned(task)["meta"]["versionId"] == version
    assert rest.version_of({**task, "status": "accepted"}) != version
    rest.check_if_match(None, task)
    rest.check_if_match(f'W/"{version}"', task)
    rest.check_if_match("*", task)
    with pytest.raises(StarletteHTTPException) as mismatch:
        rest.check_if_match('W/"0000"', task)
    assert mismatch.value.status_code == 412


def test_the_capability_statement_names_profiles_software_and_its_start() -> None:
    statement = capability_statement()
    profiles = {p for r in statement["rest"][0]["resource"] for p in r.get("supportedProfile", [])}
    for name in ("SDOHCC-TaskForReferralManagement", "SDOHCC-ServiceRequest", "SDOHCC-Consent"):
        assert f"{GRAVITY}/{name}" in profiles
    assert statement["software"] == {"name": "refnet", "version": metadata.version("refnet")}
    started = datetime.fromisoformat(statement["date"])
    assert datetime.now(UTC) - timedelta(days=1) < started <= datetime.now(UTC)


@pytest.mark.parametrize(
    ("end", "expires"),
    [
        ("2027-11-20", "2027-11-20T23:59:59+00:00"),
        ("2027-11", "2027-11-30T23:59:59+00:00"),
        ("2028-02", "2028-02-29T23:59:59+00:00"),
        ("2027", "2027-12-31T23:59:59+00:00"),
        ("2027-11-20T10:00:00-05:00", "2027-11-20T15:00:00+00:00"),
    ],
)
def test_a_consent_period_end_of_any_fhir_precision_is_accepted(end: str, expires: str) -> None:
    consent = consent_from(
        {"resourceType": "Consent", "status": "active", "provision": {"period": {"end": end}}}
    )
    assert consent.expires_at is not None
    assert consent.expires_at == datetime.fromisoformat(expires)


def test_a_consent_period_end_that_is_no_date_is_still_refused() -> None:
    for end in ("2027-13", "2027-02-30", "next year"):
        with pytest.raises(GatewayInputError):
            consent_from(
                {
                    "resourceType": "Consent",
                    "status": "active",
                    "provision": {"period": {"end": end}},
                }
            )


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


def test_the_organizations_task_is_based_on_the_request_and_part_of_the_clinics_task() -> None:
    task, sr, _ = org_task({"offer": _offer()}, "bronx-pantry")
    assert task["basedOn"] == [{"reference": f"ServiceRequest/{sr['id']}"}]
    (part_of,) = task["partOf"]
    assert part_of["type"] == "Task"
    assert part_of["identifier"] == {"system": REFERRAL_ID_SYSTEM, "value": "mott-haven:ref-1"}


def test_last_modified_follows_the_networks_record_of_the_organizations_answer() -> None:
    offer = _offer()
    offered, _, _ = org_task({"offer": offer}, "bronx-pantry")
    later = datetime.fromisoformat(offered["lastModified"]) + timedelta(minutes=5)
    recorded = {"status": "accepted"}
    answered, _, _ = org_task(
        {"offer": offer, "recorded": recorded, "modified": later.isoformat()}, "bronx-pantry"
    )
    assert datetime.fromisoformat(answered["lastModified"]) == later
    assert answered["status"] == "accepted"


def test_a_handshake_is_a_backport_notification_of_type_handshake() -> None:
    bundle = handshake("sub-1")
    assert bundle["type"] == "history"
    (entry,) = bundle["entry"]
    params = {p["name"]: p for p in entry["resource"]["parameter"]}
    assert params["type"]["valueCode"] == "handshake"
    assert params["subscription"]["valueReference"]["reference"] == "Subscription/sub-1"
    assert params["events-since-subscription-start"]["valueString"] == "0"
