"""Wire limits, patterns and the annotated field types every event is built from.

The rules the field types carry are listed in :mod:`schemas.events`; the
patterns are also published in the JSON Schemas (``schemas.jsonschema``).
Validation messages describe the rule, never the rejected value: values may be
patient data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from schemas.codes import PARTY_ID_PATTERN, EncounterAlerts, Priority

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


def no_control_characters(value: object) -> object:
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
    BeforeValidator(no_control_characters),
]
Phone = Annotated[
    str,
    StringConstraints(min_length=1, max_length=40, pattern=TEXT_PATTERN),
    BeforeValidator(no_control_characters),
]
#: Reason and outcome codes: the contract's codes (:class:`schemas.codes.ReasonCode`)
#: or another documented code; free text is tolerated up to 256 characters.
Reason = Annotated[
    str,
    StringConstraints(min_length=1, max_length=256, pattern=TEXT_PATTERN),
    BeforeValidator(no_control_characters),
]
#: Free text up to 4000 characters (tab, line feed and carriage return allowed).
Note = Annotated[
    str,
    StringConstraints(max_length=4000, pattern=TEXT_PATTERN),
    BeforeValidator(no_control_characters),
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
NULL_IS_ROUTINE: Final = NullMeans(_routine)


def _no_alerts() -> EncounterAlerts:
    return EncounterAlerts.NONE


#: ``null`` for a consent's encounter alerts means none.
NULL_IS_NO_ALERTS: Final = NullMeans(_no_alerts)


__all__ = [
    "BASE64_PATTERN",
    "CODE_PATTERN",
    "DURATION_PATTERN",
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
    "NULL_IS_NO_ALERTS",
    "NULL_IS_ROUTINE",
    "TEXT_PATTERN",
    "TIMESTAMP_PATTERN",
    "UUID_PATTERN",
    "AnswerValue",
    "Code",
    "Duration",
    "EventId",
    "FiniteFloat",
    "Id",
    "Integer",
    "Language",
    "Name",
    "Note",
    "NullMeans",
    "PartyId",
    "Phone",
    "PostalCode",
    "Reason",
    "ResponseSla",
    "Timestamp",
    "no_control_characters",
]
