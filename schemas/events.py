"""Every event of the wire contract v1 (CONTRACT.md), defined once.

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
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Final, Literal, Self
from uuid import UUID, uuid4

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StrictBool,
    StringConstraints,
    TypeAdapter,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from schemas.codes import (
    PARTY_ID_PATTERN,
    BusinessStatus,
    Category,
    DeadLetterKind,
    Instrument,
    OrgStatus,
    Party,
    Priority,
    ServiceStatus,
    TaskStatus,
)

# ---------------------------------------------------------------- wire limits
#: Earliest instant a timestamp may name (inclusive).
MIN_TIMESTAMP: Final = datetime(1900, 1, 1, tzinfo=UTC)
#: First instant a timestamp may no longer name (exclusive). Far enough from
#: ``datetime.max`` that any offset converts to UTC without overflow, and inside
#: PostgreSQL's ``timestamptz`` range. (Timestamps too far ahead of *now* are the
#: ingress's business, not the wire format's.)
MAX_TIMESTAMP: Final = datetime(9000, 1, 1, tzinfo=UTC)
#: The longest ``response_sla`` of a service: an offer waits at most this long.
MAX_RESPONSE_SLA: Final = timedelta(days=90)
#: Answers of one screening. The longest instrument (PRAPARE) has under 30
#: items; multi-select items repeat their question, so 200 is generous.
MAX_ANSWERS: Final = 200
#: Categories in a consent, a service or a scored screening. There are 23 Gravity
#: categories; the margin allows for categories added in a v1 revision.
MAX_CATEGORIES: Final = 30
#: Postal codes one service covers (a large county or a whole state's ZIP codes).
MAX_POSTAL_CODES: Final = 5000
#: Languages one service offers.
MAX_LANGUAGES: Final = 50
#: Needs of a scored screening: at most one per category.
MAX_NEEDS: Final = 100
#: Problems of a scored screening: each of the :data:`MAX_ANSWERS` answers can
#: cause a couple (unknown question, unusable value), plus one per scoring rule.
MAX_PROBLEMS: Final = 1000

# ---------------------------------------------------------------- wire patterns
#: RFC 3339 date-time with a mandatory offset (JSON Schema ``format`` is not
#: enforced by most validators, so the published schemas carry this pattern).
#: Years are 1900 to 8999 in the timestamp's own offset; the models check the
#: exact bounds (:data:`MIN_TIMESTAMP`, :data:`MAX_TIMESTAMP`) in UTC.
TIMESTAMP_PATTERN: Final = (
    r"^(19[0-9]{2}|[2-8][0-9]{3})-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
#: Any RFC 3339 date-time with an offset, whatever its year (the message for a
#: year out of range names the range, not the format).
_RFC3339_PATTERN: Final = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
UUID_PATTERN: Final = (
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
#: ISO 8601 duration as pydantic reads and writes it (``PT24H``, ``P2D``, ``P1Y35DT3H``).
DURATION_PATTERN: Final = (
    r"^-?P(?=[0-9]|T[0-9])([0-9]+(\.[0-9]+)?Y)?([0-9]+(\.[0-9]+)?M)?([0-9]+(\.[0-9]+)?W)?"
    r"([0-9]+(\.[0-9]+)?D)?(T(?=[0-9])([0-9]+(\.[0-9]+)?H)?([0-9]+(\.[0-9]+)?M)?"
    r"([0-9]+(\.[0-9]+)?S)?)?$"
)
#: Ids chosen by clinics, organizations and the network (referral_id, service_id,
#: screening_id, patient id): printable, no leading or trailing blank.
ID_PATTERN: Final = r"^\S(?:[^\x00-\x1f\x7f]*\S)?$"
#: ISO 639 language code, optionally with BCP 47 subtags (``es``, ``zh-Hant``).
LANGUAGE_PATTERN: Final = r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{1,8})*$"
#: LOINC codes are digits, a dash and a check digit (``88122-7``, ``LA28397-0``
#: for answers); questions are checked loosely so that new panels need no release.
CODE_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"
BASE64_PATTERN: Final = r"^[A-Za-z0-9+/]*={0,2}$"
#: Free text and names: no C0 control character but tab, line feed and carriage
#: return, and no DEL. (A NUL cannot be stored in PostgreSQL text or jsonb.)
TEXT_PATTERN: Final = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"

_TIMESTAMP_RE: Final = re.compile(_RFC3339_PATTERN)
_CONTROL_RE: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_UUID_RE: Final = re.compile(UUID_PATTERN)
_DURATION_RE: Final = re.compile(DURATION_PATTERN)


# ---------------------------------------------------------------- annotated types
def _timestamp_wire_form(value: object) -> object:
    # Messages never echo the rejected value: it may be patient data.
    if isinstance(value, bool | int | float):
        raise ValueError("a timestamp must be an RFC 3339 string with an offset, not a number")
    if isinstance(value, str) and not _TIMESTAMP_RE.fullmatch(value):
        raise ValueError("a timestamp must be RFC 3339 with a Z or +hh:mm offset")
    return value


def _whole_minute_offset(value: datetime) -> datetime:
    offset = value.utcoffset()
    if offset is not None and offset.total_seconds() % 60:
        raise ValueError("a timestamp offset must be a whole number of minutes")
    return value


def _timestamp_in_range(value: datetime) -> datetime:
    # 9999-12-31T23:59:59-01:00 is a valid RFC 3339 text whose UTC instant
    # does not fit a datetime: converting it raises OverflowError.
    try:
        instant: datetime | None = value.astimezone(UTC)
    except (OverflowError, ValueError):
        instant = None
    if instant is None or not MIN_TIMESTAMP <= instant < MAX_TIMESTAMP:
        raise ValueError(
            "a timestamp must be at or after 1900-01-01T00:00:00Z and before 9000-01-01T00:00:00Z"
        )
    return value


def _uuid_wire_form(value: object) -> object:
    if isinstance(value, str) and not _UUID_RE.fullmatch(value):
        raise ValueError("an event id must be a hyphenated UUID")
    return value


def _duration_wire_form(value: object) -> object:
    if isinstance(value, bool | int | float):
        raise ValueError("a duration must be an ISO 8601 string such as PT24H, not a number")
    if isinstance(value, str) and not _DURATION_RE.fullmatch(value):
        raise ValueError("a duration must be ISO 8601, such as PT24H or P2D")
    return value


def _positive_duration(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("a duration must be positive")
    return value


def _at_most_max_response_sla(value: timedelta) -> timedelta:
    if value > MAX_RESPONSE_SLA:
        raise ValueError("a response_sla must be at most 90 days (P90D)")
    return value


def _no_control_characters(value: object) -> object:
    # Runs before the pattern check, for a message that says what is wrong.
    if isinstance(value, str) and _CONTROL_RE.search(value):
        raise ValueError(
            "text must not contain control characters (U+0000 to U+001F other than tab, "
            "line feed and carriage return, or U+007F)"
        )
    return value


@dataclass(frozen=True, slots=True)
class NullMeans:
    """Annotation: JSON ``null`` stands for ``factory()`` (an empty list, a default).

    Validation replaces ``None`` before the inner type sees it; the JSON Schema
    says ``anyOf: [<the type>, {"type": "null"}]``. Python readers never see None.
    """

    factory: Callable[[], object]

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_before_validator_function(self._replace, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"anyOf": [handler(schema), {"type": "null"}]}

    def _replace(self, value: object) -> object:
        return self.factory() if value is None else value


#: An aware timestamp (RFC 3339 with offset on the wire), from
#: :data:`MIN_TIMESTAMP` (inclusive) to :data:`MAX_TIMESTAMP` (exclusive).
Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_timestamp_wire_form),
    AfterValidator(_whole_minute_offset),
    AfterValidator(_timestamp_in_range),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}),
]
#: A UUID, hyphenated on the wire.
EventId = Annotated[
    UUID,
    BeforeValidator(_uuid_wire_form),
    WithJsonSchema({"type": "string", "format": "uuid", "pattern": UUID_PATTERN}),
]
#: A positive ISO 8601 duration.
Duration = Annotated[
    timedelta,
    BeforeValidator(_duration_wire_form),
    AfterValidator(_positive_duration),
    WithJsonSchema({"type": "string", "format": "duration", "pattern": DURATION_PATTERN}),
]
#: A service's response time: a positive duration of at most :data:`MAX_RESPONSE_SLA`.
ResponseSla = Annotated[Duration, AfterValidator(_at_most_max_response_sla)]
PartyId = Annotated[str, StringConstraints(pattern=PARTY_ID_PATTERN)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=ID_PATTERN)]
Code = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=CODE_PATTERN)]
Language = Annotated[str, StringConstraints(max_length=35, pattern=LANGUAGE_PATTERN)]
PostalCode = Annotated[
    str, StringConstraints(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9][A-Za-z0-9 -]*$")
]
#: A name (of a person, a service, a unit): text without control characters.
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=TEXT_PATTERN),
    BeforeValidator(_no_control_characters),
]
Phone = Annotated[
    str,
    StringConstraints(min_length=1, max_length=40, pattern=TEXT_PATTERN),
    BeforeValidator(_no_control_characters),
]
#: Reason and outcome codes: DOMAIN.md's codes (:class:`schemas.codes.ReasonCode`)
#: or another documented code; free text is tolerated up to 256 characters.
Reason = Annotated[
    str,
    StringConstraints(min_length=1, max_length=256, pattern=TEXT_PATTERN),
    BeforeValidator(_no_control_characters),
]
#: Free text up to 4000 characters (tab, line feed and carriage return allowed).
Note = Annotated[
    str,
    StringConstraints(max_length=4000, pattern=TEXT_PATTERN),
    BeforeValidator(_no_control_characters),
]
FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
#: A count, an attempt or an age: a JSON integer (``true`` or ``"3"`` is not one).
Integer = Annotated[int, Field(strict=True)]
#: A LOINC answer code, free text, or a number ("a numeric answer may be given
#: as a number"). Booleans are not numbers here.
#: (Answer checks free text for control characters before the union, so that the
#: message is one clear error rather than one per member.)
AnswerValue = (
    Annotated[str, StringConstraints(max_length=1000, pattern=TEXT_PATTERN)]
    | Annotated[int, Field(strict=True)]
    | FiniteFloat
)


def _empty_list() -> list[Any]:
    return []


def _routine() -> Priority:
    return Priority.ROUTINE


#: ``null`` for an optional list means none.
NULL_IS_EMPTY: Final = NullMeans(_empty_list)
#: ``null`` for a priority means the default, routine.
_NULL_IS_ROUTINE: Final = NullMeans(_routine)


# ---------------------------------------------------------------- nested models
class WireModel(BaseModel):
    """Base of every model on the wire: immutable, unknown fields ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Patient(WireModel):
    """The patient as the clinic knows them. Stays inside the network."""

    id: Id
    given_name: Name
    family_name: Name | None = None
    phone: Phone | None = None
    preferred_language: Language | None = Field(default=None, description="ISO 639 code")
    postal_code: PostalCode | None = None
    birth_date: date | None = None


