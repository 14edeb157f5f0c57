"""FHIR edge: the IG's QuestionnaireResponse examples parse and score as their
answers say; rendered referrals match the IG's ServiceRequest and Task examples
in every field refnet fills."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task

from connectors.fhir.mapping import (
    BUSINESS_STATUS_SYSTEM,
    REASON_SYSTEM,
    REFERRAL_ID_SYSTEM,
    SERVICE_REQUEST_PROFILE,
    TASK_PROFILE,
    FhirMappingError,
    category_display,
    fhir_id,
    questionnaire_response_to_answers,
    render_referral,
    resource_json,
)
from schemas import instruments as loinc
from schemas.codes import (
    SDOH_CATEGORY_SYSTEM,
    BusinessStatus,
    Category,
    Instrument,
    Priority,
    TaskStatus,
)
from streams.decisions.scoring import Need, score

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "fhir"
HVS_QR = "SDOHCC-QuestionnaireResponseHungerVitalSignExample"
PRAPARE_QR = "SDOHCC-QuestionnaireResponsePRAPAREExample"
SR_EXAMPLE = "SDOHCC-ServiceRequestActiveFoodPantryApplicationAssistExample"
TASK_ACCEPTED = "SDOHCC-TaskReferralManagementOrderFulfillmentAcceptedExample"
TASK_COMPLETED = "SDOHCC-TaskReferralManagementOrderFulfillmentCompletedExample"
SUBTASK_ACCEPTED = "SDOHCC-TaskReferralManagementOrderSubtaskAcceptedExample"
FOOD_PANTRY_ASSIST = (
    "http://snomed.info/sct",
    "467771000124109",
    "Assistance with application for food pantry program",
)
IG_AUTHORED_ON = datetime(2020, 9, 11, 21, 56, 54, 671000, tzinfo=UTC)


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def normalized(example: dict[str, Any]) -> dict[str, Any]:
    """An IG example passed through the same R4B model as refnet's output."""
    if example["resourceType"] == "ServiceRequest":
        return resource_json(ServiceRequest.model_validate(example))
    return resource_json(Task.model_validate(example))


