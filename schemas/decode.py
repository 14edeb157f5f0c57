"""The one decoder every agent uses: Kafka message in, typed result out.

:func:`decode` never raises. It returns one of

- :class:`Decoded`: a valid event allowed on that topic, with the topic's kind
  and the party the topic speaks for;
- :class:`ServiceRemoved`: a tombstone (null value) on the compacted directory;
- :class:`DecodeFailure`: why the message cannot be used, as a
  :class:`~schemas.codes.DeadLetterKind` and a human-readable reason that names
  fields and error types but never echoes a value (values may be patient data).

Failure kinds, in the order they are checked:

=====================  ===========================================================
unknown-topic          the topic is not in the catalog (:meth:`Topics.parse`)
limit                  the value is over ``max_bytes`` (:data:`MAX_MESSAGE_BYTES`),
                       checked before anything is parsed
decode                 key or value not UTF-8, value not JSON or not an object,
                       a null value outside the directory, a keyless tombstone
limit                  the JSON is nested deeper than :data:`MAX_JSON_DEPTH`
validation             ``event_type`` missing or not a string (it is a required
                       field like any other), an event type not allowed on that
                       kind of topic, or a pydantic validation error
unknown-event-type     ``event_type`` is a string that names no event of v1
decode                 anything unexpected (a final guard: nothing escapes)
=====================  ===========================================================

The message key is not compared with the event (for instance ``referral_id``):
it is returned in :class:`Decoded` for agents that want to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from pydantic import TypeAdapter, ValidationError
from pydantic_core import from_json

from schemas.codes import DeadLetterKind
from schemas.events import ANY_EVENT_ADAPTER, EVENT_TYPES, AnyEvent, Id
from schemas.topics import TopicKind, Topics

#: Which event types each kind of topic carries (docs/contract.md, Topics table). Kinds
#: not listed (the network's internal command topics) carry no contract event.
ALLOWED_EVENT_TYPES: Final[dict[TopicKind, frozenset[str]]] = {
    TopicKind.CLINIC_SUBMISSIONS: frozenset(
        {"screening.submitted", "referral.requested", "referral.cancelled", "consent.updated"}
    ),
    TopicKind.CLINIC_UPDATES: frozenset(
        {"referral.updated", "screening.answered", "message.refused", "encounter.alerted"}
    ),
    TopicKind.ORG_REFERRALS: frozenset(
        {
            "referral.offered",
            "referral.withdrawn",
            "message.refused",
            "encounter.alerted",
            "referral.status-recorded",
        }
    ),
    TopicKind.ORG_UPDATES: frozenset({"referral.status-changed", "service.capacity-changed"}),
    TopicKind.DIRECTORY: frozenset({"service.upserted"}),
    TopicKind.SCREENINGS: frozenset({"screening.scored"}),
    TopicKind.REFERRAL_EVENTS: frozenset({"referral.state-changed", "encounter.routed"}),
    TopicKind.DEADLETTER: frozenset({"deadletter"}),
    TopicKind.FACILITY_SUBMISSIONS: frozenset({"encounter.notified"}),
    TopicKind.FACILITY_UPDATES: frozenset({"message.refused"}),
}

#: At most this many validation errors are described in a reason.
MAX_ERRORS_IN_REASON: Final = 5
#: The largest message value :func:`decode` reads (the default of ``max_bytes``).
#: A screening with every answer at its longest is well under it; anything
#: larger is refused before it is parsed.
MAX_MESSAGE_BYTES: Final = 256 * 1024
#: How deeply a JSON value may nest (the top-level object is level 1). The
#: deepest event of v1 nests 3 levels (an answer in a screening); unknown fields
#: are ignored but parsed, so they are bounded too.
MAX_JSON_DEPTH: Final = 32

_DEPTH_REASON: Final = f"JSON nested deeper than {MAX_JSON_DEPTH} levels"

_ID_ADAPTER: Final[TypeAdapter[str]] = TypeAdapter(Id)


@dataclass(frozen=True, slots=True)
class Decoded:
    """A valid event, allowed on the topic it came from."""

    event: AnyEvent
    kind: TopicKind
    party_id: str | None
    key: str | None


@dataclass(frozen=True, slots=True)
class ServiceRemoved:
    """A null value on the compacted directory topic: the service is gone."""

    service_id: str
    kind: TopicKind = TopicKind.DIRECTORY


@dataclass(frozen=True, slots=True)
class DecodeFailure:
    """Why a message cannot be used; ``reason`` holds no field values."""

    kind: DeadLetterKind
    reason: str


DecodeResult = Decoded | ServiceRemoved | DecodeFailure


def decode(
    topic: str,
    key: bytes | str | None,
    value: bytes | None,
    topics: Topics,
    *,
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> DecodeResult:
    """Decode one Kafka message read from ``topic``. Never raises.

    Args:
        topic: the topic the message was read from.
        key: the message key (bytes as read, or already text).
        value: the message value; None is a tombstone.
        topics: the catalog that names the topics.
        max_bytes: a larger value is a ``limit`` failure, refused unparsed.
    """
    try:
        return _decode(topic, key, value, topics, max_bytes)
    except Exception as exc:  # noqa: BLE001 - the contract: a bad message never stops the network
        return DecodeFailure(DeadLetterKind.DECODE, f"unexpected {type(exc).__name__}")


def _decode(
    topic: str, key: bytes | str | None, value: bytes | None, topics: Topics, max_bytes: int
) -> DecodeResult:
    parsed = topics.parse(topic)
    if parsed is None:
        return DecodeFailure(DeadLetterKind.UNKNOWN_TOPIC, "topic is not in the catalog")
    kind, party_id = parsed

    if value is not None:
        size = memoryview(value).nbytes
        if size > max_bytes:
            return DecodeFailure(
                DeadLetterKind.LIMIT,
                f"message of {size} bytes is over the limit of {max_bytes} bytes",
            )

    if isinstance(key, bytes | bytearray | memoryview):
        try:
            key = bytes(key).decode("utf-8")
        except UnicodeDecodeError:
            return DecodeFailure(DeadLetterKind.DECODE, "key is not UTF-8")

    if value is None:
        return _tombstone(kind, key)

    try:
        text = bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return DecodeFailure(DeadLetterKind.DECODE, "value is not UTF-8")
    try:
        # pydantic-core's parser, not json.loads: it rejects NaN and lone surrogates
        # (which could not be written back out) and stops at a fixed nesting depth
        # (about 200) at once, where json.loads would recurse until RecursionError.
        document = from_json(text, allow_inf_nan=False, cache_strings=False)
    except ValueError as exc:
        if "recursion limit" in str(exc):
            return DecodeFailure(DeadLetterKind.LIMIT, _DEPTH_REASON)
        return DecodeFailure(DeadLetterKind.DECODE, "value is not JSON")
    if not isinstance(document, dict):
        return DecodeFailure(
            DeadLetterKind.DECODE, f"value is a JSON {_json_type(document)}, not an object"
        )
    if json_depth_exceeds(document, MAX_JSON_DEPTH):
        return DecodeFailure(DeadLetterKind.LIMIT, _DEPTH_REASON)

    event_type = document.get("event_type")
    if event_type is None:
        return DecodeFailure(DeadLetterKind.VALIDATION, "event_type: missing")
    if not isinstance(event_type, str):
        return DecodeFailure(DeadLetterKind.VALIDATION, "event_type: not a string")
    if event_type not in EVENT_TYPES:
        return DecodeFailure(DeadLetterKind.UNKNOWN_EVENT_TYPE, "event_type names no v1 event")
    # The network's internal topics carry its own commands, never a contract event.
    if event_type not in ALLOWED_EVENT_TYPES.get(kind, frozenset()):
        return DecodeFailure(
            DeadLetterKind.VALIDATION, f"{event_type} is not allowed on a {kind.value} topic"
        )

    try:
        event = ANY_EVENT_ADAPTER.validate_python(document)
    except ValidationError as exc:
        return DecodeFailure(DeadLetterKind.VALIDATION, describe_validation_error(exc, event_type))
    return Decoded(event=event, kind=kind, party_id=party_id, key=key)


def _tombstone(kind: TopicKind, key: str | None) -> DecodeResult:
    if kind is not TopicKind.DIRECTORY:
        return DecodeFailure(DeadLetterKind.DECODE, "null value outside the directory topic")
    if key is None:
        return DecodeFailure(DeadLetterKind.DECODE, "directory tombstone without a key")
    try:
        service_id = _ID_ADAPTER.validate_python(key)
    except ValidationError:
        return DecodeFailure(DeadLetterKind.VALIDATION, "directory tombstone key is not a valid id")
    return ServiceRemoved(service_id=service_id)


def json_depth_exceeds(document: object, limit: int) -> bool:
    """Whether ``document`` (parsed JSON) nests more than ``limit`` arrays and objects.

    A scalar has depth 0, ``[]`` and ``{}`` depth 1, ``[[1]]`` depth 2. Iterative:
    no recursion, whatever the depth.
    """
    stack: list[tuple[object, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        children: Iterable[object]
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _json_type(document: object) -> str:
    if isinstance(document, list):
        return "array"
    if isinstance(document, str):
        return "string"
    if isinstance(document, bool):
        return "boolean"
    if document is None:
        return "null"
    return "number"


def describe_validation_error(exc: ValidationError, event_type: str | None = None) -> str:
    """``field.path: message`` for the first errors, without the offending values.

    Pydantic messages describe the expectation ("Field required", "String should
    match pattern ..."), not the input; inputs and URLs are left out.
    """
    parts: list[str] = []
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    for error in errors[:MAX_ERRORS_IN_REASON]:
        loc = list(error["loc"])
        if loc and event_type is not None and loc[0] == event_type:
            loc = loc[1:]  # the discriminated union's tag
        path = ".".join(str(part) for part in loc) or "event"
        parts.append(f"{path}: {error['msg']} [{error['type']}]")
    if len(errors) > MAX_ERRORS_IN_REASON:
        parts.append(f"and {len(errors) - MAX_ERRORS_IN_REASON} more")
    return "; ".join(parts)


__all__ = [
    "ALLOWED_EVENT_TYPES",
    "MAX_JSON_DEPTH",
    "MAX_MESSAGE_BYTES",
    "DecodeFailure",
    "DecodeResult",
    "Decoded",
    "ServiceRemoved",
    "decode",
    "describe_validation_error",
    "json_depth_exceeds",
]
