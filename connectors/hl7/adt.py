"""ADT (A01, A03, A04, A06, A07, A08) to ``encounter.notified``: pure, no I/O.

The field-by-field mapping is documented in docs/encounters.md ("HL7 v2 over
MLLP"). A message that cannot become a valid event raises
:class:`~connectors.hl7.errors.Hl7Refused`: AR when the network does not take
such a message, AE when a field breaks a rule; the text names the field and the
rule, never a value.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Final
from zoneinfo import ZoneInfo

import hl7
from pydantic import ValidationError

from connectors.hl7.errors import error, rejected
from connectors.hl7.messages import Header, field, header
from schemas.codes import ICD10CM_SYSTEM, SNOMED_SYSTEM, EncounterClass, EncounterEvent
from schemas.events.encounters import MAX_REASONS, EncounterNotified

#: The namespace of event ids made from (facility id, MSH-10).
EVENT_ID_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "urn:refnet:hl7v2:adt:msh-10")
#: The facility time zone when none is configured.
DEFAULT_TIME_ZONE: Final = "America/New_York"

#: ADT trigger events taken, and what each one means (A01 and A04 become an ED
#: visit when the patient class is emergency).
TRIGGERS: Final[dict[str, EncounterEvent]] = {
    "A01": EncounterEvent.ADMIT,
    "A03": EncounterEvent.DISCHARGE,
    "A04": EncounterEvent.REGISTRATION,
    "A06": EncounterEvent.TRANSFER,
    "A07": EncounterEvent.TRANSFER,
    "A08": EncounterEvent.UPDATE,
}
#: PV1-2 patient class (HL7 table 0004) to the encounter class.
PATIENT_CLASSES: Final[dict[str, EncounterClass]] = {
    "I": EncounterClass.INPATIENT,
    "B": EncounterClass.INPATIENT,  # obstetrics
    "E": EncounterClass.EMERGENCY,
    "O": EncounterClass.AMBULATORY,
    "R": EncounterClass.AMBULATORY,  # recurring patient
    "P": EncounterClass.PRE_ADMISSION,
}
#: Coding systems (CWE-3) of a reason code that are kept; others are dropped.
REASON_SYSTEMS: Final[dict[str, str]] = {
    "I10": ICD10CM_SYSTEM,
    "I10C": ICD10CM_SYSTEM,
    "SCT": SNOMED_SYSTEM,
}
#: Where each field of the event comes from, to name it in an AE.
_SOURCES: Final[dict[tuple[str, ...], str]] = {
    ("encounter_id",): "PV1-19 visit number",
    ("patient", "id"): "PID-3 patient identifier",
    ("patient", "given_name"): "PID-5.2 given name",
    ("patient", "family_name"): "PID-5.1 family name",
    ("patient", "birth_date"): "PID-7 birth date",
    ("patient", "postal_code"): "PID-11.5 postal code",
    ("patient", "phone"): "PID-13 phone",
    ("encounter_at",): "event time",
    ("occurred_at",): "MSH-7 message time",
    ("reasons",): "DG1-3 or PV2-3 reason",
}
#: An HL7 DTM: YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ].
_DTM: Final = re.compile(r"(\d{4,14})(?:\.\d{1,4})?(?:[+-]\d{4})?")
#: The earliest birth date taken.
_MIN_BIRTH: Final = date(1880, 1, 1)


@dataclass(frozen=True, slots=True)
class Mapped:
    """An ADT message as an event, and how many reason codes were left out
    (an unknown coding system, or more than MAX_REASONS)."""

    header: Header
    event: EncounterNotified
    dropped_reasons: int


def event_id(facility_id: str, control_id: str) -> uuid.UUID:
    """The same message sent again (same facility, same MSH-10) is the same event."""
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{facility_id}\x1f{control_id}")


def hl7_time(value: str, zone: ZoneInfo, what: str) -> datetime:
    """An HL7 DTM as an aware datetime; without an offset it is read in ``zone``."""
    shape = _DTM.fullmatch(value)
    if shape is None:
        raise error("time-format", f"{what} is not an HL7 date and time")
    if len(shape.group(1)) < 12:
        raise error("time-precision", f"{what} needs at least minutes (YYYYMMDDHHMM)")
    try:
        parsed = hl7.parse_datetime(value)
        offset = parsed.utcoffset()
        if offset is None:
            local: datetime = parsed.replace(tzinfo=zone)
            return local
        if value[-5:-2] == "-00" and offset > timedelta(0):  # python-hl7 reads -0030 as +0030
            offset = -offset
        aware: datetime = parsed.replace(tzinfo=timezone(offset))
    except (ValueError, TypeError, OverflowError):  # not a calendar date; an offset of a day
        raise error("time-format", f"{what} is not an HL7 date and time") from None
    return aware


def birth_date(value: str) -> date:
    """PID-7: at least YYYYMMDD; a time part is ignored."""
    digits = value[:8]
    if len(digits) < 8 or not digits.isdigit():
        raise error("birth-date", "PID-7 birth date must be YYYYMMDD")
    try:
        born = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        raise error("birth-date", "PID-7 birth date is not a calendar date") from None
    if born < _MIN_BIRTH:
        raise error("birth-date", "PID-7 birth date is before 1880")
    return born


def _phone(message: hl7.Message) -> str | None:
    """PID-13: XTN-1 (the formatted number) else XTN-5 to XTN-7 (country, area, local)."""
    whole = field(message, "PID", 13, 1)
    if whole:
        return whole
    parts = [field(message, "PID", 13, n) for n in (5, 6, 7)]
    joined = " ".join(p for p in parts if p)
    return joined or None


def _class(message: hl7.Message) -> EncounterClass:
    code = field(message, "PV1", 2).upper()
    if not code:
        raise error("pv1-2", "PV1-2 patient class is missing")
    if code not in PATIENT_CLASSES:
        raise error("pv1-2", "PV1-2 patient class is not one of I, B, E, O, R, P")
    return PATIENT_CLASSES[code]


def _event(trigger: str, encounter_class: EncounterClass) -> EncounterEvent:
    event = TRIGGERS[trigger]
    if trigger in ("A01", "A04") and encounter_class is EncounterClass.EMERGENCY:
        return EncounterEvent.ED_VISIT
    return event


def _encounter_time(message: hl7.Message, trigger: str) -> tuple[str, str]:
    """The first of the trigger's time fields that has a value, and its name."""
    order: list[tuple[str, int, str]] = [("EVN", 6, "EVN-6 event occurred")]
    if trigger in ("A01", "A04"):
        order.append(("PV1", 44, "PV1-44 admit time"))
    elif trigger == "A03":
        order.insert(0, ("PV1", 45, "PV1-45 discharge time"))
    order += [("EVN", 2, "EVN-2 recorded time"), ("MSH", 7, "MSH-7 message time")]
    for segment, number, name in order:
        value = field(message, segment, number)
        if value:
            return value, name
    raise rejected("msh-7", "MSH-7 message time is missing")