def render(**overrides: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    arguments: dict[str, Any] = {
        "referral_id": "ref-clinic-42",
        "patient_id": "pat-53234",
        "category": Category.FOOD_INSECURITY,
        "status": TaskStatus.REQUESTED,
        "clinic_id": "bronx-clinic",
        "authored_on": IG_AUTHORED_ON,
    }
    arguments.update(overrides)
    service_request, task = render_referral(**arguments)
    return resource_json(service_request), resource_json(task)


def kind(reference: dict[str, str]) -> str:
    return reference["reference"].split("/", 1)[0]


# ======================================================================== QuestionnaireResponse in


def test_hunger_vital_sign_example_parses_to_its_three_answers() -> None:
    instrument, answers = questionnaire_response_to_answers(load(HVS_QR))
    assert instrument is Instrument.HUNGER_VITAL_SIGN
    assert answers == [
        ("88122-7", "LA28397-0"),
        ("88123-5", "LA28397-0"),
        ("88124-3", "LA19952-3"),
    ]


def test_hunger_vital_sign_example_scores_food_insecurity_as_its_answers_say() -> None:
    # Both items "Often true" and the derived item "At risk": positive, consistent.
    instrument, answers = questionnaire_response_to_answers(load(HVS_QR))
    result = score(instrument, answers)
    assert result.needs == (
        Need(
            Category.FOOD_INSECURITY,
            "hvs.either-item",
            ("88122-7=LA28397-0", "88123-5=LA28397-0"),
        ),
    )
    assert result.problems == ()


def test_prapare_example_parses_nested_groups_multi_selects_and_numbers() -> None:
    instrument, answers = questionnaire_response_to_answers(load(PRAPARE_QR))
    assert instrument is Instrument.PRAPARE
    assert ("32624-9", "LA4457-3") in answers
    assert ("32624-9", "LA30187-1") in answers
    assert ("63512-8", 6) in answers
    assert ("63586-2", 25000) in answers
    assert [a for q, a in answers if q == "93031-3"] == ["LA30126-9", "LA30127-7"]
    assert [a for q, a in answers if q == "93030-5"] == ["LA30134-3", "LA30133-5"]
    assert len(answers) == 23


def test_prapare_example_drops_free_text_answers() -> None:
    _, answers = questionnaire_response_to_answers(load(PRAPARE_QR))
    assert all(q != "56799-0" for q, _ in answers)  # the address, "Broadway"
    assert all(a != "Broadway" for _, a in answers)


def test_prapare_example_scores_the_needs_its_answers_say() -> None:
    # No housing -> homelessness; clothing and child care -> material hardship;
    # transport kept from medical and non-medical -> transportation insecurity;
    # does not feel safe -> intimate partner violence. Worried about housing was
    # declined, stress "Somewhat", contact 1-2 times a week, no incarceration,
    # not afraid of partner: no other need.
    instrument, answers = questionnaire_response_to_answers(load(PRAPARE_QR))
    result = score(instrument, answers)
    assert result.needs == (
        Need(Category.HOMELESSNESS, "prapare.housing.no-housing", ("71802-3=LA30190-5",)),
        Need(
            Category.MATERIAL_HARDSHIP,
            "prapare.unable-to-get.material",
            ("93031-3=LA30126-9", "93031-3=LA30127-7"),
        ),
        Need(
            Category.TRANSPORTATION_INSECURITY,
            "prapare.transportation.yes",
            ("93030-5=LA30134-3", "93030-5=LA30133-5"),
        ),
        Need(Category.INTIMATE_PARTNER_VIOLENCE, "prapare.safety.not-safe", ("93026-3=LA32-8",)),
    )
    assert result.problems == ()


def test_questionnaire_response_model_is_accepted_as_well_as_json() -> None:
    model = QuestionnaireResponse.model_validate(load(HVS_QR))
    assert questionnaire_response_to_answers(model) == questionnaire_response_to_answers(
        load(HVS_QR)
    )


def minimal_qr(items: list[dict[str, Any]], questionnaire: str | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "item": items,
    }
    if questionnaire is not None:
        resource["questionnaire"] = questionnaire
    return resource


@pytest.mark.parametrize(
    ("canonical", "expected"),
    [
        ("http://loinc.org/q/96777-8", Instrument.AHC_HRSN),
        ("https://example.org/Questionnaire/88121-9|2.0", Instrument.HUNGER_VITAL_SIGN),
        (
            "http://hl7.org/fhir/us/sdoh-clinicalcare/Questionnaire/SDOHCC-QuestionnairePRAPARE|2.3.0",
            Instrument.PRAPARE,
        ),
    ],
)
def test_instrument_comes_from_the_questionnaire_canonical(
    canonical: str, expected: Instrument
) -> None:
    resource = minimal_qr([{"linkId": "/93030-5", "answer": [{"valueBoolean": True}]}], canonical)
    instrument, _ = questionnaire_response_to_answers(resource)
    assert instrument is expected


def test_instrument_argument_overrides_the_resource() -> None:
    resource = load(HVS_QR)
    instrument, _ = questionnaire_response_to_answers(resource, instrument=Instrument.AHC_HRSN)
    assert instrument is Instrument.AHC_HRSN


def test_answer_values_map_booleans_quantities_foreign_codings_and_definitions() -> None:
    resource = minimal_qr(
        [
            {
                "linkId": "/96777-8",
                "item": [
                    {"linkId": "/96777-8/93030-5", "answer": [{"valueBoolean": True}]},
                    {"linkId": "/96777-8/96779-4", "answer": [{"valueBoolean": False}]},
                    {"linkId": "/96777-8/95614-4", "answer": [{"valueQuantity": {"value": 12}}]},
                    {"linkId": "/96777-8/95618-5", "answer": [{"valueDecimal": 2.5}]},
                    {
                        "linkId": "q-local-1",
                        "definition": "http://loinc.org/rdf#71802-3",
                        "answer": [
                            {"valueCoding": {"system": "http://snomed.info/sct", "code": "1"}}
                        ],
                    },
                    {
                        "linkId": "help-text",
                        "text": "no code here",
                        "answer": [{"valueInteger": 3}],
                    },
                ],
            }
        ]
    )
    instrument, answers = questionnaire_response_to_answers(resource)
    assert instrument is Instrument.AHC_HRSN  # from the top group's panel code
    assert answers == [
        ("93030-5", "LA33-6"),
        ("96779-4", "LA32-8"),
        ("95614-4", 12),
        ("95618-5", 2.5),
        ("71802-3", "http://snomed.info/sct|1"),
    ]


def test_items_nested_under_answers_are_read() -> None:
    resource = minimal_qr(
        [
            {
                "linkId": "/88122-7",
                "answer": [
                    {
                        "valueCoding": {"code": "LA6729-3"},
                        "item": [
                            {
                                "linkId": "/88123-5",
                                "answer": [{"valueCoding": {"code": "LA28398-8"}}],
                            }
                        ],
                    }
                ],
            }
        ],
        "http://loinc.org/q/88121-9",
    )
    _, answers = questionnaire_response_to_answers(resource)
    assert answers == [("88122-7", "LA6729-3"), ("88123-5", "LA28398-8")]


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "QuestionnaireResponse",
        ["item"],
        {"resourceType": "Task", "status": "completed"},
        {"resourceType": "QuestionnaireResponse"},  # no status
        {"resourceType": "QuestionnaireResponse", "status": "completed", "item": "x"},
        minimal_qr([{"linkId": "/88122-7", "answer": [{"valueCoding": {"code": "LA6729-3"}}]}]),
        minimal_qr([], "http://loinc.org/q/88121-9"),
        minimal_qr(
            [{"linkId": "/56799-0", "answer": [{"valueString": "Broadway"}]}],
            "http://loinc.org/q/93025-5",
        ),
        {
            **minimal_qr(
                [{"linkId": "/88122-7", "answer": [{"valueCoding": {"code": "LA6729-3"}}]}],
                "http://loinc.org/q/88121-9",
            ),
            "status": "entered-in-error",
        },
    ],
    ids=[
        "none",
        "string",
        "list",
        "wrong-resource-type",
        "invalid",
        "invalid-items",
        "unknown-instrument",
        "no-items",
        "only-free-text",
        "entered-in-error",
    ],
)
def test_unusable_input_raises_fhir_mapping_error(bad: Any) -> None:
    with pytest.raises(FhirMappingError):
        questionnaire_response_to_answers(bad)


