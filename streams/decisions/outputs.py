"""What a decision sends: messages to topics, built from typed events."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from pydantic import TypeAdapter, ValidationError
from pydantic_core import from_json

from schemas.codes import DeadLetterKind
from schemas.events import (
    EVENT_TYPES,
    DeadLetter,
    DeadLetterError,
    DeadLetterSource,
    Event,
    EventId,
    Id,
    MessageRefused,
    OfferState,
    Refusal,
    to_bytes,
)
from schemas.topics import TopicKind, Topics
from streams.decisions.commands import Command, derived_id, encode


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to produce. ``label`` names it in metrics and logs (no PHI)."""

    topic: str
    key: str
    value: bytes
    label: str

    @classmethod
    def event(cls, topic: str, key: str, event: Event) -> Outgoing:
        return cls(topic, key, to_bytes(event), event.event_type)

    @classmethod
    def command(cls, topic: str, key: str, command: Command) -> Outgoing:
        kind = getattr(command, "kind", "command")
        return cls(topic, key, encode(command), f"command.{kind}")

    def stored(self) -> dict[str, str]:
        """This message as a table row's outbox keeps it (values are UTF-8 JSON)."""
        return {
            "topic": self.topic,
            "key": self.key,
            "value": self.value.decode("utf-8"),
            "label": self.label,
        }

    @classmethod
    def from_stored(cls, stored: dict[str, str]) -> Outgoing:
        """The byte-identical message :meth:`stored` kept."""
        return cls(stored["topic"], stored["key"], stored["value"].encode("utf-8"), stored["label"])


#: Top-level fields a dead letter's excerpt may show: ids, types, codes and times
#: that say what the message was, never a patient's name, phone, birth date,
#: address, answers or free text.
EXCERPT_FIELDS: Final = (
    "event_type",
    "event_id",
    "occurred_at",
    "referral_id",
    "screening_id",
    "service_id",
    "org_id",
    "clinic_id",
    "status",
    "instrument",
    "category",
    "priority",
    "available",
    "kind",
    "command_id",
)
#: Longest excerpt in bytes, and longest value shown in it.
MAX_EXCERPT_BYTES: Final = 1024
_MAX_EXCERPT_VALUE: Final = 128
#: Bytes shown of a message that is not a JSON object: enough to recognise an
#: encoding (a byte-order mark, Avro's or gzip's magic bytes), too few to carry a record.
RAW_EXCERPT_BYTES: Final = 16
#: A message larger than this is excerpted from its first part only.
_PARSE_AT_MOST: Final = 64 * 1024


def excerpt(payload: bytes | None) -> bytes:
    """A bounded, redacted excerpt of a message, for a dead letter.

    A JSON object (even one cut short) shows only :data:`EXCERPT_FIELDS` with
    scalar values, and the names of its other top-level fields; anything else
    shows its first :data:`RAW_EXCERPT_BYTES` bytes.
    """
    if not payload:
        return b""
    try:
        document = from_json(
            payload[:_PARSE_AT_MOST], allow_partial=True, allow_inf_nan=False, cache_strings=False
        )
    except ValueError:
        document = None
    if not isinstance(document, dict):
        return bytes(payload[:RAW_EXCERPT_BYTES])
    kept: dict[str, object] = {}
    for name in EXCERPT_FIELDS:
        value = document.get(name)
        if isinstance(value, str):
            kept[name] = value[:_MAX_EXCERPT_VALUE]
        elif isinstance(value, bool | int | float) or (value is None and name in document):
            kept[name] = value
    others = sorted(str(k)[:64] for k in document if k not in kept)
    if others:
        kept["other_fields"] = others[:32]
    text = json.dumps(kept, ensure_ascii=False).encode()
    while len(text) > MAX_EXCERPT_BYTES and kept.get("other_fields"):
        kept["other_fields"] = kept["other_fields"][:-1]  # type: ignore[index]
        text = json.dumps(kept, ensure_ascii=False).encode()
    return text[:MAX_EXCERPT_BYTES]