def _reasons(message: hl7.Message) -> tuple[list[dict[str, str]], int]:
    """DG1-3 of every DG1, then PV2-3: each CWE's first triplet of a kept system
    (else its alternate triplet); the rest are dropped and counted."""
    found: list[tuple[str, str]] = []
    dropped = 0
    sources = [(seg, 3) for seg in _segments(message, "DG1")]
    sources += [(seg, 3) for seg in _segments(message, "PV2")[:1]]
    for segment, number in sources:
        code = None
        for first in (1, 4):
            value = _component(segment, number, first)
            system = REASON_SYSTEMS.get(_component(segment, number, first + 2).upper())
            if value and system:
                code = (system, value)
                break
        if code is None:
            dropped += 1 if _component(segment, number, 1) else 0
        elif code not in found:
            found.append(code)
    dropped += max(0, len(found) - MAX_REASONS)
    return [{"system": s, "code": c} for s, c in found[:MAX_REASONS]], dropped


def _segments(message: hl7.Message, name: str) -> list[hl7.Segment]:
    try:
        return list(message.segments(name))
    except KeyError:
        return []


def _component(segment: hl7.Segment, number: int, component: int) -> str:
    try:
        return str(segment.extract_field(1, number, 1, component, 1)).strip()
    except IndexError:
        return ""


def _require(message: hl7.Message, name: str) -> None:
    if not _segments(message, name):
        raise rejected(f"no-{name.lower()}", f"the ADT message has no {name} segment")


def to_encounter(message: hl7.Message, facility_id: str, zone: ZoneInfo) -> Mapped:
    """``encounter.notified`` from an ADT message sent by ``facility_id``, or Hl7Refused."""
    head = header(message)
    if head.message_type.upper() != "ADT" or head.trigger.upper() not in TRIGGERS:
        raise rejected(
            "unsupported-type", "unsupported message type: ADT A01 A03 A04 A06 A07 A08 only"
        )
    trigger = head.trigger.upper()
    _require(message, "PID")
    _require(message, "PV1")
    sent = field(message, "MSH", 7)
    if not sent:
        raise rejected("msh-7", "MSH-7 message time is missing")
    occurred_at = hl7_time(sent, zone, "MSH-7 message time")
    encounter_class = _class(message)
    when, what = _encounter_time(message, trigger)
    patient_id = field(message, "PID", 3)
    if not patient_id:
        raise error("pid-3", "PID-3 patient identifier is missing")
    for number, component, name in ((5, 1, "PID-5.1 family name"), (5, 2, "PID-5.2 given name")):
        if not field(message, "PID", number, component):
            raise error(f"pid-{number}.{component}", f"{name} is missing")
    born = field(message, "PID", 7)
    if not born:
        raise error("birth-date", "PID-7 birth date is missing")
    reasons, dropped = _reasons(message)
    fields = {
        "event_id": event_id(facility_id, head.control_id),
        "occurred_at": occurred_at,
        "encounter_id": field(message, "PV1", 19) or head.control_id,
        "patient": {
            "id": patient_id,
            "family_name": field(message, "PID", 5, 1),
            "given_name": field(message, "PID", 5, 2),
            "birth_date": birth_date(born),
            "postal_code": field(message, "PID", 11, 5) or None,
            "phone": _phone(message),
        },
        "event": _event(trigger, encounter_class),
        "encounter_class": encounter_class,
        "encounter_at": hl7_time(when, zone, what),
        "reasons": reasons,
    }
    try:
        event = EncounterNotified.model_validate(fields)
    except ValidationError as exc:
        raise _field_error(exc) from None
    return Mapped(head, event, dropped)


def _field_error(exc: ValidationError) -> Exception:
    """The first failing field as an AE: its HL7 source and the rule's kind, no value."""
    first = exc.errors(include_input=False, include_url=False)[0]
    loc = tuple(str(part) for part in first["loc"])
    source = next((name for path, name in _SOURCES.items() if loc[: len(path)] == path), "a field")
    return error(
        f"invalid-{'.'.join(p for p in loc if not p.isdigit())}", f"{source}: {first['type']}"
    )


__all__ = [
    "DEFAULT_TIME_ZONE",
    "EVENT_ID_NAMESPACE",
    "PATIENT_CLASSES",
    "REASON_SYSTEMS",
    "TRIGGERS",
    "Mapped",
    "birth_date",
    "event_id",
    "hl7_time",
    "to_encounter",
]
