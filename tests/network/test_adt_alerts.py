"""Issue 20's "done when": a hospital sends ADT A01 over MLLP with python-hl7's own
client (not refnet's) to a real ``refnet mllp`` process; a real worker routes it.

The patient has a referral the pantry accepted: the hospital gets AA, and the
pantry's referrals topic and the clinic's updates topic each carry one
``encounter.alerted`` within 2 s of the ACK (broker timestamps). A patient whose
consent says ``none`` gets the clinic's alert and no organization alert.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import hl7
import pytest
from hl7.mllp import open_hl7_connection

from connectors.kafka.admin import apply_topics
from tests.network import builders as b
from tests.network.conftest import Network
from tests.network.test_encounters import (
    CLINIC,
    HOSPITAL,
    PANTRY,
    WITHIN,
    accepted_referral,
    clinic_patient,
    read_timed,
    show,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def a01(control_id: str, mrn: str, family: str, given: str, born: str, phone: str) -> str:
    """An ADT^A01 as an EHR's interface engine writes it: ED admission, asthma."""
    segments = [
        f"MSH|^~\\&|EPIC|{HOSPITAL}|REFNET|REFNET|20261127031209-0500||ADT^A01^ADT_A01|"
        f"{control_id}|P|2.5.1",
        "EVN|A01|20261127031200-0500||||20261126221000-0500",
        f"PID|1||{mrn}^^^LINCOLN^MR||{family}^{given}||{born}|F|||"
        f"610 E 138th St^^Bronx^NY^10454||^PRN^PH^^1^{phone[:3]}^{phone[3:]}",
        "PV1|1|E|||||||||||||||||V-" + control_id,
        "DG1|1||J45.901^Unspecified asthma with (acute) exacerbation^I10||20261126|A",
    ]
    return "\r".join(segments)


@pytest.fixture
async def mllp_port(network: Network) -> AsyncIterator[int]:
    """``refnet mllp --port 0`` on the network's broker and prefix; its port."""
    process = subprocess.Popen(
        [sys.executable, "-m", "deploy.cli", "mllp", "--port", "0"],
        cwd=ROOT,
        env=network.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 60)
        found = re.fullmatch(r"refnet mllp: listening on mllp://127\.0\.0\.1:(\d+)\n", line)
        assert found, line
        yield int(found.group(1))
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def send(port: int, message: str) -> tuple[str, int]:
    """Send one ADT with python-hl7's MLLP client; the ACK code and when it came (ms)."""
    reader, writer = await open_hl7_connection("127.0.0.1", port)
    try:
        writer.writemessage(hl7.parse(message))
        await writer.drain()
        ack = await asyncio.wait_for(reader.readmessage(), 30)
        acked_ms = int(time.time() * 1000)
    finally:
        writer.close()
    return str(ack["MSA.F1"]), acked_ms


async def test_an_a01_over_mllp_reaches_the_pantry_and_the_clinic_within_2s(
    network: Network, mllp_port: int
) -> None:
    t = network.topics
    await network.provision([CLINIC], [PANTRY])
    await asyncio.to_thread(apply_topics, network.bootstrap, t.facility_catalog(HOSPITAL))
    await network.publish(t.directory, "svc-p", b.service("svc-p", PANTRY, available=50))
    network.start_worker()
    ana = clinic_patient("pt-ana", "Ana", "Rivera", "1984-03-02", "+17185550100")
    luis = clinic_patient("pt-luis", "Luis", "Ortiz", "1979-11-15", "+17185550111")
    ana_referral = await accepted_referral(network, "pt-ana", ana, "encounter")
    await accepted_referral(network, "pt-luis", luis, "none")

    port = mllp_port
    code, acked = await send(port, a01("ADT-1", "MRN-1", "RIVERA", "ANA", "19840302", "7185550100"))
    assert code == "AA"
    [(to_clinic, clinic_ts)] = await read_timed(
        network, t.clinic_updates(CLINIC), "encounter.alerted", 1
    )
    [(to_org, org_ts)] = await read_timed(network, t.org_referrals(PANTRY), "encounter.alerted", 1)
    show(
        f"\nADT A01 acked -> clinic alert {(clinic_ts - acked) / 1000:.3f} s, "
        f"-> pantry alert {(org_ts - acked) / 1000:.3f} s"
    )
    assert (clinic_ts - acked) / 1000 <= WITHIN
    assert (org_ts - acked) / 1000 <= WITHIN
    assert (to_clinic["patient_id"], to_clinic["event"]) == ("pt-ana", "ed-visit")
    assert (to_org["referral_id"], to_org["event"], to_org["reasons"]) == (
        ana_referral,
        "ed-visit",
        [],
    )

    # consent "none": the clinic hears of Luis's visit, the pantry does not
    code, _ = await send(port, a01("ADT-2", "MRN-2", "Ortiz", "Luis", "19791115", "7185550111"))
    assert code == "AA"
    alerts = await read_timed(network, t.clinic_updates(CLINIC), "encounter.alerted", 2)
    assert alerts[1][0]["patient_id"] == "pt-luis"
    await read_timed(network, t.referral_events, "encounter.routed", 4)
    org_alerts = [
        v
        for v in await network.read(t.org_referrals(PANTRY), timeout=2)
        if v["event_type"] == "encounter.alerted"
    ]
    assert [a["referral_id"] for a in org_alerts] == [ana_referral]
    network.stop_worker()