class Consent(WireModel):
    """The patient's consent to disclose to community organizations."""

    granted: StrictBool = Field(description='true or false; "yes" or 1 is not consent')
    categories: Annotated[list[Category], Field(max_length=MAX_CATEGORIES)] | None = Field(
        default=None, description="categories consented to; null means all"
    )
    expires_at: Timestamp | None = None

    def covers(self, category: Category, at: datetime) -> bool:
        """Whether this consent allows disclosure for ``category`` at time ``at``."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("consent is checked at an aware time")
        if not self.granted:
            return False
        if self.expires_at is not None and at >= self.expires_at:
            return False
        return self.categories is None or category in self.categories


class Answer(WireModel):
    """One answer to one screening item; a multi-select item repeats its question."""

    question: Code = Field(description="LOINC question code, e.g. 88122-7")
    answer: AnswerValue = Field(description="LOINC answer code, free text, or a number")

    @field_validator("answer", mode="before")
    @classmethod
    def _answer_text_has_no_control_characters(cls, value: object) -> object:
        return _no_control_characters(value)


class OfferedPatient(WireModel):
    """The minimum necessary about a patient for an organization (see schemas.privacy)."""

    given_name: Name
    phone: Phone | None = None
    preferred_language: Language | None = None
    postal_code: PostalCode | None = None


class Location(WireModel):
    lat: FiniteFloat = Field(ge=-90, le=90)
    lon: FiniteFloat = Field(ge=-180, le=180)


class Capacity(WireModel):
    """HSDS 3.1 draft ``service.capacities[]``: what is left now."""

    available: Integer = Field(ge=0)
    unit: Name | None = None
    maximum: Integer | None = Field(default=None, ge=0)


class Need(WireModel):
    """A need derived from a screening, and the rule that derived it."""

    category: Category
    rule: Reason = Field(description="identifier of the scoring rule that fired")


class ScoringProblem(WireModel):
    """Something wrong with a screening's answers (missing, contradictory, unknown)."""

    kind: Code
    question: Code | None = None
    detail: Note | None = None


