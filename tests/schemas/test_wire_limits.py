"""The wire's limits, enforced alike by the models and the published JSON Schemas.

Control characters in text, list lengths, the longest response_sla, the range
of timestamps, and JSON null for optional lists and objects.
"""

from __future__ import annotations

import copy
import json
import types
import typing
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pydantic import BaseModel, ValidationError

from schemas.codes import Category, DeadLetterKind, Priority
from schemas.decode import DecodeFailure, decode
from schemas.events import (
    ANY_EVENT_ADAPTER,
    DURATION_PATTERN,
    EVENT_TYPES,
    MAX_ANSWERS,
    MAX_CATEGORIES,
    MAX_LANGUAGES,
    MAX_NEEDS,
    MAX_POSTAL_CODES,
    MAX_PROBLEMS,
    MAX_RESPONSE_SLA,
    MAX_TIMESTAMP,
    MIN_TIMESTAMP,
    ReferralCancelled,
    ReferralOffered,
    ReferralRequested,
    ScreeningScored,
    ServiceUpserted,
    WireModel,
)
from schemas.jsonschema import file_name, json_schemas
from schemas.topics import Topics
from tests.schemas.examples import contract_example
from tests.schemas.strategies import CONTROL_CHARACTERS, FAST, HOME_KIND, THOROUGH, topic_of