def dead_letter_event(
    kind: DeadLetterKind,
    message: str,
    source: DeadLetterSource,
    payload: bytes | None,
    *,
    occurred_at: datetime,
) -> DeadLetter:
    """A dead letter whose id derives from its source, so a replay repeats the same id.

    It says where the message is (``source``: topic, partition, offset, key),
    why it was refused, its size and SHA-256, and a redacted excerpt
    (:func:`excerpt`); never the whole payload, so a dead letter always fits
    the producer's limit whatever a party sent.
    """
    data = bytes(payload or b"")
    return DeadLetter(
        event_id=derived_id("deadletter", source.topic, source.partition, source.offset, kind),
        occurred_at=occurred_at,
        source=source,
        error=DeadLetterError(kind=kind, message=message[:1000]),
        payload_base64=base64.b64encode(excerpt(data)).decode("ascii"),
        payload_bytes=len(data),
        payload_sha256=hashlib.sha256(data).hexdigest(),
    )


def answer_topic(topics: Topics, source_topic: str) -> str | None:
    """The inbox of the party that wrote to ``source_topic``: a clinic's updates topic
    for its submissions, an organization's referrals topic for its updates, a
    facility's updates topic for its submissions; None for any other topic (nobody
    to answer)."""
    parsed = topics.parse(source_topic)
    if parsed is None:
        return None
    kind, party = parsed
    if party is None:
        return None
    if kind is TopicKind.CLINIC_SUBMISSIONS:
        return topics.clinic_updates(party)
    if kind is TopicKind.ORG_UPDATES:
        return topics.org_referrals(party)
    if kind is TopicKind.FACILITY_SUBMISSIONS:
        return topics.facility_updates(party)
    return None


_EVENT_ID: Final[TypeAdapter[object]] = TypeAdapter(EventId)
_ID: Final[TypeAdapter[str]] = TypeAdapter(Id)


def _valid(adapter: TypeAdapter[object] | TypeAdapter[str], value: object) -> object | None:
    if not isinstance(value, str):
        return None
    try:
        return adapter.validate_python(value)
    except ValidationError:
        return None


def refused_ids(payload: bytes | None) -> dict[str, object]:
    """The ids of a refused message the network can read: its ``event_id`` (a UUID), its
    ``event_type`` (one the contract names), its ``screening_id`` and ``referral_id``
    (valid ids); anything else, and any value that breaks its rule, is left out."""
    if not payload:
        return {}
    try:
        document = from_json(
            payload[:_PARSE_AT_MOST], allow_partial=True, allow_inf_nan=False, cache_strings=False
        )
    except ValueError:
        return {}
    if not isinstance(document, dict):
        return {}
    event_type = document.get("event_type")
    return {
        "refused_event_id": _valid(_EVENT_ID, document.get("event_id")),
        "refused_event_type": event_type if event_type in EVENT_TYPES else None,
        "screening_id": _valid(_ID, document.get("screening_id")),
        "referral_id": _valid(_ID, document.get("referral_id")),
    }


def refusal_answer(
    topics: Topics,
    kind: DeadLetterKind,
    rule: str,
    source: DeadLetterSource,
    payload: bytes | None,
    *,
    occurred_at: datetime,
    state: OfferState | None = None,
) -> Outgoing | None:
    """The ``message.refused`` a party hears on its own inbox topic of a message the
    network refused (None when the message was not a party's: nobody to answer).

    One per refused message: its id derives from the message's place, so a replay
    repeats it. It names the message (``source``, :func:`refused_ids`), the kind and
    the rule; never the payload nor a value from it beyond those ids.
    """
    topic = answer_topic(topics, source.topic)
    if topic is None:
        return None
    event = MessageRefused.model_validate(
        {
            "event_id": derived_id("refused", source.topic, source.partition, source.offset, kind),
            "occurred_at": occurred_at,
            "source": source,
            **refused_ids(payload),
            "error": Refusal(kind=kind, rule=rule[:1000]),
            "referral_state": state,
        }
    )
    # the label counts the answers by kind in the metrics (output and ingress counters)
    return Outgoing(topic, source.key or "", to_bytes(event), f"{event.event_type}:{kind.value}")


def refused(
    topics: Topics,
    kind: DeadLetterKind,
    message: str,
    source: DeadLetterSource,
    payload: bytes | None,
    *,
    occurred_at: datetime,
    state: OfferState | None = None,
) -> list[Outgoing]:
    """A refused message's dead letter to the operator and its answer to its sender."""
    letter = dead_letter_event(kind, message, source, payload, occurred_at=occurred_at)
    outputs = [Outgoing.event(topics.deadletter, source.key or "", letter)]
    answer = refusal_answer(
        topics, kind, message, source, payload, occurred_at=occurred_at, state=state
    )
    return outputs + ([answer] if answer is not None else [])
