"""Every event of the wire contract v1 (docs/contract.md), defined once.

Each event is a frozen pydantic model that ignores unknown fields (the contract
lets producers add fields). The ``event_type`` field is the discriminator of
:data:`AnyEvent`; :data:`EVENT_TYPES` maps each wire value to its model.

Wire rules carried by the field types, so that Python and the published JSON
Schemas (``schemas.jsonschema``) say the same thing:

- timestamps are RFC 3339 with a ``Z`` or ``+hh:mm`` offset; a naive timestamp,
  a number, or an offset that is not a whole number of minutes is rejected, and
  so is an instant before :data:`MIN_TIMESTAMP` or from :data:`MAX_TIMESTAMP` on
  (every accepted timestamp converts to UTC and fits PostgreSQL);
- ``event_id`` is a UUID in its canonical hyphenated form;
- party ids (``clinic_id``, ``org_id``) match :data:`schemas.codes.PARTY_ID_PATTERN`;
- durations are ISO 8601 (``PT24H``, ``P2D``) in and out; ``response_sla`` is at
  most :data:`MAX_RESPONSE_SLA`;
- text (names, phones, reasons, notes, free-text answers) holds no control
  character but tab, line feed and carriage return (:data:`TEXT_PATTERN`): a NUL
  would stop PostgreSQL, others corrupt logs and terminals;
- every list a party fills is bounded (``MAX_ANSWERS``, ``MAX_CATEGORIES``,
  ``MAX_POSTAL_CODES``, ``MAX_LANGUAGES``, ``MAX_NEEDS``, ``MAX_PROBLEMS``);
- an optional list, object or defaulted field may be given as JSON ``null``,
  meaning none (an optional list becomes ``[]``, ``priority`` becomes
  ``routine``); ``consent.categories`` is the exception that the contract names:
  null there means all categories.

Validation messages describe the rule, never the rejected value: values may be
patient data.

The models live in one module per topic family: :mod:`~schemas.events.screenings`,
:mod:`~schemas.events.referrals`, :mod:`~schemas.events.directory` and
:mod:`~schemas.events.deadletters`, on the field types of
:mod:`~schemas.events.fields` and the base of :mod:`~schemas.events.base`;
:mod:`~schemas.events.registry` maps each ``event_type`` to its model. Import
any of them from here.
"""

from __future__ import annotations

from schemas.events.answers import (
    MessageRefused,
    OfferState,
    ProblemFound,
    ReferralStatusRecorded,
    Refusal,
    ScreeningAnswered,
    ScreeningReferral,
)
from schemas.events.base import Event, WireModel, new_event_id, utcnow
from schemas.events.deadletters import DeadLetter, DeadLetterError, DeadLetterSource
from schemas.events.directory import (
    Capacity,
    CapacityStatus,
    Location,
    ServiceCapacityChanged,
    ServiceUpserted,
)
from schemas.events.encounters import (
    MAX_REASONS,
    EncounterAlerted,
    EncounterNotified,
    EncounterPatient,
    EncounterReason,
    EncounterRouted,
)
from schemas.events.fields import (
    BASE64_PATTERN,
    DURATION_PATTERN,
    ID_PATTERN,
    LANGUAGE_PATTERN,
    MAX_ANSWERS,
    MAX_CATEGORIES,
    MAX_LANGUAGES,
    MAX_NEEDS,
    MAX_POSTAL_CODES,
    MAX_PROBLEMS,
    MAX_RESPONSE_SLA,
    MAX_TIMESTAMP,
    MIN_TIMESTAMP,
    NULL_IS_EMPTY,
    TEXT_PATTERN,
    TIMESTAMP_PATTERN,
    UUID_PATTERN,
    AnswerValue,
    Code,
    Duration,
    EventId,
    Id,
    Integer,
    Language,
    Name,
    Note,
    NullMeans,
    PartyId,
    PostalCode,
    Reason,
    ResponseSla,
    Timestamp,
)
from schemas.events.patient import Consent, OfferedPatient, Patient
from schemas.events.referrals import (
    STATUSES_NEEDING_REASON,
    ConsentUpdated,
    ReferralCancelled,
    ReferralOffered,
    ReferralRequested,
    ReferralStateChanged,
    ReferralStatusChanged,
    ReferralUpdated,
    ReferralWithdrawn,
)
from schemas.events.registry import (
    ANY_EVENT_ADAPTER,
    EVENT_MODELS,
    EVENT_TYPES,
    AnyEvent,
    from_bytes,
    to_bytes,
)
from schemas.events.screenings import (
    Answer,
    Need,
    ScoringProblem,
    ScreeningScored,
    ScreeningSubmitted,
)

__all__ = [
    "ANY_EVENT_ADAPTER",
    "BASE64_PATTERN",
    "DURATION_PATTERN",
    "EVENT_MODELS",
    "EVENT_TYPES",
    "ID_PATTERN",
    "LANGUAGE_PATTERN",
    "MAX_ANSWERS",
    "MAX_CATEGORIES",
    "MAX_LANGUAGES",
    "MAX_NEEDS",
    "MAX_POSTAL_CODES",
    "MAX_PROBLEMS",
    "MAX_REASONS",
    "MAX_RESPONSE_SLA",
    "MAX_TIMESTAMP",
    "MIN_TIMESTAMP",
    "NULL_IS_EMPTY",
    "STATUSES_NEEDING_REASON",
    "TEXT_PATTERN",
    "TIMESTAMP_PATTERN",
    "UUID_PATTERN",
    "Answer",
    "AnswerValue",
    "AnyEvent",
    "Capacity",
    "CapacityStatus",
    "Code",
    "Consent",
    "ConsentUpdated",
    "DeadLetter",
    "DeadLetterError",
    "DeadLetterSource",
    "Duration",
    "EncounterAlerted",
    "EncounterNotified",
    "EncounterPatient",
    "EncounterReason",
    "EncounterRouted",
    "Event",
    "EventId",
    "Id",
    "Integer",
    "Language",
    "Location",
    "MessageRefused",
    "Name",
    "Need",
    "Note",
    "NullMeans",
    "OfferState",
    "OfferedPatient",
    "PartyId",
    "Patient",
    "PostalCode",
    "ProblemFound",
    "Reason",
    "ReferralCancelled",
    "ReferralOffered",
    "ReferralRequested",
    "ReferralStateChanged",
    "ReferralStatusChanged",
    "ReferralStatusRecorded",
    "ReferralUpdated",
    "ReferralWithdrawn",
    "Refusal",
    "ResponseSla",
    "ScoringProblem",
    "ScreeningAnswered",
    "ScreeningReferral",
    "ScreeningScored",
    "ScreeningSubmitted",
    "ServiceCapacityChanged",
    "ServiceUpserted",
    "Timestamp",
    "WireModel",
    "from_bytes",
    "new_event_id",
    "to_bytes",
    "utcnow",
]
