"""The demo's hospital: HL7 v2 ADT messages over MLLP for some of the clinics' patients.

A few seconds after an organization accepts a referral, the hospital sees some
of those patients: an emergency department visit (ADT A04, PV1-2 ``E``) or an
admission (A01, PV1-2 ``I``), then their discharge (A03). It sends each message
as a hospital's interface engine would, when it happens (the stay compressed
by ``--speed``), with python-hl7's MLLP client, to the
``refnet mllp`` listener, and keeps each HL7 ACK's code (MSA-1: ``AA``, ``AE``,
``AR``). The patient's demographics are the clinic's, sometimes as hospitals
really record them (a nickname, upper case, a compound family name in part, a
ZIP+4, no phone), so that the network must link them by the linkage key.

Its own randomness comes from ``random.Random(f"{seed}:hospital")``: the
clinics' and organizations' seeded behaviour stays as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

import hl7
from hl7.mllp import HL7StreamReader, open_hl7_connection

#: The demo's hospital (fictional), its facility id (MSH-4).
FACILITY_ID: Final = "trinity-general-hospital"
#: Patients the hospital sees in a run (``demo.toml``'s ``[hospital]`` may say otherwise).
VISITS: Final = 10
#: Share of the visits to the emergency department (the rest are admissions).
EMERGENCY: Final = 0.6
#: Seconds after a referral's acceptance before the hospital sees its patient.
DELAY: Final = (2.0, 5.0)
#: Seconds to wait for an ACK, and for the listener to take a connection.
ACK_TIMEOUT: Final = 10.0
CONNECT_TIMEOUT: Final = 30.0
#: Reasons for a visit: ICD-10-CM code and text (common reasons for ED visits and admissions).
REASONS: Final = (
    ("J45.901", "Asthma with acute exacerbation"),
    ("E11.65", "Type 2 diabetes with hyperglycemia"),
    ("I10", "Essential hypertension"),
    ("J18.9", "Pneumonia, unspecified organism"),
    ("R07.9", "Chest pain, unspecified"),
    ("S93.401A", "Sprain of ankle, initial encounter"),
)
#: Nicknames the hospital's registration desk may record for the clinics' given names.
NICKNAMES: Final = {"James": "Jim", "Daniel": "Dan", "Jose": "Pepe", "Marcus": "Marc"}

Trigger = Literal["A01", "A03", "A04"]

_TEMPLATE: Final = "\r".join(
    (
        "MSH|^~\\&|ADT|FACILITY|REFNET|REFNET|TIME||ADT^TRIGGER^ADT_A01|CONTROL|P|2.5.1",
        "EVN|TRIGGER|TIME",
        "PID|1||MRN^^^FACILITY^MR||FAMILY^GIVEN||BIRTH||||^^Dallas^TX^ZIP||PHONE",
        "PV1|1|CLASS|||||||||||||||||VISIT",
        "DG1|1||CODE^TEXT^I10|||A",
    )
)


@dataclass(frozen=True)
class Visit:
    """A patient's visit: what the hospital saw and how it recorded who they are."""

    patient_id: str  # the clinic's (kept by the demo only to count; never sent)
    mrn: str
    given_name: str
    family_name: str
    birth_date: str  # YYYYMMDD
    postal_code: str | None
    phone: str | None
    emergency: bool
    visit_number: str
    reason: tuple[str, str]
    variation: str


def hl7_time(at: datetime) -> str:
    """An HL7 DTM with seconds and the UTC offset (``20261206161500+0000``)."""
    return at.strftime("%Y%m%d%H%M%S%z")


def build_adt(
    trigger: Trigger, visit: Visit, *, at: datetime, control_id: str, facility: str = FACILITY_ID
) -> hl7.Message:
    """One ADT message of ``visit``, built with python-hl7 from a template."""
    message = hl7.parse(_TEMPLATE)
    fields: Mapping[str, str] = {
        "MSH.F4": facility,
        "MSH.F7": hl7_time(at),
        "MSH.F9.R1.C2": trigger,
        "MSH.F9.R1.C3": "ADT_A03" if trigger == "A03" else "ADT_A01",
        "MSH.F10": control_id,
        "EVN.F1": trigger,
        "EVN.F2": hl7_time(at),
        "PID.F3.R1.C1": visit.mrn,
        "PID.F3.R1.C4": facility,
        "PID.F5.R1.C1": visit.family_name,
        "PID.F5.R1.C2": visit.given_name,
        "PID.F7": visit.birth_date,
        "PID.F13": visit.phone or "",
        "PV1.F2": "E" if visit.emergency else "I",
        "PV1.F19": visit.visit_number,
        "DG1.F3.R1.C1": visit.reason[0],
        "DG1.F3.R1.C2": visit.reason[1],
    }
    for accessor, value in fields.items():
        message[accessor] = message.escape(value)
    if visit.postal_code:  # PID-11: street^other^city^state^zip
        message["PID.F11.R1.C5"] = message.escape(visit.postal_code)
    else:
        message["PID.F11"] = ""
    return message