class DeadLetterSource(WireModel):
    topic: Annotated[str, StringConstraints(min_length=1, max_length=249)]
    partition: Integer = Field(ge=-1)
    offset: Integer = Field(ge=-1)
    key: str | None = None


class DeadLetterError(WireModel):
    kind: DeadLetterKind
    message: Note


# ---------------------------------------------------------------- events
def _require_event_type(schema: dict[str, Any]) -> None:
    # event_type has a default for convenience in Python; on the wire it is required.
    required = schema.setdefault("required", [])
    if "event_type" in schema.get("properties", {}) and "event_type" not in required:
        required.insert(0, "event_type")


def new_event_id() -> UUID:
    """A fresh random event id."""
    return uuid4()


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


class Event(WireModel):
    """Fields every event has. ``event_id`` is the idempotency key."""

    model_config = ConfigDict(json_schema_extra=_require_event_type)

    event_id: EventId
    event_type: str
    occurred_at: Timestamp

    @classmethod
    def new(cls, **fields: Any) -> Self:
        """Build an event with a fresh ``event_id`` and ``occurred_at`` now (unless given)."""
        fields.setdefault("event_id", new_event_id())
        fields.setdefault("occurred_at", utcnow())
        return cls(**fields)


class ScreeningSubmitted(Event):
    """A clinic submits a screening (clinic submissions topic, key patient id)."""

    event_type: Literal["screening.submitted"] = "screening.submitted"
    screening_id: Id
    patient: Patient
    consent: Consent
    instrument: Instrument
    answers: Annotated[list[Answer], Field(max_length=MAX_ANSWERS)]


