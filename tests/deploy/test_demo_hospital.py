"""The demo's hospital: ADT messages built with python-hl7, sent over MLLP, and the
clinics' patients it sees (no broker)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, date, datetime

import hl7
import pytest
from hl7.mllp import HL7StreamReader, HL7StreamWriter, start_hl7_server

from deploy.demo.clinics import Clinics
from deploy.demo.config import DemoConfig
from deploy.demo.hospital import (
    FACILITY_ID,
    Hospital,
    Visit,
    arrival,
    build_adt,
    discharge,
    send,
    stay_of,
)
from deploy.demo.setup import free_port
from deploy.demo.tally import Tally
from schemas.events import ScreeningSubmitted
from streams.decisions.linkage import linkage_keys

TODAY = date(2026, 11, 24)
AT = datetime(2026, 12, 6, 16, 15, 30, tzinfo=UTC)
SECRET = b"demo-linkage-secret-of-32-bytes!"

VISIT = Visit(
    patient_id="pt-1",
    mrn="MRN1234567",
    given_name="Jim",
    family_name="Garcia-Lopez",
    birth_date="19840704",
    postal_code="75203-1234",
    phone="+12145550101",
    emergency=True,
    visit_number="V12345678",
    reason=("J45.901", "Asthma with acute exacerbation"),
    variation="nickname",
)


@pytest.fixture(scope="module")
def config() -> DemoConfig:
    return DemoConfig.load()


def test_an_ed_visit_is_an_a04_with_class_e_and_parses_back_with_python_hl7() -> None:
    sent = build_adt("A04", VISIT, at=AT, control_id="V12345678-1")
    message = hl7.parse(str(sent))
    assert str(message["MSH.F9.R1.C1"]) == "ADT" and str(message["MSH.F9.R1.C2"]) == "A04"
    assert str(message["MSH.F4"]) == FACILITY_ID
    assert str(message["MSH.F10"]) == "V12345678-1"
    assert str(message["MSH.F12"]) == "2.5.1"
    assert str(message["EVN.F1"]) == "A04"
    assert str(message["EVN.F2"]) == "20261206161530+0000"
    assert str(message["PID.F3.R1.C1"]) == "MRN1234567"
    assert str(message["PID.F3.R1.C4"]) == FACILITY_ID
    assert str(message["PID.F5.R1.C1"]) == "Garcia-Lopez"
    assert str(message["PID.F5.R1.C2"]) == "Jim"
    assert str(message["PID.F7"]) == "19840704"
    assert str(message["PID.F11.R1.C5"]) == "75203-1234"
    assert str(message["PID.F13"]) == "+12145550101"
    assert str(message["PV1.F2"]) == "E"
    assert str(message["PV1.F19"]) == "V12345678"
    assert str(message["DG1.F3.R1.C1"]) == "J45.901"
    assert str(message["DG1.F3.R1.C3"]) == "I10"


def test_an_admission_is_an_a01_with_class_i_then_an_a03_discharge_days_later() -> None:
    admitted = Visit(**{**VISIT.__dict__, "emergency": False})
    first = hl7.parse(str(arrival(admitted, AT)))
    left = hl7.parse(str(discharge(admitted, AT + stay_of(admitted))))
    assert str(first["MSH.F9.R1.C2"]) == "A01" and str(first["PV1.F2"]) == "I"
    assert str(left["MSH.F9.R1.C2"]) == "A03" and str(left["MSH.F9.R1.C3"]) == "ADT_A03"
    assert str(left["EVN.F2"]) == "20261209161530+0000"  # stamped when sent, 3 days on
    assert str(first["MSH.F10"]) != str(left["MSH.F10"])
    assert stay_of(VISIT).total_seconds() == 5 * 3600  # an ED visit lasts hours


def test_hl7_separators_in_a_value_are_escaped_not_sent_raw() -> None:
    odd = Visit(**{**VISIT.__dict__, "family_name": "Smith|Jones^X"})
    message = hl7.parse(str(build_adt("A01", odd, at=AT, control_id="c")))
    assert message.unescape(str(message["PID.F5.R1.C1"])) == "Smith|Jones^X"
    assert str(message["PID.F5.R1.C2"]) == "Jim"  # the given name is still where it belongs


def test_without_postal_code_or_phone_the_fields_stay_empty() -> None:
    bare = Visit(**{**VISIT.__dict__, "postal_code": None, "phone": None})
    message = hl7.parse(str(build_adt("A04", bare, at=AT, control_id="c")))
    assert str(message["PID.F11"]) == "" and str(message["PID.F13"]) == ""


async def test_each_message_gets_its_ack_code_over_mllp() -> None:
    answers = iter(["AA", "AE"])
    received: list[str] = []

    async def listener(reader: HL7StreamReader, writer: HL7StreamWriter) -> None:
        try:
            while not reader.at_eof():
                message = await reader.readmessage()
                received.append(str(message["MSH.F9.R1.C2"]))
                writer.writemessage(message.create_ack(next(answers)))
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()

    port = free_port()
    server = await start_hl7_server(listener, "127.0.0.1", port)
    try:
        codes = await send("127.0.0.1", port, [arrival(VISIT, AT), discharge(VISIT, AT)])
    finally:
        server.close()
        await server.wait_closed()
    assert codes == ["AA", "AE"]
    assert received == ["A04", "A03"]


async def test_no_listener_leaves_every_message_unreachable() -> None:
    messages = [arrival(VISIT, AT), discharge(VISIT, AT)]
    codes = await send("127.0.0.1", free_port(), messages, connect_within=0)
    assert codes == ["unreachable", "unreachable"]


def test_the_tally_counts_adt_acks_and_alerts_by_recipient() -> None:
    tally = Tally()
    tally.adt_answered(["AA", "AA"])
    tally.adt_answered(["AE", "no-ack"])
    tally.alerted("clinic")
    tally.alerted("org")
    tally.alerted("org")
    summary = tally.summary()
    assert summary["adt_sent"] == 4 and summary["adt_acknowledged"] == 2
    assert summary["alerts_to_clinics"] == 1 and summary["alerts_to_organizations"] == 2


# ---------------------------------------------------------------- the patients it sees
def _patients(config: DemoConfig, seed: int, count: int) -> list[ScreeningSubmitted]:
    clinics = Clinics(config, seed, token="t", today=TODAY)
    return [clinics.next(AT).event for _ in range(count)]


def test_clinic_patients_carry_family_names_birth_dates_and_encounter_consent(
    config: DemoConfig,
) -> None:
    events = _patients(config, 3, 200)
    assert all(e.patient.family_name and e.patient.birth_date for e in events)
    alerts = [e.consent.encounter_alerts.value for e in events if e.consent.granted]
    assert alerts.count("encounter") > alerts.count("none") > 0
    assert all(e.consent.encounter_alerts.value == "none" for e in events if not e.consent.granted)


def test_the_new_fields_leave_the_seeded_screenings_as_they_were(config: DemoConfig) -> None:
    """Family names and encounter consent come from a stream of their own: with another
    one, every other field of every screening is the same."""
    plain = Clinics(config, 2026, token="t", today=TODAY)
    other = Clinics(config, 2026, token="t", today=TODAY)
    other.extra = random.Random("something else")
    for _ in range(100):
        a, b = plain.next(AT).event, other.next(AT).event
        skip = {"event_id": True, "patient": {"family_name"}, "consent": {"encounter_alerts"}}
        assert a.model_dump(exclude=skip) == b.model_dump(exclude=skip)  # type: ignore[arg-type]


def test_the_hospital_records_the_patient_as_the_clinic_did_or_with_a_variation(
    config: DemoConfig,
) -> None:
    hospital = Hospital(7, visits=50)
    events = _patients(config, 5, 50)
    seen = {}
    for event in events:
        visit = hospital.visit(event.patient.model_dump(mode="json"))
        seen[visit.variation] = visit
        p = event.patient
        born = p.birth_date
        assert born is not None and visit.birth_date == born.strftime("%Y%m%d")
        clinic_keys = linkage_keys(
            secret=SECRET,
            given_name=p.given_name,
            family_name=p.family_name,
            birth_date=born,
            postal_code=p.postal_code,
            phone=p.phone,
        )
        hospital_keys = linkage_keys(
            secret=SECRET,
            given_name=visit.given_name,
            family_name=visit.family_name,
            birth_date=born,
            postal_code=visit.postal_code,
            phone=visit.phone,
        )
        assert set(clinic_keys) & set(hospital_keys), visit.variation  # the network links them
    assert {"as-is", "upper-case", "zip+4", "no phone"} <= set(seen)
    assert not hospital.wants(events[0].patient.id)  # seen once, and the visits are used up


def test_the_hospital_figures_come_from_demo_toml(config: DemoConfig) -> None:
    assert config.hospital == {"visits": 10, "emergency": 0.6}
    assert config.encounter_alerts == {"encounter": 0.8, "none": 0.2}
    patient = _patients(config, 1, 1)[0].patient.model_dump(mode="json")
    assert not Hospital(1, emergency=0.0).visit(patient).emergency
    assert Hospital(1, emergency=1.0).visit(patient).emergency
    assert not Hospital(1, visits=0).wants("pt-anyone")