# ======================================================================== referral out: vs the IG


def test_rendered_service_request_matches_the_ig_example_in_every_field_refnet_fills() -> None:
    example = normalized(load(SR_EXAMPLE))
    got, _ = render(referral_id=SR_EXAMPLE, service_code=FOOD_PANTRY_ASSIST)
    for field in ("resourceType", "id", "meta", "status", "intent", "category", "code", "subject"):
        assert got[field] == example[field], field
    # refnet adds what the profile allows and the example leaves out ...
    assert set(got) - set(example) == {"identifier", "priority", "authoredOn", "requester"}
    # ... and has no Condition to give as the reason.
    assert set(example) - set(got) == {"reasonReference"}


def test_rendered_service_request_defaults_to_social_service_procedure_code() -> None:
    got, _ = render()
    assert got["code"] == {
        "coding": [
            {
                "system": "http://snomed.info/sct",
                "code": "410606002",
                "display": "Social service procedure",
            }
        ]
    }
    assert got["category"][0] == got["code"]


def test_rendered_task_matches_the_ig_accepted_example_in_every_field_refnet_fills() -> None:
    example = normalized(load(TASK_ACCEPTED))
    service_request, task = render(status=TaskStatus.ACCEPTED, org_id="bronx-pantry")
    for field in ("resourceType", "meta", "status", "intent", "code", "authoredOn"):
        assert task[field] == example[field], field
    assert task["for"]["reference"] == example["for"]["reference"]
    # Instance-specific references: same kinds, refnet's own ids.
    assert task["focus"] == {"reference": f"ServiceRequest/{service_request['id']}"}
    assert kind(example["focus"]) == "ServiceRequest"
    assert kind(task["owner"]) == kind(example["owner"]) == "Organization"
    assert kind(task["requester"]) == "Organization"  # profile: PractitionerRole or Organization
    assert kind(example["requester"]) in {"PractitionerRole", "Organization"}
    # No names leave refnet (minimum necessary): references carry no display.
    assert "display" not in task["for"]
    assert set(task) - set(example) == {"identifier", "priority"}
    assert set(example) - set(task) == set()