class ReferralRequested(Event):
    """A clinician refers directly (clinic submissions topic, key patient id)."""

    event_type: Literal["referral.requested"] = "referral.requested"
    referral_id: Id
    patient: Patient
    consent: Consent
    category: Category
    service_id: Id | None = Field(default=None, description="asks for one service")
    priority: Annotated[Priority, _NULL_IS_ROUTINE] = Field(
        default=Priority.ROUTINE, description="null means routine"
    )
    note: Note | None = None


class ReferralCancelled(Event):
    """The clinic cancels a referral (clinic submissions topic)."""

    event_type: Literal["referral.cancelled"] = "referral.cancelled"
    referral_id: Id
    reason: Reason | None = None


class ConsentUpdated(Event):
    """A clinic revokes, narrows or renews a patient's consent (clinic submissions, key patient id).

    It replaces the consent of every referral the clinic has open for the
    patient: an open referral the new consent no longer covers is withdrawn from
    its organization (reason ``consent-withdrawn``) and ends ``failed`` /
    ``consent-required``; later re-routes disclose only under the new consent.
    """

    event_type: Literal["consent.updated"] = "consent.updated"
    patient_id: Id
    consent: Consent


class ReferralOffered(Event):
    """The network offers a referral to an organization: minimum necessary only."""

    event_type: Literal["referral.offered"] = "referral.offered"
    referral_id: Id
    service_id: Id
    category: Category
    priority: Annotated[Priority, _NULL_IS_ROUTINE] = Field(
        default=Priority.ROUTINE, description="null means routine"
    )
    respond_by: Timestamp
    patient: OfferedPatient
    note: Note | None = None


class ReferralWithdrawn(Event):
    """The network withdraws an offer; the organization must stop work."""

    event_type: Literal["referral.withdrawn"] = "referral.withdrawn"
    referral_id: Id
    reason: Reason = Field(description="timeout, cancelled-by-clinic or another documented code")


#: Organization statuses that must say why (CONTRACT.md).
STATUSES_NEEDING_REASON: Final = frozenset(
    {OrgStatus.REJECTED, OrgStatus.FAILED, OrgStatus.CANCELLED}
)


def _status_changed_schema(schema: dict[str, Any]) -> None:
    _require_event_type(schema)
    # The model validator's rule, for validators in other languages.
    schema["if"] = {
        "properties": {"status": {"enum": sorted(s.value for s in STATUSES_NEEDING_REASON)}},
        "required": ["status"],
    }
    schema["then"] = {"properties": {"reason": {"type": "string"}}, "required": ["reason"]}