def stay_of(visit: Visit) -> timedelta:
    """How long the patient stays (network time): hours in the ED, days when admitted."""
    return timedelta(hours=5) if visit.emergency else timedelta(days=3)


def arrival(visit: Visit, at: datetime) -> hl7.Message:
    """The visit's first message: an ED visit (A04) or an admission (A01), at ``at``."""
    first: Trigger = "A04" if visit.emergency else "A01"
    return build_adt(first, visit, at=at, control_id=f"{visit.visit_number}-1")


def discharge(visit: Visit, at: datetime) -> hl7.Message:
    """The visit's discharge (A03), at ``at`` (sent then: the network refuses a time ahead
    of its clock)."""
    return build_adt("A03", visit, at=at, control_id=f"{visit.visit_number}-2")


class Hospital:
    """Whom the hospital sees, and how it records them (seeded apart from the clinics)."""

    def __init__(self, seed: int, *, visits: int = VISITS, emergency: float = EMERGENCY) -> None:
        self.rng = random.Random(f"{seed}:hospital")
        self.visits = visits
        self.emergency = emergency
        self.seen: set[str] = set()

    def wants(self, patient_id: str) -> bool:
        return len(self.seen) < self.visits and patient_id not in self.seen

    def visit(self, patient: Mapping[str, object]) -> Visit:
        """The visit of a clinic's patient (``screening.submitted``'s patient, as JSON)."""
        rng = self.rng
        patient_id = str(patient["id"])
        self.seen.add(patient_id)
        given, family = str(patient["given_name"]), str(patient.get("family_name") or "")
        postal = patient.get("postal_code")
        phone = patient.get("phone")
        variation = rng.choice(
            ("as-is", "as-is", "as-is", "nickname", "upper-case", "zip+4", "no phone", "in part")
        )
        if variation == "nickname" and given in NICKNAMES:
            given = NICKNAMES[given]
        elif variation == "upper-case":
            given, family = given.upper(), family.upper()
        elif variation == "zip+4" and postal:
            postal = f"{postal}-{rng.randrange(1000, 10000)}"
        elif variation == "no phone":
            phone = None
        elif variation == "in part" and "-" in family:
            family = family.split("-")[0]
        else:
            variation = "as-is"
        born = str(patient["birth_date"]).replace("-", "")
        return Visit(
            patient_id=patient_id,
            mrn=f"MRN{rng.randrange(10**6, 10**7)}",
            given_name=given,
            family_name=family,
            birth_date=born,
            postal_code=str(postal) if postal else None,
            phone=str(phone) if phone else None,
            emergency=rng.random() < self.emergency,
            visit_number=f"V{rng.randrange(10**7, 10**8)}",
            reason=rng.choice(REASONS),
            variation=variation,
        )


async def send(
    host: str, port: int, messages: list[hl7.Message], *, connect_within: float = CONNECT_TIMEOUT
) -> list[str]:
    """Send ``messages`` on one MLLP connection; each one's ACK code (MSA-1).

    ``unreachable`` for each message when no connection could be made within
    ``connect_within`` s, ``no-ack`` when the listener closed or did not answer
    within :data:`ACK_TIMEOUT`.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + connect_within
    while True:
        try:
            reader, writer = await asyncio.wait_for(
                open_hl7_connection(host, port, encoding="utf-8"), timeout=ACK_TIMEOUT
            )
            break
        except (OSError, TimeoutError):
            if loop.time() >= deadline:
                return ["unreachable"] * len(messages)
            await asyncio.sleep(0.5)
    codes: list[str] = []
    try:
        for message in messages:
            writer.writemessage(message)
            await writer.drain()
            codes.append(await _ack_code(reader))
    except OSError:
        codes += ["no-ack"] * (len(messages) - len(codes))
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return codes


async def _ack_code(reader: HL7StreamReader) -> str:
    try:
        ack = await asyncio.wait_for(reader.readmessage(), timeout=ACK_TIMEOUT)
        return str(ack["MSA.F1"]) or "no-ack"
    except (TimeoutError, asyncio.IncompleteReadError, ValueError, KeyError, IndexError):
        return "no-ack"


__all__ = [
    "FACILITY_ID",
    "VISITS",
    "Hospital",
    "Visit",
    "arrival",
    "build_adt",
    "discharge",
    "send",
    "stay_of",
]