def test_rendered_completed_task_matches_the_ig_completed_example_except_the_output() -> None:
    example = normalized(load(TASK_COMPLETED))
    _, task = render(status=TaskStatus.COMPLETED, outcome="Application filed with the pantry")
    for field in ("resourceType", "meta", "status", "intent", "code", "authoredOn"):
        assert task[field] == example[field], field
    # The IG's output is a Procedure reference (resulting-activity); refnet has only
    # the organization's text, so it uses its own output type, outside that slice.
    (output,) = task["output"]
    assert output["valueString"] == "Application filed with the pantry"
    assert output["type"]["coding"][0]["code"] != example["output"][0]["type"]["coding"][0]["code"]
    # FHIR: completed carries a statusReason; the outcome stands in for it.
    assert task["statusReason"] == {"text": "Application filed with the pantry"}


def test_ig_subtask_example_shows_the_indirect_pattern_refnet_plays_the_platform_in() -> None:
    root = normalized(load(TASK_ACCEPTED))
    subtask = normalized(load(SUBTASK_ACCEPTED))
    assert subtask["partOf"] == [{"reference": f"Task/{root['id']}"}]
    assert subtask["requester"]["reference"] == root["owner"]["reference"]
    _, task = render(network_id="refnet")
    assert task["owner"] == {"reference": "Organization/refnet"}
    assert "partOf" not in task  # the clinic's Task is the root


# ======================================================================== referral out: details


def test_category_displays_match_the_gravity_value_set_exactly() -> None:
    value_set = load("SDOHCC-ValueSetSDOHCategory")
    (include,) = value_set["compose"]["include"]
    assert include["system"] == SDOH_CATEGORY_SYSTEM
    expected = {c["code"]: c["display"] for c in include["concept"]}
    assert {c.value: category_display(c) for c in Category} == expected


@pytest.mark.parametrize("category", list(Category))
def test_service_request_carries_the_sdoh_category_coding(category: Category) -> None:
    got, _ = render(category=category)
    assert {
        "coding": [
            {
                "system": SDOH_CATEGORY_SYSTEM,
                "code": category.value,
                "display": category_display(category),
            }
        ]
    } in got["category"]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (TaskStatus.DRAFT, "draft"),
        (TaskStatus.REQUESTED, "active"),
        (TaskStatus.ACCEPTED, "active"),
        (TaskStatus.IN_PROGRESS, "active"),
        (TaskStatus.ON_HOLD, "active"),
        (TaskStatus.COMPLETED, "completed"),
        (TaskStatus.CANCELLED, "revoked"),
        (TaskStatus.REJECTED, "revoked"),
        (TaskStatus.FAILED, "revoked"),
        (TaskStatus.ENTERED_IN_ERROR, "entered-in-error"),
    ],
)
def test_service_request_status_follows_the_referral(status: TaskStatus, expected: str) -> None:
    service_request, task = render(status=status, reason="other", outcome="x")
    assert service_request["status"] == expected
    assert task["status"] == status.value


