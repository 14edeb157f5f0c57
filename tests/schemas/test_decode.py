from __future__ import annotations

import json
import sys
import time
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.codes import DeadLetterKind
from schemas.decode import (
    ALLOWED_EVENT_TYPES,
    MAX_JSON_DEPTH,
    MAX_MESSAGE_BYTES,
    Decoded,
    DecodeFailure,
    ServiceRemoved,
    decode,
    json_depth_exceeds,
)
from schemas.events import EVENT_TYPES, Event, to_bytes
from schemas.topics import TopicKind, Topics, TopicSpec
from tests.schemas.examples import CONTRACT_EXAMPLES_JSON, contract_example
from tests.schemas.strategies import (
    CONTRACT_KINDS,
    EVENT_STRATEGIES,
    FAST,
    HOME_KIND,
    THOROUGH,
    any_event,
    topic_of,
)

TOPICS = Topics()
FAILURE_KINDS_OF_A_BAD_VALUE = {
    DeadLetterKind.DECODE,
    DeadLetterKind.VALIDATION,
    DeadLetterKind.UNKNOWN_EVENT_TYPE,
    DeadLetterKind.LIMIT,
}


def home_topic(event_type: str) -> str:
    return topic_of(HOME_KIND[event_type], TOPICS)


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def failure(result: object) -> DecodeFailure:
    assert isinstance(result, DecodeFailure), result
    return result


# ---------------------------------------------------------------- success
@pytest.mark.parametrize("event_type", sorted(CONTRACT_EXAMPLES_JSON))
def test_contract_example_decodes_on_its_topic(event_type: str) -> None:
    value = CONTRACT_EXAMPLES_JSON[event_type].encode()

    result = decode(home_topic(event_type), b"some-key", value, TOPICS)

    assert isinstance(result, Decoded), result
    assert result.event.event_type == event_type
    assert result.kind is HOME_KIND[event_type]
    assert result.key == "some-key"


@pytest.mark.parametrize("event_type", sorted(EVENT_STRATEGIES))
@FAST
@given(data=st.data())
def test_every_event_type_survives_encode_then_decode(event_type: str, data: st.DataObject) -> None:
    event = data.draw(EVENT_STRATEGIES[event_type])

    result = decode(home_topic(event_type), "key", to_bytes(event), TOPICS)

    assert isinstance(result, Decoded), result
    assert type(result.event) is type(event)
    assert result.event == event


def test_decoded_names_the_party_its_topic_speaks_for() -> None:
    value = CONTRACT_EXAMPLES_JSON["referral.status-changed"].encode()

    result = decode(TOPICS.org_updates("bronx-pantry"), "ref-clinic-42", value, TOPICS)

    assert isinstance(result, Decoded)
    assert (result.kind, result.party_id) == (TopicKind.ORG_UPDATES, "bronx-pantry")


def test_network_topics_speak_for_no_party() -> None:
    value = CONTRACT_EXAMPLES_JSON["service.upserted"].encode()

    result = decode(TOPICS.directory, "svc-pantry-1", value, TOPICS)

    assert isinstance(result, Decoded)
    assert result.party_id is None


def test_topics_under_another_prefix_decode_with_that_catalog() -> None:
    topics = Topics(prefix="test-1a2b")
    value = CONTRACT_EXAMPLES_JSON["referral.offered"].encode()

    assert isinstance(decode(topics.org_referrals("bronx-pantry"), None, value, topics), Decoded)
    assert (
        failure(decode(TOPICS.org_referrals("bronx-pantry"), None, value, topics)).kind
        is DeadLetterKind.UNKNOWN_TOPIC
    )


def test_unknown_fields_are_ignored_when_decoding() -> None:
    document = contract_example("referral.cancelled") | {"schema_version": 2, "extra": [1, {}]}

    result = decode(home_topic("referral.cancelled"), None, encode(document), TOPICS)

    assert isinstance(result, Decoded)