class ReferralStatusChanged(Event):
    """An organization reports progress on a referral offered to it."""

    model_config = ConfigDict(json_schema_extra=_status_changed_schema)

    event_type: Literal["referral.status-changed"] = "referral.status-changed"
    referral_id: Id
    status: OrgStatus
    reason: Reason | None = None
    outcome: Reason | None = None
    note: Note | None = None

    @model_validator(mode="after")
    def _reason_when_required(self) -> Self:
        if self.status in STATUSES_NEEDING_REASON and self.reason is None:
            raise ValueError(f"status {self.status.value} needs a reason")
        return self


class ServiceCapacityChanged(Event):
    """An organization reports the capacity left in one of its services."""

    event_type: Literal["service.capacity-changed"] = "service.capacity-changed"
    service_id: Id
    available: Integer = Field(ge=0)


class ReferralUpdated(Event):
    """What the referring clinic sees of its referral (clinic updates topic)."""

    event_type: Literal["referral.updated"] = "referral.updated"
    referral_id: Id
    patient_id: Id
    category: Category
    screening_id: Id | None = None
    status: TaskStatus
    business_status: BusinessStatus | None = None
    org_id: PartyId | None = None
    service_id: Id | None = None
    reason: Reason | None = None
    outcome: Reason | None = None
    attempt: Integer = Field(ge=0, description="1 for the first organization offered")
    duplicate_of: Id | None = Field(
        default=None,
        description="with business_status duplicate: the patient's open referral in the category",
    )


class ServiceUpserted(Event):
    """A service of the directory, created or replaced (compacted, key service_id)."""

    event_type: Literal["service.upserted"] = "service.upserted"
    service_id: Id
    org_id: PartyId
    name: Name
    status: ServiceStatus
    categories: Annotated[list[Category], Field(max_length=MAX_CATEGORIES)]
    postal_codes: Annotated[list[PostalCode], Field(max_length=MAX_POSTAL_CODES), NULL_IS_EMPTY] = (
        Field(default_factory=list, description="null means none")
    )
    location: Location | None = None
    radius_km: FiniteFloat | None = Field(default=None, ge=0)
    languages: Annotated[list[Language], Field(max_length=MAX_LANGUAGES), NULL_IS_EMPTY] = Field(
        default_factory=list, description="null means none"
    )
    min_age: Integer | None = Field(default=None, ge=0)
    max_age: Integer | None = Field(default=None, ge=0)
    capacity: Capacity | None = None
    response_sla: ResponseSla | None = Field(
        default=None, description="ISO 8601, e.g. PT24H; positive, at most P90D"
    )

    @model_validator(mode="after")
    def _age_bounds_ordered(self) -> Self:
        if self.min_age is not None and self.max_age is not None and self.min_age > self.max_age:
            raise ValueError("min_age is above max_age")
        return self


class ScreeningScored(Event):
    """A normalized screening with its derived needs, for analytics.

    Carries ``patient_id`` only: no name, phone or birth date.
    """

    event_type: Literal["screening.scored"] = "screening.scored"
    screening_id: Id
    patient_id: Id
    clinic_id: PartyId
    instrument: Instrument
    answers: Annotated[list[Answer], Field(max_length=MAX_ANSWERS), NULL_IS_EMPTY] = Field(
        default_factory=list
    )
    needs: Annotated[list[Need], Field(max_length=MAX_NEEDS), NULL_IS_EMPTY] = Field(
        default_factory=list
    )
    problems: Annotated[list[ScoringProblem], Field(max_length=MAX_PROBLEMS), NULL_IS_EMPTY] = (
        Field(default_factory=list)
    )
    consented_categories: Annotated[
        list[Category], Field(max_length=MAX_CATEGORIES), NULL_IS_EMPTY
    ] = Field(
        default_factory=list,
        description="derived needs whose category the consent covered when scored",
    )