def test_every_task_satisfies_the_profiles_required_elements() -> None:
    for status in TaskStatus:
        service_request, task = render(status=status, reason="no-capacity")
        assert service_request["meta"]["profile"] == [SERVICE_REQUEST_PROFILE]
        assert task["meta"]["profile"] == [TASK_PROFILE]
        assert task["intent"] == "order"
        assert task["code"]["coding"][0]["code"] == "fulfill"
        for element in ("focus", "for", "authoredOn", "requester"):
            assert element in task
        assert task["statusReason"]["text"]  # statusReason.text 1.. when present


def test_business_status_reason_and_priority_render_on_the_task() -> None:
    _, task = render(
        status=TaskStatus.FAILED,
        business_status=BusinessStatus.UNMATCHED,
        reason="no-matching-service",
        priority=Priority.URGENT,
    )
    assert task["businessStatus"] == {
        "coding": [{"system": BUSINESS_STATUS_SYSTEM, "code": "unmatched"}],
        "text": "unmatched",
    }
    assert task["statusReason"] == {
        "coding": [{"system": REASON_SYSTEM, "code": "no-matching-service"}],
        "text": "no-matching-service",
    }
    assert task["priority"] == "urgent"


def test_free_text_reason_renders_as_text_only() -> None:
    _, task = render(status=TaskStatus.CANCELLED, reason="patient moved away")
    assert task["statusReason"] == {"text": "patient moved away"}


def test_open_referral_without_reason_has_no_status_reason_or_output() -> None:
    _, task = render(status=TaskStatus.REQUESTED)
    assert "statusReason" not in task
    assert "output" not in task
    assert "businessStatus" not in task


def test_performer_note_and_requester_render_on_the_service_request() -> None:
    got, _ = render(org_id="bronx-pantry", service_id="svc-pantry-1", note="Prefers mornings")
    assert got["performer"] == [
        {"reference": "Organization/bronx-pantry"},
        {"reference": "HealthcareService/svc-pantry-1"},
    ]
    assert got["note"] == [{"text": "Prefers mornings"}]
    assert got["requester"] == {"reference": "Organization/bronx-clinic"}


def test_referral_id_that_is_not_a_fhir_id_is_digested_and_kept_in_identifier() -> None:
    service_request, task = render(referral_id="ref_clinic:42 x")
    assert service_request["id"] == task["id"] == fhir_id("ref_clinic:42 x")
    assert service_request["id"].startswith("h-")
    assert task["identifier"] == [{"system": REFERRAL_ID_SYSTEM, "value": "ref_clinic:42 x"}]
    assert task["focus"] == {"reference": f"ServiceRequest/{service_request['id']}"}


def test_authored_on_keeps_its_offset() -> None:
    eastern = timezone(timedelta(hours=-5))
    _, task = render(authored_on=datetime(2026, 11, 24, 9, 15, tzinfo=eastern))
    assert Task.model_validate(task).authoredOn == datetime(2026, 11, 24, 14, 15, tzinfo=UTC)


def test_naive_authored_on_is_refused() -> None:
    with pytest.raises(FhirMappingError):
        render(authored_on=datetime(2026, 11, 24, 9, 15))


def test_blank_ids_are_refused() -> None:
    with pytest.raises(FhirMappingError):
        render(patient_id="  ")


def test_rendered_resources_round_trip_through_the_r4b_models() -> None:
    service_request, task = render(
        status=TaskStatus.COMPLETED,
        business_status=BusinessStatus.OFFERED,
        outcome="done",
        org_id="bronx-pantry",
    )
    assert resource_json(ServiceRequest.model_validate(service_request)) == service_request
    assert resource_json(Task.model_validate(task)) == task


def test_hvs_answer_codes_are_the_ones_in_instruments() -> None:
    # The fixture and the constants agree (guards a typo in either).
    _, answers = questionnaire_response_to_answers(load(HVS_QR))
    assert answers[0] == (loinc.HVS_WORRIED, loinc.HVS_OFTEN_TRUE)
    assert answers[2] == (loinc.HVS_RISK, loinc.HVS_AT_RISK)