# ---------------------------------------------------------------- tombstones
def test_null_value_on_directory_removes_the_service() -> None:
    result = decode(TOPICS.directory, b"svc-pantry-1", None, TOPICS)

    assert result == ServiceRemoved(service_id="svc-pantry-1")


def test_directory_tombstone_without_key_is_a_decode_failure() -> None:
    assert failure(decode(TOPICS.directory, None, None, TOPICS)).kind is DeadLetterKind.DECODE


def test_directory_tombstone_with_blank_key_fails_validation() -> None:
    result = failure(decode(TOPICS.directory, b"", None, TOPICS))

    assert result.kind is DeadLetterKind.VALIDATION


@pytest.mark.parametrize("kind", [k for k in CONTRACT_KINDS if k is not TopicKind.DIRECTORY])
def test_null_value_outside_the_directory_is_a_decode_failure(kind: TopicKind) -> None:
    result = failure(decode(topic_of(kind, TOPICS), b"ref-1", None, TOPICS))

    assert result.kind is DeadLetterKind.DECODE
    assert "null value" in result.reason


# ---------------------------------------------------------------- targeted failures
@pytest.mark.parametrize(
    "topic",
    [
        "sdoh.clinic.bronx-health.submissions.v2",
        "sdoh.clinic.Bronx_Health.submissions.v1",
        "other.directory.v1",
        "sdoh.org.bronx-pantry.secrets.v1",
        "__consumer_offsets",
        "",
    ],
)
def test_topic_outside_the_catalog_is_unknown_topic(topic: str) -> None:
    value = CONTRACT_EXAMPLES_JSON["referral.cancelled"].encode()

    assert failure(decode(topic, b"k", value, TOPICS)).kind is DeadLetterKind.UNKNOWN_TOPIC


def test_key_that_is_not_utf8_is_a_decode_failure() -> None:
    value = CONTRACT_EXAMPLES_JSON["referral.cancelled"].encode()

    result = failure(decode(home_topic("referral.cancelled"), b"\xff\xfe", value, TOPICS))

    assert (result.kind, result.reason) == (DeadLetterKind.DECODE, "key is not UTF-8")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\xff{}", "value is not UTF-8"),
        (b"", "value is not JSON"),
        (b"{", "value is not JSON"),
        (b'{"event_type": NaN}', "value is not JSON"),
        (b'{"a": "\\ud800"}', "value is not JSON"),
        (b"[]", "value is a JSON array, not an object"),
        (b'"screening.submitted"', "value is a JSON string, not an object"),
        (b"42", "value is a JSON number, not an object"),
        (b"null", "value is a JSON null, not an object"),
        (b"true", "value is a JSON boolean, not an object"),
    ],
)
def test_value_that_is_not_a_utf8_json_object_is_a_decode_failure(
    value: bytes, reason: str
) -> None:
    result = failure(decode(TOPICS.screenings, None, value, TOPICS))

    assert (result.kind, result.reason) == (DeadLetterKind.DECODE, reason)


# ---------------------------------------------------------------- limits
DEPTH_REASON = "JSON nested deeper than 32 levels"


def nested(levels: int) -> object:
    """``levels`` arrays, one inside the other (``[[...]]``)."""
    value: object = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_limit_constants_are_the_documented_ones() -> None:
    assert MAX_MESSAGE_BYTES == 256 * 1024
    assert MAX_JSON_DEPTH == 32


@pytest.mark.parametrize(
    "value",
    [b"[" * 100_000, b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000, b'{"a":[' * 50_000],
    ids=["open-arrays", "closed-arrays", "objects", "objects-and-arrays"],
)
def test_json_nested_100000_deep_is_a_quick_limit_failure(value: bytes) -> None:
    started = time.perf_counter()

    result = failure(decode(TOPICS.screenings, None, value, TOPICS, max_bytes=len(value)))

    assert time.perf_counter() - started < 0.5
    assert (result.kind, result.reason) == (DeadLetterKind.LIMIT, DEPTH_REASON)


