"""ADT to encounter.notified: each trigger, each field, each refusal (no broker)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from connectors.hl7 import AckCode, Hl7Refused, event_id, parse, to_encounter
from connectors.hl7.adt import hl7_time
from schemas.codes import ICD10CM_SYSTEM, SNOMED_SYSTEM, EncounterClass, EncounterEvent
from schemas.events import from_bytes, to_bytes
from tests.connectors.hl7.adt_messages import adt

NEW_YORK = ZoneInfo("America/New_York")
FACILITY = "mercy-dallas"
PATIENT_VALUES = ("Rivera", "Ana", "19840217", "75201", "5550142", "MRN-0042")


def mapped(payload: bytes, zone: ZoneInfo = NEW_YORK):
    return to_encounter(parse(payload), FACILITY, zone)


def refused(payload: bytes) -> Hl7Refused:
    with pytest.raises(Hl7Refused) as caught:
        mapped(payload)
    for value in PATIENT_VALUES:
        assert value not in caught.value.text
    return caught.value


@pytest.mark.parametrize(
    ("trigger", "patient_class", "event", "encounter_class"),
    [
        ("A01", "I", EncounterEvent.ADMIT, EncounterClass.INPATIENT),
        ("A01", "E", EncounterEvent.ED_VISIT, EncounterClass.EMERGENCY),
        ("A03", "I", EncounterEvent.DISCHARGE, EncounterClass.INPATIENT),
        ("A03", "E", EncounterEvent.DISCHARGE, EncounterClass.EMERGENCY),
        ("A04", "O", EncounterEvent.REGISTRATION, EncounterClass.AMBULATORY),
        ("A04", "E", EncounterEvent.ED_VISIT, EncounterClass.EMERGENCY),
        ("A06", "I", EncounterEvent.TRANSFER, EncounterClass.INPATIENT),
        ("A07", "O", EncounterEvent.TRANSFER, EncounterClass.AMBULATORY),
        ("A08", "P", EncounterEvent.UPDATE, EncounterClass.PRE_ADMISSION),
    ],
)
def test_each_trigger_becomes_its_event(
    trigger: str, patient_class: str, event: EncounterEvent, encounter_class: EncounterClass
) -> None:
    result = mapped(adt(trigger, patient_class=patient_class))
    assert result.event.event is event
    assert result.event.encounter_class is encounter_class


def test_the_fields_of_an_admission() -> None:
    result = mapped(adt("A01", control_id="MSG-1"))
    event = result.event
    assert event.event_id == event_id(FACILITY, "MSG-1")
    assert event.occurred_at == datetime(2026, 3, 4, 16, 15, tzinfo=UTC)
    assert event.encounter_id == "V-9001"
    # EVN-6 (event occurred) wins over EVN-2 (recorded)
    assert event.encounter_at == datetime(2026, 3, 4, 16, 5, tzinfo=UTC)
    patient = event.patient
    assert (patient.id, patient.family_name, patient.given_name) == ("MRN-0042", "Rivera", "Ana")
    assert patient.birth_date == date(1984, 2, 17)
    assert patient.postal_code == "75201"
    assert patient.phone == "1 214 5550142"
    # DG1-3 and PV2-3, de-duplicated; the ICD-9 code is dropped and counted
    assert [(r.system, r.code) for r in event.reasons] == [
        (ICD10CM_SYSTEM, "J45.41"),
        (SNOMED_SYSTEM, "195967001"),
    ]
    assert result.dropped_reasons == 1
    assert from_bytes(to_bytes(event)) == event


def test_a_resent_message_is_the_same_event_and_another_is_not() -> None:
    first = mapped(adt(control_id="MSG-7")).event.event_id
    assert mapped(adt(control_id="MSG-7")).event.event_id == first
    assert mapped(adt(control_id="MSG-8")).event.event_id != first
    other = to_encounter(parse(adt(control_id="MSG-7")), "other-hospital", NEW_YORK)
    assert other.event.event_id != first


def test_discharge_time_comes_from_pv1_45() -> None:
    tail = "|||||||||||||||||V-9001" + "|" * 24 + "|202603011200|202603061830"
    event = mapped(adt("A03", pv1_tail=tail, evn="EVN|A03|202603061900")).event
    assert event.encounter_at == datetime(2026, 3, 6, 18, 30, tzinfo=NEW_YORK)


def test_admit_time_comes_from_pv1_44_when_evn_6_is_empty() -> None:
    tail = "|||||||||||||||||V-9001" + "|" * 24 + "|202603011200"
    event = mapped(adt("A01", pv1_tail=tail, evn="EVN|A01|202603011230")).event
    assert event.encounter_at == datetime(2026, 3, 1, 12, 0, tzinfo=NEW_YORK)


def test_without_evn_the_message_time_is_the_encounter_time() -> None:
    event = mapped(adt("A08", evn=None)).event
    assert event.encounter_at == event.occurred_at


def test_a_time_without_offset_is_read_in_the_facility_zone() -> None:
    chicago = ZoneInfo("America/Chicago")
    event = mapped(adt(msh7="202607041015", evn=None), chicago).event
    assert event.occurred_at == datetime(2026, 7, 4, 15, 15, tzinfo=UTC)
    assert mapped(adt(msh7="202607041015", evn=None)).event.occurred_at == datetime(
        2026, 7, 4, 14, 15, tzinfo=UTC
    )


def test_hl7_times_keep_their_offsets() -> None:
    assert hl7_time("20260304101530.25+0530", NEW_YORK, "x").utcoffset() == timedelta(
        hours=5, minutes=30
    )
    assert hl7_time("202603041015-0030", NEW_YORK, "x").utcoffset() == -timedelta(minutes=30)


def test_without_visit_number_the_control_id_is_the_encounter() -> None:
    assert mapped(adt(control_id="MSG-9", pv1_tail="")).event.encounter_id == "MSG-9"


def test_a_phone_in_xtn_1_is_taken_whole() -> None:
    pid = "PID|1||MRN-1||Rivera^Ana||19840217|F|||||(214)555-0142"
    assert mapped(adt(pid=pid)).event.patient.phone == "(214)555-0142"


def test_optional_demographics_may_be_missing() -> None:
    patient = mapped(adt(pid="PID|1||MRN-1||Rivera^Ana||19840217")).event.patient
    assert patient.postal_code is None and patient.phone is None


@pytest.mark.parametrize("message_type", [("ORU", "R01"), ("ADT", "A02"), ("ADT", "A31")])
def test_unsupported_types_are_rejected(message_type: tuple[str, str]) -> None:
    kind, trigger = message_type
    error = refused(adt(trigger, message_type=kind))
    assert (error.code, error.rule) == (AckCode.REJECT, "unsupported-type")


@pytest.mark.parametrize(
    ("payload", "code", "rule"),
    [
        (adt(pid="PID|1||||Rivera^Ana||19840217"), AckCode.ERROR, "pid-3"),
        (adt(pid="PID|1||MRN-1||^Ana||19840217"), AckCode.ERROR, "pid-5.1"),
        (adt(pid="PID|1||MRN-1||Rivera||19840217"), AckCode.ERROR, "pid-5.2"),
        (adt(pid="PID|1||MRN-1||Rivera^Ana"), AckCode.ERROR, "birth-date"),
        (adt(pid="PID|1||MRN-1||Rivera^Ana||1984"), AckCode.ERROR, "birth-date"),
        (adt(pid="PID|1||MRN-1||Rivera^Ana||19840231"), AckCode.ERROR, "birth-date"),
        (adt(patient_class="X"), AckCode.ERROR, "pv1-2"),
        (adt(patient_class=""), AckCode.ERROR, "pv1-2"),
        (adt(msh7="2026-03-04", evn=None), AckCode.ERROR, "time-format"),
        (adt(msh7="20260304", evn=None), AckCode.ERROR, "time-precision"),
        (adt(msh7="202613041015", evn=None), AckCode.ERROR, "time-format"),
        (adt(msh7="202603041015+9999", evn=None), AckCode.ERROR, "time-format"),
        (adt(msh7="", evn=None), AckCode.REJECT, "msh-7"),
        (adt(pid="PID|1||MRN-1||Rivera^Ana||19840217|F|||^^^^75201\x01"), AckCode.ERROR, None),
        (adt(pid="PID|1||MRN\x021||Rivera^Ana||19840217"), AckCode.ERROR, "invalid-patient.id"),
    ],
)
def test_field_errors_name_the_field_never_the_value(
    payload: bytes, code: AckCode, rule: str | None
) -> None:
    error = refused(payload)
    assert error.code is code
    if rule is not None:
        assert error.rule == rule


def test_a_validation_failure_names_the_hl7_field() -> None:
    error = refused(adt(pid="PID|1||MRN-1||Rivera^Ana||19840217|F|||^^^^75201!"))
    assert error.code is AckCode.ERROR
    assert error.rule == "invalid-patient.postal_code"
    assert error.text.startswith("PID-11.5 postal code")
    assert "75201" not in error.text


def test_missing_segments_are_rejected() -> None:
    no_pv1 = b"MSH|^~\\&|EPIC|mercy-dallas|R|R|202603041015||ADT^A01|M1|P|2.5\rPID|1||MRN-1\r"
    assert refused(no_pv1).rule == "no-pv1"
    no_pid = b"MSH|^~\\&|EPIC|mercy-dallas|R|R|202603041015||ADT^A01|M1|P|2.5\rPV1|1|I\r"
    assert refused(no_pid).rule == "no-pid"


def test_more_reasons_than_the_contract_takes_are_counted() -> None:
    many = tuple(f"DG1|{n}||E{n:02d}.1^x^I10" for n in range(1, 26))
    result = mapped(adt(extra=many))
    assert len(result.event.reasons) == 20
    assert result.dropped_reasons == 5


def test_an_alternate_coding_is_used_when_the_first_is_unknown() -> None:
    extra = ("DG1|1||493.92^Asthma^I9^195967001^Asthma^SCT",)
    event = mapped(adt(extra=extra)).event
    assert [(r.system, r.code) for r in event.reasons] == [(SNOMED_SYSTEM, "195967001")]
