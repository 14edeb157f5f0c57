"""What a party codes in the IG's terms reaches the other side in the IG's terms (issue 18,
item 17): the clinic's ServiceRequest.code, an organization's Task.statusReason coding and
a completed Task's output, read from the IG's own example bodies and rendered back."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.task import Task

from connectors.fhir.inputs import GatewayInputError
from connectors.fhir.patients import Resolver
from connectors.fhir.screenings import referral_from
from connectors.fhir.tasks import clinic_task, org_task, status_change_from
from schemas.codes import RESULTING_ACTIVITY, SDOH_CATEGORY_SYSTEM, SNOMED_SYSTEM
from schemas.events import ReferralOffered, ReferralStatusRecorded, ReferralUpdated, new_event_id
from schemas.events.referrals import Coding, TaskOutput

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "fhir"
SR_EXAMPLE = "SDOHCC-ServiceRequestActiveFoodPantryApplicationAssistExample"
TASK_COMPLETED = "SDOHCC-TaskReferralManagementOrderFulfillmentCompletedExample"
PROCEDURE = "SDOHCC-ProcedureFoodPantryApplicationAssistanceExample"
FOOD_PANTRY = Coding(system=SNOMED_SYSTEM, code="467771000124109")
FOOD_PANTRY_JSON = {
    "system": SNOMED_SYSTEM,
    "code": "467771000124109",
    "display": "Assistance with application for food pantry program",
}
RESULTING_JSON = {
    "system": SDOH_CATEGORY_SYSTEM,
    "code": RESULTING_ACTIVITY,
    "display": "Resulting Activity",
}
NO_CAPACITY_JSON = {"system": SDOH_CATEGORY_SYSTEM, "code": "no-capacity", "display": "No Capacity"}


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def ig_service_request() -> dict[str, Any]:
    """The IG's ServiceRequest example, with its Patient and a Consent contained."""
    sr = load(SR_EXAMPLE)
    sr["contained"] = [
        {
            "resourceType": "Patient",
            "id": "pat",
            "identifier": [{"value": "pat-53234"}],
            "name": [{"given": ["Colin"], "family": "Abbas"}],
        },
        {
            "resourceType": "Consent",
            "id": "c",
            "status": "active",
            "patient": {"reference": "#pat"},
            "provision": {"type": "permit"},
        },
    ]
    sr["subject"] = {"reference": "#pat"}
    return sr


def ig_completed_task(current: dict[str, Any]) -> dict[str, Any]:
    """The IG's completed Task example over the organization's Task, its Procedure contained
    (refnet holds no Procedure: the reference becomes a contained one)."""
    task = {**copy.deepcopy(current), **load(TASK_COMPLETED)}
    task["id"] = current["id"]
    task["contained"] = [load(PROCEDURE)]
    task["output"][0]["valueReference"] = {"reference": f"#{PROCEDURE}"}
    return task


def offer(codes: list[Coding] | None = None) -> dict[str, Any]:
    return json.loads(
        ReferralOffered.new(
            referral_id="mott-haven:ref-1",
            service_id="svc-1",
            category="food-insecurity",
            respond_by="2030-01-01T00:00:00Z",
            patient={"given_name": "Colin"},
            codes=codes or [],
        ).model_dump_json()
    )


def clinic_view(**fields: Any) -> dict[str, Any]:
    update = ReferralUpdated.new(
        referral_id="ref-1",
        patient_id="pat-53234",
        category="food-insecurity",
        attempt=1,
        org_id="bronx-pantry",
        **fields,
    )
    return {"update": json.loads(update.model_dump_json()), "authored_on": "2026-01-05T10:00:00Z"}


# ---------------------------------------------------------------- the clinic's ServiceRequest.code
def test_the_igs_service_request_code_travels_as_codes() -> None:
    event = referral_from(ig_service_request(), Resolver())
    assert event.codes == [FOOD_PANTRY]


def test_the_organizations_service_request_shows_the_clinics_code_and_the_category() -> None:
    _, service_request, _ = org_task({"offer": offer([FOOD_PANTRY])}, "bronx-pantry")
    example = load(SR_EXAMPLE)
    assert service_request["code"] == example["code"]
    assert service_request["category"] == example["category"]


def test_the_clinics_service_request_shows_its_own_code() -> None:
    service_request, _ = clinic_task(clinic_view(status="requested", codes=[FOOD_PANTRY]), "c")
    assert service_request["code"] == {"coding": [FOOD_PANTRY_JSON]}