def test_json_nested_exactly_32_levels_decodes() -> None:
    # the event object is level 1, so an unknown field may nest 31 more
    document = contract_example("referral.cancelled") | {"extension": nested(MAX_JSON_DEPTH - 1)}

    result = decode(home_topic("referral.cancelled"), None, encode(document), TOPICS)

    assert isinstance(result, Decoded), result


@pytest.mark.parametrize("extra_levels", [1, 2, 100, 190])
def test_json_nested_deeper_than_32_levels_is_a_limit_failure(extra_levels: int) -> None:
    document = contract_example("referral.cancelled") | {
        "extension": {"a": nested(MAX_JSON_DEPTH - 2 + extra_levels)}
    }

    result = failure(decode(home_topic("referral.cancelled"), None, encode(document), TOPICS))

    assert (result.kind, result.reason) == (DeadLetterKind.LIMIT, DEPTH_REASON)


@pytest.mark.parametrize(
    ("document", "depth"),
    [
        (1, 0),
        ("x", 0),
        ([], 1),
        ({}, 1),
        ({"a": [1, {"b": None}]}, 3),
        ([[], [[[]]], {}], 4),
        ({"a": 1, "b": {"c": {"d": {}}}, "e": []}, 4),
    ],
)
def test_json_depth_counts_nested_arrays_and_objects(document: object, depth: int) -> None:
    assert not json_depth_exceeds(document, depth)
    assert json_depth_exceeds(document, depth - 1) is (depth > 0)


def test_json_depth_check_does_not_recurse() -> None:
    assert json_depth_exceeds(nested(100_000), MAX_JSON_DEPTH)
    assert not json_depth_exceeds(nested(100_000), 100_000)


def test_value_over_max_bytes_is_a_limit_failure_that_names_both_sizes() -> None:
    value = CONTRACT_EXAMPLES_JSON["referral.cancelled"].encode()

    result = failure(
        decode(home_topic("referral.cancelled"), None, value, TOPICS, max_bytes=len(value) - 1)
    )

    assert result.kind is DeadLetterKind.LIMIT
    assert result.reason == (
        f"message of {len(value)} bytes is over the limit of {len(value) - 1} bytes"
    )


def test_value_of_exactly_max_bytes_is_decoded() -> None:
    value = CONTRACT_EXAMPLES_JSON["referral.cancelled"].encode()

    result = decode(home_topic("referral.cancelled"), None, value, TOPICS, max_bytes=len(value))

    assert isinstance(result, Decoded), result


def test_default_limit_is_max_message_bytes() -> None:
    document = contract_example("referral.cancelled")
    value = encode(document)
    at_limit = value[:-1] + b" " * (MAX_MESSAGE_BYTES - len(value)) + b"}"
    over = value[:-1] + b" " * (MAX_MESSAGE_BYTES - len(value) + 1) + b"}"

    assert isinstance(decode(home_topic("referral.cancelled"), None, at_limit, TOPICS), Decoded)
    result = failure(decode(home_topic("referral.cancelled"), None, over, TOPICS))
    assert result.reason == (
        f"message of {MAX_MESSAGE_BYTES + 1} bytes is over the limit of {MAX_MESSAGE_BYTES} bytes"
    )


@pytest.mark.parametrize("value", [b"\xff" * 2000, b"[" * 2000, b"not json at all " * 200])
def test_size_is_checked_before_the_value_is_parsed(value: bytes) -> None:
    result = failure(decode(TOPICS.screenings, None, value, TOPICS, max_bytes=1000))

    assert result.kind is DeadLetterKind.LIMIT
    assert result.reason.startswith(f"message of {len(value)} bytes")


def test_a_tombstone_has_no_size() -> None:
    result = decode(TOPICS.directory, b"svc-pantry-1", None, TOPICS, max_bytes=0)

    assert result == ServiceRemoved(service_id="svc-pantry-1")