SCHEMAS = json_schemas()
VALIDATORS = {
    event_type: Draft202012Validator(
        SCHEMAS[file_name(event_type)], format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    for event_type in EVENT_TYPES
}
TOPICS = Topics()
CONTROL_MESSAGE = "must not contain control characters"
RANGE_MESSAGE = (
    "a timestamp must be at or after 1900-01-01T00:00:00Z and before 9000-01-01T00:00:00Z"
)

Path = tuple[str | int, ...]


def schema_accepts(event_type: str, document: dict[str, Any]) -> bool:
    return VALIDATORS[event_type].is_valid(document)


def model_accepts(document: dict[str, Any]) -> bool:
    try:
        ANY_EVENT_ADAPTER.validate_python(document)
    except ValidationError:
        return False
    return True


def with_value(event_type: str, path: Path, value: object) -> dict[str, Any]:
    """The contract example of ``event_type`` with ``value`` at ``path``."""
    document = contract_example(event_type)
    target: Any = document
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return document


def decode_failure(event_type: str, document: dict[str, Any]) -> DecodeFailure:
    topic = topic_of(HOME_KIND[event_type], TOPICS)
    result = decode(topic, None, json.dumps(document).encode(), TOPICS)
    assert isinstance(result, DecodeFailure), result
    return result


def messages(exc: ValidationError) -> str:
    return "; ".join(error["msg"] for error in exc.errors(include_url=False, include_input=False))


# ---------------------------------------------------------------- control characters
#: Every free-text field and name of the contract, by event, as a path in its example.
TEXT_FIELDS: list[tuple[str, Path]] = [
    ("screening.submitted", ("patient", "given_name")),
    ("screening.submitted", ("patient", "phone")),
    ("screening.submitted", ("answers", 0, "answer")),
    ("referral.requested", ("patient", "family_name")),
    ("referral.requested", ("note",)),
    ("referral.cancelled", ("reason",)),
    ("referral.offered", ("patient", "given_name")),
    ("referral.offered", ("patient", "phone")),
    ("referral.offered", ("note",)),
    ("referral.withdrawn", ("reason",)),
    ("referral.status-changed", ("reason",)),
    ("referral.status-changed", ("outcome",)),
    ("referral.status-changed", ("note",)),
    ("referral.updated", ("reason",)),
    ("referral.updated", ("outcome",)),
    ("service.upserted", ("name",)),
    ("service.upserted", ("capacity", "unit")),
    ("screening.scored", ("answers", 0, "answer")),
    ("screening.scored", ("needs", 0, "rule")),
    ("screening.scored", ("problems", 0, "detail")),
    ("referral.state-changed", ("reason",)),
    ("referral.state-changed", ("outcome",)),
    ("deadletter", ("error", "message")),
]


@pytest.mark.parametrize(("event_type", "path"), TEXT_FIELDS, ids=str)
@pytest.mark.parametrize("control", ["\x00", "\x1b", "\x7f"], ids=["nul", "esc", "del"])
def test_text_with_a_control_character_is_refused_by_model_and_schema(
    event_type: str, path: Path, control: str
) -> None:
    document = with_value(event_type, path, f"SECRET{control}value")

    with pytest.raises(ValidationError) as raised:
        ANY_EVENT_ADAPTER.validate_python(document)
    assert CONTROL_MESSAGE in messages(raised.value)
    assert "SECRET" not in messages(raised.value)
    assert not schema_accepts(event_type, document)


@pytest.mark.parametrize("control", list(CONTROL_CHARACTERS), ids=lambda c: f"U+{ord(c):04X}")
def test_every_c0_control_but_tab_lf_cr_and_del_is_refused_in_a_reason(control: str) -> None:
    document = with_value("referral.cancelled", ("reason",), f"other{control}")

    assert not model_accepts(document)
    assert not schema_accepts("referral.cancelled", document)


@pytest.mark.parametrize(("event_type", "path"), TEXT_FIELDS, ids=str)
def test_tab_line_feed_and_carriage_return_are_allowed_in_text(event_type: str, path: Path) -> None:
    document = with_value(event_type, path, "line one\r\n\tline two")

    assert model_accepts(document)
    assert schema_accepts(event_type, document)


def test_nul_in_a_reason_is_a_validation_dead_letter_that_does_not_echo_it() -> None:
    value = (
        b'{"event_id": "2c9d7e1f-3a4b-4c5d-8e6f-7a8b9c0d1e2f", "event_type": "referral.cancelled",'
        b' "occurred_at": "2026-11-25T08:00:00Z", "referral_id": "ref-clinic-42",'
        b' "reason": "SECRET\\u0000reason"}'
    )

    result = decode(TOPICS.clinic_submissions("bronx-health"), None, value, TOPICS)

    assert isinstance(result, DecodeFailure), result
    assert result.kind is DeadLetterKind.VALIDATION
    assert result.reason.startswith("reason: Value error, text must not contain control")
    assert "SECRET" not in result.reason


def test_control_character_in_a_free_text_answer_is_one_clear_error() -> None:
    document = with_value("screening.submitted", ("answers", 0, "answer"), "a\x00b")

    result = decode_failure("screening.submitted", document)

    assert result.kind is DeadLetterKind.VALIDATION
    assert result.reason.startswith("answers.0.answer: Value error, text must not contain")
    assert ";" not in result.reason


@FAST
@given(text=st.text(max_size=20))
def test_model_and_schema_agree_on_any_reason_text(text: str) -> None:
    document = with_value("referral.cancelled", ("reason",), text)
    printable = not any(character in CONTROL_CHARACTERS for character in text)

    assert model_accepts(document) is (printable and len(text) >= 1)
    assert schema_accepts("referral.cancelled", document) is (printable and len(text) >= 1)


# ---------------------------------------------------------------- bounded lists
BOUNDED_LISTS: list[tuple[str, Path, int, object]] = [
    ("screening.submitted", ("answers",), MAX_ANSWERS, {"question": "88122-7", "answer": "x"}),
    ("referral.requested", ("consent", "categories"), MAX_CATEGORIES, "food-insecurity"),
    ("consent.updated", ("consent", "categories"), MAX_CATEGORIES, "food-insecurity"),
    ("service.upserted", ("categories",), MAX_CATEGORIES, "food-insecurity"),
    ("service.upserted", ("postal_codes",), MAX_POSTAL_CODES, "10451"),
    ("service.upserted", ("languages",), MAX_LANGUAGES, "es"),
    ("screening.scored", ("answers",), MAX_ANSWERS, {"question": "88122-7", "answer": 1}),
    ("screening.scored", ("needs",), MAX_NEEDS, {"category": "stress", "rule": "r"}),
    ("screening.scored", ("problems",), MAX_PROBLEMS, {"kind": "missing-answer"}),
    ("screening.scored", ("consented_categories",), MAX_CATEGORIES, "stress"),
]


def test_list_limits_are_the_documented_ones() -> None:
    assert (MAX_ANSWERS, MAX_CATEGORIES, MAX_POSTAL_CODES, MAX_LANGUAGES) == (200, 30, 5000, 50)
    assert (MAX_NEEDS, MAX_PROBLEMS) == (100, 1000)
    assert len(Category) <= MAX_CATEGORIES


@pytest.mark.parametrize(("event_type", "path", "limit", "item"), BOUNDED_LISTS, ids=str)
def test_list_at_its_limit_is_accepted_by_model_and_schema(
    event_type: str, path: Path, limit: int, item: object
) -> None:
    document = with_value(event_type, path, [copy.deepcopy(item) for _ in range(limit)])

    assert model_accepts(document)
    assert schema_accepts(event_type, document)


@pytest.mark.parametrize(("event_type", "path", "limit", "item"), BOUNDED_LISTS, ids=str)
def test_list_over_its_limit_is_refused_by_model_and_schema(
    event_type: str, path: Path, limit: int, item: object
) -> None:
    document = with_value(event_type, path, [copy.deepcopy(item) for _ in range(limit + 1)])

    result = decode_failure(event_type, document)
    assert result.kind is DeadLetterKind.VALIDATION
    assert f"{'.'.join(map(str, path))}: List should have at most {limit} items" in result.reason
    assert not schema_accepts(event_type, document)


def _schema_lists(schema: object, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(schema, dict):
        if schema.get("type") == "array":
            yield where, schema
        for key, value in schema.items():
            yield from _schema_lists(value, f"{where}/{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            yield from _schema_lists(value, f"{where}/{index}")


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_list_of_every_published_schema_is_bounded(name: str) -> None:
    unbounded = [
        where for where, schema in _schema_lists(SCHEMAS[name]) if "maxItems" not in schema
    ]

    assert not unbounded


# ---------------------------------------------------------------- durations
def test_max_response_sla_is_90_days() -> None:
    assert timedelta(days=90) == MAX_RESPONSE_SLA


@pytest.mark.parametrize("response_sla", ["P90D", "PT2160H", "P3M", "P12W", "PT1S"])
def test_response_sla_up_to_90_days_is_accepted(response_sla: str) -> None:
    document = with_value("service.upserted", ("response_sla",), response_sla)

    event = ServiceUpserted.model_validate(document)

    assert event.response_sla is not None
    assert event.response_sla <= MAX_RESPONSE_SLA


@pytest.mark.parametrize(
    "response_sla",
    [
        "P90DT1S",
        "PT2161H",
        "P1Y",
        "P13W",
        "P9000Y",
        "P999999999D",
        "P1000000000D",
        "P999999999999999999999Y",
        "PT99999999999999999999999999999999S",
        "P" + "9" * 5000 + "D",
    ],
)
def test_response_sla_over_90_days_is_a_validation_failure_never_an_exception(
    response_sla: str,
) -> None:
    document = with_value("service.upserted", ("response_sla",), response_sla)

    with pytest.raises(ValidationError, match="response_sla"):
        ServiceUpserted.model_validate(document)
    assert decode_failure("service.upserted", document).kind is DeadLetterKind.VALIDATION


def test_p9000y_says_what_the_limit_is() -> None:
    document = with_value("service.upserted", ("response_sla",), "P9000Y")

    result = decode_failure("service.upserted", document)

    assert result.reason == (
        "response_sla: Value error, a response_sla must be at most 90 days (P90D) [value_error]"
    )


@THOROUGH
@given(response_sla=st.from_regex(DURATION_PATTERN, fullmatch=True))
def test_any_iso8601_duration_is_accepted_or_refused_never_raised(response_sla: str) -> None:
    document = with_value("service.upserted", ("response_sla",), response_sla)

    try:
        event = ServiceUpserted.model_validate(document)
    except ValidationError:
        return
    assert event.response_sla is not None
    assert timedelta(0) < event.response_sla <= MAX_RESPONSE_SLA


# ---------------------------------------------------------------- timestamps
TIMESTAMP_FIELDS: list[tuple[str, Path]] = [
    ("referral.cancelled", ("occurred_at",)),
    ("referral.offered", ("respond_by",)),
    ("referral.requested", ("consent", "expires_at")),
    ("consent.updated", ("consent", "expires_at")),
]


def test_timestamp_bounds_are_1900_and_9000_in_utc() -> None:
    assert datetime(1900, 1, 1, tzinfo=UTC) == MIN_TIMESTAMP
    assert datetime(9000, 1, 1, tzinfo=UTC) == MAX_TIMESTAMP


@pytest.mark.parametrize(
    "timestamp",
    [
        "1900-01-01T00:00:00Z",
        "1900-01-01T00:30:00-01:00",
        "8999-12-31T23:59:59.999999Z",
        "8999-12-31T23:30:00+01:00",
    ],
)
@pytest.mark.parametrize(("event_type", "path"), TIMESTAMP_FIELDS, ids=str)
def test_timestamp_inside_the_range_is_accepted(
    event_type: str, path: Path, timestamp: str
) -> None:
    document = with_value(event_type, path, timestamp)

    assert model_accepts(document)
    assert schema_accepts(event_type, document)


OUT_OF_RANGE = [
    "1899-12-31T23:59:59.999999Z",
    "1900-01-01T00:30:00+01:00",  # 1899 in UTC
    "9000-01-01T00:00:00Z",
    "8999-12-31T23:30:00-01:00",  # 9000 in UTC
    "9999-12-31T23:59:59-01:00",  # past datetime.max in UTC
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00+05:00",  # before datetime.min in UTC
    "0001-01-01T00:00:00Z",
]


@pytest.mark.parametrize("timestamp", OUT_OF_RANGE)
@pytest.mark.parametrize(("event_type", "path"), TIMESTAMP_FIELDS, ids=str)
def test_timestamp_outside_the_range_is_a_validation_failure_that_names_the_range(
    event_type: str, path: Path, timestamp: str
) -> None:
    document = with_value(event_type, path, timestamp)

    with pytest.raises(ValidationError) as raised:
        ANY_EVENT_ADAPTER.validate_python(document)
    assert RANGE_MESSAGE in messages(raised.value)
    result = decode_failure(event_type, document)
    assert result.kind is DeadLetterKind.VALIDATION
    assert RANGE_MESSAGE in result.reason


@pytest.mark.parametrize(
    "timestamp",
    [t for t in OUT_OF_RANGE if t[:4] in {"0001", "9000", "9999", "1899"}],
)
def test_schema_refuses_years_outside_1900_to_8999(timestamp: str) -> None:
    document = with_value("referral.cancelled", ("occurred_at",), timestamp)

    assert not schema_accepts("referral.cancelled", document)


@pytest.mark.parametrize(
    "occurred_at",
    [
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-1))),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
        datetime.max.replace(tzinfo=timezone(timedelta(hours=-14))),
        datetime.min.replace(tzinfo=timezone(timedelta(hours=14))),
    ],
)
def test_python_datetime_that_overflows_in_utc_is_a_validation_failure(
    occurred_at: datetime,
) -> None:
    with pytest.raises(ValidationError, match="a timestamp must be at or after 1900"):
        ReferralCancelled(
            event_id="2c9d7e1f-3a4b-4c5d-8e6f-7a8b9c0d1e2f",  # type: ignore[arg-type]
            occurred_at=occurred_at,
            referral_id="ref-1",
        )