def test_a_code_of_a_system_refnet_does_not_carry_is_refused_naming_the_rule() -> None:
    sr = ig_service_request()
    sr["code"]["coding"].append({"system": "http://example.org/local", "code": "FP-1"})
    with pytest.raises(GatewayInputError, match="system must be one refnet carries") as refused:
        referral_from(sr, Resolver())
    assert refused.value.status == 422
    assert "FP-1" not in str(refused.value)


def test_a_code_with_free_text_is_refused() -> None:
    sr = ig_service_request()
    sr["code"]["coding"][0]["code"] = "Colin Abbas 12 Main St"
    with pytest.raises(GatewayInputError, match="1 to 64 letters") as refused:
        referral_from(sr, Resolver())
    assert "Colin" not in str(refused.value)


# ---------------------------------------------------------------- the organization's statusReason
def test_a_status_reason_coding_travels_and_renders_on_the_clinics_task() -> None:
    current, _, _ = org_task({"offer": offer()}, "bronx-pantry")
    task = {
        **current,
        "status": "on-hold",
        "statusReason": {"coding": [NO_CAPACITY_JSON], "text": "waiting for a slot"},
    }
    event = status_change_from(task, "mott-haven:ref-1")
    assert event.reason == "no-capacity"  # the code: aggregates count codes, never text
    assert event.reason_coding == Coding(system=SDOH_CATEGORY_SYSTEM, code="no-capacity")
    _, clinic = clinic_task(
        clinic_view(status="on-hold", reason=event.reason, reason_coding=event.reason_coding), "c"
    )
    assert clinic["statusReason"]["coding"][0] == NO_CAPACITY_JSON
    assert clinic["statusReason"]["text"] == "no-capacity"
    Task.model_validate(clinic)


def test_a_status_reason_of_an_unknown_system_is_refused() -> None:
    current, _, _ = org_task({"offer": offer()}, "bronx-pantry")
    task = {
        **current,
        "status": "rejected",
        "statusReason": {"coding": [{"system": "http://example.org/why", "code": "full"}]},
    }
    with pytest.raises(GatewayInputError, match=r"Task\.statusReason\.coding: a coding's system"):
        status_change_from(task, "mott-haven:ref-1")


def test_a_bare_reason_code_is_still_read_as_text() -> None:
    current, _, _ = org_task({"offer": offer()}, "bronx-pantry")
    task = {**current, "status": "rejected", "statusReason": {"coding": [{"code": "not-eligible"}]}}
    event = status_change_from(task, "mott-haven:ref-1")
    assert (event.reason, event.reason_coding) == ("not-eligible", None)


def test_the_organizations_own_task_renders_the_codings_the_network_recorded() -> None:
    output = TaskOutput(
        type=Coding(system=SDOH_CATEGORY_SYSTEM, code=RESULTING_ACTIVITY), value=FOOD_PANTRY
    )
    recorded = ReferralStatusRecorded.new(
        referral_id="mott-haven:ref-1",
        status="completed",
        outcome="467771000124109",
        reason="no-capacity",
        reason_coding=Coding(system=SDOH_CATEGORY_SYSTEM, code="no-capacity"),
        outputs=[output],
        attempt=1,
        cause_event_id=new_event_id(),
    ).model_dump(mode="json")
    task, _, _ = org_task({"offer": offer(), "recorded": recorded}, "bronx-pantry")
    assert task["statusReason"]["coding"][0] == NO_CAPACITY_JSON
    assert task["output"] == [
        {
            "type": {"coding": [RESULTING_JSON]},
            "valueCodeableConcept": {"coding": [FOOD_PANTRY_JSON]},
        }
    ]


# ---------------------------------------------------------------- the completed Task's output
def test_the_igs_completed_task_output_reaches_the_clinic_in_the_igs_shape() -> None:
    current, _, _ = org_task({"offer": offer([FOOD_PANTRY])}, "bronx-pantry")
    event = status_change_from(ig_completed_task(current), "mott-haven:ref-1")
    resulting = Coding(system=SDOH_CATEGORY_SYSTEM, code=RESULTING_ACTIVITY)
    assert event.outputs == [TaskOutput(type=resulting, value=FOOD_PANTRY)]
    _, clinic = clinic_task(
        clinic_view(
            status="completed", outcome=event.outcome, outputs=event.outputs, codes=[FOOD_PANTRY]
        ),
        "c",
    )
    # the IG's resulting-activity output, valued with the Procedure's code; no duplicate text
    assert clinic["output"] == [
        {
            "type": {"coding": [RESULTING_JSON]},
            "valueCodeableConcept": {"coding": [FOOD_PANTRY_JSON]},
        }
    ]
    assert clinic["statusReason"] == {"text": FOOD_PANTRY_JSON["display"]}
    Task.model_validate(clinic)