def test_missing_event_type_fails_validation() -> None:
    document = contract_example("referral.cancelled")
    del document["event_type"]

    result = failure(decode(home_topic("referral.cancelled"), None, encode(document), TOPICS))

    assert (result.kind, result.reason) == (DeadLetterKind.VALIDATION, "event_type: missing")


@pytest.mark.parametrize("event_type", [None, 7, ["referral.cancelled"], {"v": 1}])
def test_event_type_that_is_not_a_string_fails_validation(event_type: object) -> None:
    document = contract_example("referral.cancelled") | {"event_type": event_type}

    result = failure(decode(home_topic("referral.cancelled"), None, encode(document), TOPICS))

    assert result.kind is DeadLetterKind.VALIDATION


@pytest.mark.parametrize(
    "event_type", ["referral.deleted", "", "Referral.Cancelled", "deadletters"]
)
def test_unknown_event_type_is_reported_as_such(event_type: str) -> None:
    document = contract_example("referral.cancelled") | {"event_type": event_type}

    result = failure(decode(home_topic("referral.cancelled"), None, encode(document), TOPICS))

    assert result.kind is DeadLetterKind.UNKNOWN_EVENT_TYPE


@pytest.mark.parametrize(
    ("event_type", "kind"),
    [
        (event_type, kind)
        for event_type in sorted(EVENT_TYPES)
        for kind in CONTRACT_KINDS
        if event_type not in ALLOWED_EVENT_TYPES[kind]
    ],
)
def test_event_on_a_topic_that_does_not_carry_it_fails_validation(
    event_type: str, kind: TopicKind
) -> None:
    value = CONTRACT_EXAMPLES_JSON[event_type].encode()

    result = failure(decode(topic_of(kind, TOPICS), b"k", value, TOPICS))

    assert result.kind is DeadLetterKind.VALIDATION
    assert result.reason == f"{event_type} is not allowed on a {kind.value} topic"


@pytest.mark.parametrize(
    "spec",
    [spec for spec in TOPICS.network_catalog() if spec.kind not in ALLOWED_EVENT_TYPES],
    ids=lambda spec: spec.kind.value,
)
@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_no_contract_event_is_accepted_on_an_internal_topic(
    spec: TopicSpec, event_type: str
) -> None:
    value = CONTRACT_EXAMPLES_JSON[event_type].encode()

    result = failure(decode(spec.name, b"k", value, TOPICS))

    assert result.kind in {DeadLetterKind.UNKNOWN_TOPIC, DeadLetterKind.VALIDATION}


def test_allowed_event_types_follow_the_contract_topic_table() -> None:
    assert {
        TopicKind.CLINIC_SUBMISSIONS: {
            "screening.submitted",
            "referral.requested",
            "referral.cancelled",
            "consent.updated",
        },
        TopicKind.ORG_UPDATES: {"referral.status-changed", "service.capacity-changed"},
        TopicKind.DIRECTORY: {"service.upserted"},
        TopicKind.CLINIC_UPDATES: {
            "referral.updated",
            "screening.answered",
            "message.refused",
            "encounter.alerted",
        },
        TopicKind.ORG_REFERRALS: {
            "referral.offered",
            "referral.withdrawn",
            "message.refused",
            "encounter.alerted",
            "referral.status-recorded",
        },
        TopicKind.SCREENINGS: {"screening.scored"},
        TopicKind.REFERRAL_EVENTS: {"referral.state-changed", "encounter.routed"},
        TopicKind.DEADLETTER: {"deadletter"},
        TopicKind.FACILITY_SUBMISSIONS: {"encounter.notified"},
        TopicKind.FACILITY_UPDATES: {"message.refused"},
    } == ALLOWED_EVENT_TYPES
    assert {t for types in ALLOWED_EVENT_TYPES.values() for t in types} == set(EVENT_TYPES)


def test_reasonless_rejection_fails_validation_with_the_rule_named() -> None:
    document = contract_example("referral.status-changed") | {"status": "rejected"}

    result = failure(decode(home_topic("referral.status-changed"), None, encode(document), TOPICS))

    assert result.kind is DeadLetterKind.VALIDATION
    assert "status rejected needs a reason" in result.reason


