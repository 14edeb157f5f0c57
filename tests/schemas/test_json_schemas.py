from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from jsonschema import Draft202012Validator

from schemas.events import EVENT_TYPES, Event, to_bytes
from schemas.jsonschema import DEFAULT_DIRECTORY, export, file_name, json_schemas, render
from tests.schemas.examples import contract_example
from tests.schemas.strategies import FAST, any_event

SCHEMAS = json_schemas()
VALIDATORS = {
    event_type: Draft202012Validator(
        SCHEMAS[file_name(event_type)], format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    for event_type in EVENT_TYPES
}


def errors(event_type: str, document: dict[str, Any]) -> list[str]:
    return [error.message for error in VALIDATORS[event_type].iter_errors(document)]


# ---------------------------------------------------------------- the checked-in files
def test_checked_in_schemas_match_the_models() -> None:
    on_disk = {path.name: path.read_text(encoding="utf-8") for path in DEFAULT_DIRECTORY.glob("*")}
    expected = {name: render(schema) for name, schema in SCHEMAS.items()}

    stale = sorted(
        name for name in set(on_disk) | set(expected) if on_disk.get(name) != expected.get(name)
    )

    assert not stale, (
        f"schemas/json is out of date ({', '.join(stale)}): run `refnet schemas export`"
    )


def test_there_is_one_schema_per_event_type() -> None:
    assert set(SCHEMAS) == {f"{event_type}.schema.json" for event_type in EVENT_TYPES}


def test_export_is_deterministic(tmp_path: Path) -> None:
    first = {path.name: path.read_bytes() for path in export(tmp_path / "a")}
    second = {path.name: path.read_bytes() for path in export(tmp_path / "b")}

    assert first == second
    for text in first.values():
        assert text.endswith(b"}\n")
        assert json.loads(text) == json.loads(render(json.loads(text)))


def test_render_sorts_keys_and_indents_by_two() -> None:
    assert render({"b": 1, "a": {"d": 2, "c": 3}}) == (
        '{\n  "a": {\n    "c": 3,\n    "d": 2\n  },\n  "b": 1\n}\n'
    )


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_schema_is_a_valid_draft_2020_12_schema_with_id_and_title(event_type: str) -> None:
    schema = SCHEMAS[file_name(event_type)]

    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(event_type)
    assert event_type in schema["title"]
    assert {"event_id", "event_type", "occurred_at"} <= set(schema["required"])
    assert schema["properties"]["event_type"]["const"] == event_type


# ---------------------------------------------------------------- what they accept
@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_contract_example_validates_against_its_schema(event_type: str) -> None:
    assert errors(event_type, contract_example(event_type)) == []


@FAST
@given(event=any_event)
def test_every_serialized_event_validates_against_its_schema(event: Event) -> None:
    assert errors(event.event_type, json.loads(to_bytes(event))) == []


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_schema_rejects_a_naive_occurred_at(event_type: str) -> None:
    document = contract_example(event_type) | {"occurred_at": "2026-11-24T09:15:00"}

    assert errors(event_type, document)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_schema_rejects_a_missing_event_id(event_type: str) -> None:
    document = contract_example(event_type)
    del document["event_id"]

    assert any("event_id" in message for message in errors(event_type, document))


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_schema_rejects_a_missing_event_type(event_type: str) -> None:
    document = contract_example(event_type)
    del document["event_type"]

    assert any("event_type" in message for message in errors(event_type, document))


@pytest.mark.parametrize("event_id", ["not-a-uuid", "6f0c3f7e5d0e4a8e9b1a0d2f3c4b5a69"])
def test_schema_rejects_an_event_id_that_is_not_a_hyphenated_uuid(event_id: str) -> None:
    document = contract_example("referral.cancelled") | {"event_id": event_id}

    assert errors("referral.cancelled", document)


@pytest.mark.parametrize(
    ("event_type", "field"),
    [
        ("service.upserted", "org_id"),
        ("referral.updated", "org_id"),
        ("screening.scored", "clinic_id"),
        ("referral.state-changed", "clinic_id"),
        ("referral.state-changed", "org_id"),
    ],
)
def test_schema_rejects_a_bad_party_id(event_type: str, field: str) -> None:
    document = contract_example(event_type) | {field: "Bronx_Pantry"}

    assert errors(event_type, document)


def test_schema_rejects_a_naive_timestamp_inside_nested_objects() -> None:
    document = contract_example("referral.requested")
    document["consent"]["expires_at"] = "2027-11-24T09:15:00"

    assert errors("referral.requested", document)


@pytest.mark.parametrize("status", ["rejected", "failed", "cancelled"])
def test_schema_rejects_a_reasonless_rejected_failed_or_cancelled_status(status: str) -> None:
    document = contract_example("referral.status-changed") | {"status": status}

    assert errors("referral.status-changed", document)
    assert not errors("referral.status-changed", document | {"reason": "no-capacity"})


@pytest.mark.parametrize("response_sla", ["PT24H", "P2D", "PT30S", "P1DT12H30M"])
def test_schema_accepts_iso8601_durations(response_sla: str) -> None:
    document = contract_example("service.upserted") | {"response_sla": response_sla}

    assert not errors("service.upserted", document)


@pytest.mark.parametrize("response_sla", ["24h", "86400", "P", "PT", "P1DT"])
def test_schema_rejects_durations_that_are_not_iso8601(response_sla: str) -> None:
    document = contract_example("service.upserted") | {"response_sla": response_sla}

    assert errors("service.upserted", document)


def test_schema_allows_unknown_fields_like_the_models() -> None:
    document = contract_example("referral.cancelled") | {"added_in_v1_1": True}

    assert not errors("referral.cancelled", document)