@THOROUGH
@given(
    occurred_at=st.datetimes(
        timezones=st.integers(min_value=-24 * 60 + 1, max_value=24 * 60 - 1).map(
            lambda minutes: timezone(timedelta(minutes=minutes))
        )
    )
)
def test_any_aware_datetime_is_accepted_in_range_or_refused_never_raised(
    occurred_at: datetime,
) -> None:
    document = contract_example("referral.cancelled") | {"occurred_at": occurred_at.isoformat()}

    try:
        event = ReferralCancelled.model_validate(document)
    except ValidationError as exc:
        assert RANGE_MESSAGE in messages(exc) or "whole number of minutes" in messages(exc)
        return
    assert MIN_TIMESTAMP <= event.occurred_at.astimezone(UTC) < MAX_TIMESTAMP


# ---------------------------------------------------------------- null means none
def _model_of(annotation: object) -> type[WireModel] | None:
    """The wire model inside ``annotation`` (``X``, ``X | None``, ``list[X]``...)."""
    if isinstance(annotation, type) and issubclass(annotation, WireModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _model_of(typing.get_args(annotation)[0])
    if origin in {typing.Union, types.UnionType, list}:
        for argument in typing.get_args(annotation):
            found = _model_of(argument)
            if found is not None:
                return found
    return None


def optional_paths(model: type[BaseModel], document: Any, path: Path = ()) -> Iterator[Path]:
    """Every field that has a default, in ``document`` and the objects inside it."""
    for name, field in model.model_fields.items():
        if name == "event_type":
            continue  # required on the wire, defaulted only for Python's convenience
        if not field.is_required():
            yield (*path, name)
        inner = _model_of(field.annotation)
        value = document.get(name) if isinstance(document, dict) else None
        if inner is None or value is None:
            continue
        if isinstance(value, list):
            if value:
                yield from optional_paths(inner, value[0], (*path, name, 0))
        else:
            yield from optional_paths(inner, value, (*path, name))


OPTIONAL_FIELDS = [
    (event_type, path)
    for event_type, model in sorted(EVENT_TYPES.items())
    for path in optional_paths(model, contract_example(event_type))
]


def test_optional_fields_include_the_lists_objects_and_defaults_of_the_contract() -> None:
    found = set(OPTIONAL_FIELDS)

    assert {
        ("service.upserted", ("postal_codes",)),
        ("service.upserted", ("languages",)),
        ("service.upserted", ("capacity",)),
        ("service.upserted", ("location",)),
        ("service.upserted", ("capacity", "unit")),
        ("referral.requested", ("consent", "expires_at")),
        ("referral.requested", ("priority",)),
        ("screening.scored", ("problems", 0, "detail")),
        ("screening.scored", ("needs",)),
        ("consent.updated", ("consent", "categories")),
        ("deadletter", ("payload_sha256",)),
    } <= found


@pytest.mark.parametrize(("event_type", "path"), OPTIONAL_FIELDS, ids=str)
def test_null_for_any_optional_field_is_accepted_by_model_and_schema(
    event_type: str, path: Path
) -> None:
    document = with_value(event_type, path, None)

    assert model_accepts(document)
    assert schema_accepts(event_type, document)


@pytest.mark.parametrize("field", ["postal_codes", "languages"])
def test_null_postal_codes_or_languages_of_a_service_mean_none(field: str) -> None:
    document = contract_example("service.upserted") | {field: None}

    event = ServiceUpserted.model_validate(document)

    assert getattr(event, field) == []
    assert json.loads(event.model_dump_json())[field] == []


@pytest.mark.parametrize("field", ["answers", "needs", "problems", "consented_categories"])
def test_null_lists_of_a_scored_screening_mean_none(field: str) -> None:
    document = contract_example("screening.scored") | {field: None}

    assert getattr(ScreeningScored.model_validate(document), field) == []


@pytest.mark.parametrize("model", [ReferralRequested, ReferralOffered])
def test_null_priority_means_routine(model: type[ReferralRequested | ReferralOffered]) -> None:
    document = contract_example(model.model_fields["event_type"].default) | {"priority": None}

    assert model.model_validate(document).priority is Priority.ROUTINE


def test_null_consent_categories_still_mean_all_categories() -> None:
    document = contract_example("consent.updated")
    document["consent"]["categories"] = None

    event = ANY_EVENT_ADAPTER.validate_python(document)

    assert event.consent.categories is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("event_type", "field"),
    [("screening.submitted", "answers"), ("service.upserted", "categories")],
)
def test_null_for_a_required_list_is_still_refused(event_type: str, field: str) -> None:
    document = contract_example(event_type) | {field: None}

    assert not model_accepts(document)
    assert not schema_accepts(event_type, document)