def test_validation_reason_names_fields_without_the_event_type_tag() -> None:
    document = contract_example("screening.submitted")
    del document["patient"]["given_name"]
    document["occurred_at"] = "2026-11-24T09:15:00"

    result = failure(decode(home_topic("screening.submitted"), None, encode(document), TOPICS))

    assert result.kind is DeadLetterKind.VALIDATION
    assert "occurred_at:" in result.reason
    assert "patient.given_name: Field required [missing]" in result.reason
    assert "screening.submitted." not in result.reason


def test_validation_reason_never_echoes_patient_values(monkeypatch: pytest.MonkeyPatch) -> None:
    # see every error; the package re-exports decode(), so reach the module itself
    monkeypatch.setattr(sys.modules["schemas.decode"], "MAX_ERRORS_IN_REASON", 100)
    document = contract_example("screening.submitted")
    document["patient"] |= {
        "given_name": "",
        "phone": "+1-SECRET-PHONE-" + "9" * 40,
        "postal_code": "SECRET ZIP @@",
        "birth_date": "SECRET-1984",
        "preferred_language": "SECRET_LANGUAGE",
    }
    document["event_id"] = "SECRET-ID"
    document["occurred_at"] = "SECRET-TIME"
    document["answers"] = [{"question": "88122-7", "answer": ["SECRET-ANSWER"]}]

    result = failure(decode(home_topic("screening.submitted"), None, encode(document), TOPICS))

    assert result.kind is DeadLetterKind.VALIDATION
    assert "SECRET" not in result.reason
    for field in ("event_id", "occurred_at", "given_name", "phone", "postal_code", "birth_date"):
        assert f"{field}:" in result.reason or f".{field}:" in result.reason
    assert "answers.0.answer" in result.reason


def test_validation_reason_is_cut_after_a_few_errors() -> None:
    document = {"event_type": "screening.submitted"}

    result = failure(decode(home_topic("screening.submitted"), None, encode(document), TOPICS))

    assert result.reason.endswith("; and 2 more")
    assert result.reason.count("Field required") == 5


def test_an_unexpected_exception_becomes_a_decode_failure() -> None:
    class BrokenTopics:
        def parse(self, topic: str) -> None:
            raise RuntimeError("boom")

    result = failure(decode("sdoh.directory.v1", None, b"{}", BrokenTopics()))  # type: ignore[arg-type]

    assert (result.kind, result.reason) == (DeadLetterKind.DECODE, "unexpected RuntimeError")


# ---------------------------------------------------------------- fuzz
@THOROUGH
@given(
    value=st.binary(max_size=300), kind=st.sampled_from(CONTRACT_KINDS), key=st.none() | st.binary()
)
def test_random_bytes_never_raise(value: bytes, kind: TopicKind, key: bytes | None) -> None:
    result = decode(topic_of(kind, TOPICS), key, value, TOPICS)

    assert isinstance(result, Decoded | DecodeFailure)
    if isinstance(result, DecodeFailure):
        assert result.kind in FAILURE_KINDS_OF_A_BAD_VALUE
        assert result.reason


@FAST
@given(topic=st.text(max_size=80), value=st.none() | st.binary(max_size=50))
def test_random_topic_names_never_raise(topic: str, value: bytes | None) -> None:
    result = decode(topic, "k", value, TOPICS)

    assert isinstance(result, Decoded | ServiceRemoved | DecodeFailure)


@st.composite
def valid_messages(draw: st.DrawFn) -> tuple[str, Event, bytes]:
    event = draw(any_event)
    return home_topic(event.event_type), event, to_bytes(event)