def test_a_value_codeable_concept_output_is_read_as_sent() -> None:
    current, _, _ = org_task({"offer": offer()}, "bronx-pantry")
    task = {
        **current,
        "status": "completed",
        "output": [
            {
                "type": {"coding": [RESULTING_JSON]},
                "valueCodeableConcept": {"coding": [FOOD_PANTRY_JSON]},
            },
            {"type": {"text": "Outcome"}, "valueString": "application filed"},
        ],
    }
    event = status_change_from(task, "mott-haven:ref-1")
    assert [o.value for o in event.outputs] == [FOOD_PANTRY]
    assert event.outcome == "application filed"
    _, clinic = clinic_task(
        clinic_view(status="completed", outcome=event.outcome, outputs=event.outputs), "c"
    )
    assert [o.get("valueString") for o in clinic["output"]] == [None, "application filed"]


def test_a_reference_to_a_procedure_refnet_does_not_hold_is_refused() -> None:
    current, _, _ = org_task({"offer": offer()}, "bronx-pantry")
    task = {**load(TASK_COMPLETED), "id": current["id"]}  # the IG's body, Procedure not sent
    with pytest.raises(GatewayInputError, match="refnet carries codes, not references"):
        status_change_from(task, "mott-haven:ref-1")


def test_an_output_value_of_an_unknown_system_is_refused() -> None:
    current, _, _ = org_task({"offer": offer()}, "bronx-pantry")
    task = {
        **current,
        "status": "completed",
        "output": [
            {
                "type": {"coding": [RESULTING_JSON]},
                "valueCodeableConcept": {"coding": [{"system": "urn:x", "code": "y"}]},
            }
        ],
    }
    with pytest.raises(GatewayInputError, match=r"Task\.output\.value\.coding"):
        status_change_from(task, "mott-haven:ref-1")


def test_clinic_tasks_stored_before_codings_render_as_before() -> None:
    view = clinic_view(status="completed", outcome="enrolled")
    for name in ("codes", "reason_coding", "outputs"):
        view["update"].pop(name)
    service_request, task = clinic_task(view, "c")
    assert service_request["code"]["coding"][0]["code"] == "410606002"
    assert [o["valueString"] for o in task["output"]] == ["enrolled"]
    assert datetime.fromisoformat(task["authoredOn"]) == datetime(2026, 1, 5, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    "code",
    [5, "x", {"coding": "x"}, {"coding": [5]}, {"coding": [{"system": 5, "code": "1"}]}],
)
def test_every_shape_of_service_request_code_is_a_4xx(code: object) -> None:
    with pytest.raises(GatewayInputError) as refused:
        referral_from({**ig_service_request(), "code": code}, Resolver())
    assert 400 <= refused.value.status < 500


def test_too_many_service_request_codings_are_refused() -> None:
    sr = ig_service_request()
    sr["code"]["coding"] = [FOOD_PANTRY_JSON] * 11
    with pytest.raises(GatewayInputError, match="at most 10 codings"):
        referral_from(sr, Resolver())


@pytest.mark.parametrize(
    "output",
    [
        5,
        {"type": 3, "valueCodeableConcept": {"coding": [FOOD_PANTRY_JSON]}},
        {"type": {"coding": [RESULTING_JSON]}, "valueCodeableConcept": []},
        {"type": {"coding": [RESULTING_JSON]}, "valueReference": "x"},
        {"type": {"coding": [RESULTING_JSON]}, "valueReference": {"reference": "#nope"}},
    ],
)
def test_every_shape_of_task_output_is_a_4xx(output: object) -> None:
    current, _, _ = org_task({"offer": offer()}, "bronx-pantry")
    with pytest.raises(GatewayInputError) as refused:
        status_change_from({**current, "status": "completed", "output": [output]}, "r")
    assert 400 <= refused.value.status < 500