class ReferralStateChanged(Event):
    """One record per referral state change (referral events topic: ledger, audit)."""

    event_type: Literal["referral.state-changed"] = "referral.state-changed"
    referral_id: Id
    clinic_referral_id: Id | None = Field(
        default=None, description="the referring clinic's own id of this referral"
    )
    patient_id: Id
    clinic_id: PartyId
    category: Category
    screening_id: Id | None = None
    from_status: TaskStatus | None = Field(default=None, description="null when created")
    to_status: TaskStatus
    business_status: BusinessStatus | None = None
    org_id: PartyId | None = None
    service_id: Id | None = None
    reason: Reason | None = None
    outcome: Reason | None = None
    attempt: Integer = Field(ge=0)
    actor: Party
    cause_event_id: EventId | None = Field(
        default=None, description="the event that caused this change"
    )
    preferred_language: Language | None = Field(
        default=None,
        description="the patient's preferred language (added in v1: equity reports stratify by it)",
    )
    postal_code: PostalCode | None = Field(
        default=None,
        description="the patient's postal code (added in v1: service gaps and equity reports)",
    )
    disclosed_fields: Annotated[list[Code], Field(max_length=16)] | None = Field(
        default=None,
        description=(
            "on an offer (added in v1): the names of the patient fields disclosed to the "
            "organization, for the accounting of disclosures"
        ),
    )
    consent: Consent | None = Field(
        default=None,
        description="on an offer (added in v1): the consent the disclosure was made under",
    )


class DeadLetter(Event):
    """A message the network could not use, with the reason (deadletter topic)."""

    event_type: Literal["deadletter"] = "deadletter"
    source: DeadLetterSource
    error: DeadLetterError
    payload_base64: Annotated[str, StringConstraints(pattern=BASE64_PATTERN)] = Field(
        description=(
            "a bounded excerpt of the message, never the whole payload and never patient "
            "fields: the message's own bytes stay at source.topic/partition/offset"
        )
    )
    payload_bytes: Integer | None = Field(default=None, ge=0, description="the message's size")
    payload_sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = Field(
        default=None, description="SHA-256 of the message's bytes, hex"
    )


# ---------------------------------------------------------------- registry
EVENT_MODELS: Final[tuple[type[Event], ...]] = (
    ScreeningSubmitted,
    ReferralRequested,
    ReferralCancelled,
    ConsentUpdated,
    ReferralOffered,
    ReferralWithdrawn,
    ReferralStatusChanged,
    ServiceCapacityChanged,
    ReferralUpdated,
    ServiceUpserted,
    ScreeningScored,
    ReferralStateChanged,
    DeadLetter,
)


def _event_type_of(model: type[Event]) -> str:
    default = model.model_fields["event_type"].default
    assert isinstance(default, str)
    return default


#: Wire ``event_type`` -> model.
EVENT_TYPES: Final[dict[str, type[Event]]] = {_event_type_of(m): m for m in EVENT_MODELS}

AnyEvent = Annotated[
    ScreeningSubmitted
    | ReferralRequested
    | ReferralCancelled
    | ConsentUpdated
    | ReferralOffered
    | ReferralWithdrawn
    | ReferralStatusChanged
    | ServiceCapacityChanged
    | ReferralUpdated
    | ServiceUpserted
    | ScreeningScored
    | ReferralStateChanged
    | DeadLetter,
    Field(discriminator="event_type"),
]
ANY_EVENT_ADAPTER: Final[TypeAdapter[AnyEvent]] = TypeAdapter(AnyEvent)


def to_bytes(event: Event) -> bytes:
    """The event as a Kafka message value: UTF-8 JSON, nulls included."""
    return event.model_dump_json(exclude_none=False).encode("utf-8")


def from_bytes(value: bytes | str) -> AnyEvent:
    """Parse any event, raising ``pydantic.ValidationError``; agents use ``schemas.decode``."""
    return ANY_EVENT_ADAPTER.validate_json(value)


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
    "Code",
    "Consent",
    "ConsentUpdated",
    "DeadLetter",
    "DeadLetterError",
    "DeadLetterSource",
    "Duration",
    "Event",
    "EventId",
    "Id",
    "Integer",
    "Language",
    "Location",
    "Name",
    "Need",
    "Note",
    "NullMeans",
    "OfferedPatient",
    "PartyId",
    "Patient",
    "PostalCode",
    "Reason",
    "ReferralCancelled",
    "ReferralOffered",
    "ReferralRequested",
    "ReferralStateChanged",
    "ReferralStatusChanged",
    "ReferralUpdated",
    "ReferralWithdrawn",
    "ResponseSla",
    "ScoringProblem",
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