@THOROUGH
@given(message=valid_messages(), data=st.data())
def test_byte_flips_never_raise(message: tuple[str, Event, bytes], data: st.DataObject) -> None:
    topic, _, value = message
    index = data.draw(st.integers(min_value=0, max_value=len(value) - 1))
    flip = data.draw(st.integers(min_value=1, max_value=255))
    mutated = value[:index] + bytes([value[index] ^ flip]) + value[index + 1 :]

    result = decode(topic, b"k", mutated, TOPICS)

    assert isinstance(result, Decoded | DecodeFailure)
    if isinstance(result, DecodeFailure):
        assert result.kind in FAILURE_KINDS_OF_A_BAD_VALUE


@FAST
@given(message=valid_messages(), data=st.data())
def test_truncated_value_is_a_decode_failure(
    message: tuple[str, Event, bytes], data: st.DataObject
) -> None:
    topic, _, value = message
    cut = data.draw(st.integers(min_value=0, max_value=len(value) - 1))

    result = failure(decode(topic, b"k", value[:cut], TOPICS))

    assert result.kind is DeadLetterKind.DECODE


@FAST
@given(message=valid_messages(), data=st.data())
def test_deleting_a_field_fails_validation_only_when_it_is_required(
    message: tuple[str, Event, bytes], data: st.DataObject
) -> None:
    topic, event, value = message
    document = json.loads(value)
    field = data.draw(st.sampled_from(sorted(document)))
    del document[field]

    result = decode(topic, b"k", encode(document), TOPICS)

    required = field == "event_type" or type(event).model_fields[field].is_required()
    if required:
        assert failure(result).kind is DeadLetterKind.VALIDATION
        return
    # An optional field may still be needed by a rule of the whole event (a
    # rejection needs its reason): the event's own model says which.
    try:
        type(event).model_validate(document)
    except ValidationError:
        assert failure(result).kind is DeadLetterKind.VALIDATION
    else:
        assert isinstance(result, Decoded), result


SWAPS = [{"unexpected": True}, [], [1, "two"], True, -1, 2.5, "text", None]


@FAST
@given(message=valid_messages(), data=st.data())
def test_swapping_a_field_for_an_object_fails_validation(
    message: tuple[str, Event, bytes], data: st.DataObject
) -> None:
    topic, _, value = message
    document = json.loads(value)
    field = data.draw(st.sampled_from(sorted(document)))
    document[field] = {"unexpected": True}

    result = failure(decode(topic, b"k", encode(document), TOPICS))

    assert result.kind is DeadLetterKind.VALIDATION


@THOROUGH
@given(message=valid_messages(), data=st.data())
def test_swapping_field_types_never_raises_and_never_passes_a_wrong_type(
    message: tuple[str, Event, bytes], data: st.DataObject
) -> None:
    topic, _, value = message
    document = json.loads(value)
    field = data.draw(st.sampled_from(sorted(document)))
    replacement = data.draw(st.sampled_from(SWAPS))
    assume(type(replacement) is not type(document[field]))
    document[field] = replacement

    result = decode(topic, b"k", encode(document), TOPICS)

    assert isinstance(result, Decoded | DecodeFailure)
    if isinstance(result, Decoded):
        # Only a null for an optional field, a string for a text field, a
        # number for a float field or an empty list for a list field (null when
        # generated) may be accepted; never a bool or a fraction as a count.
        float_fields = {"radius_km"}
        list_fields = {"disclosed_fields"}
        assert (
            replacement is None
            or isinstance(replacement, str)
            or (field in float_fields and type(replacement) in {int, float})
            or (field in list_fields and replacement == [])
        ), (field, replacement)
    else:
        assert result.kind in {DeadLetterKind.VALIDATION, DeadLetterKind.UNKNOWN_EVENT_TYPE}


@FAST
@given(message=valid_messages(), kind=st.sampled_from(CONTRACT_KINDS))
def test_valid_event_on_a_wrong_topic_fails_validation(
    message: tuple[str, Event, bytes], kind: TopicKind
) -> None:
    _, event, value = message
    assume(event.event_type not in ALLOWED_EVENT_TYPES[kind])

    result = failure(decode(topic_of(kind, TOPICS), b"k", value, TOPICS))

    assert result.kind is DeadLetterKind.VALIDATION
