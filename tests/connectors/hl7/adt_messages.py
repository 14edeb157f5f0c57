"""ADT messages as hospitals send them, for the HL7 and MLLP tests."""

from __future__ import annotations

from uuid import uuid4


def adt(
    trigger: str = "A01",
    *,
    facility: str = "mercy-dallas",
    control_id: str | None = None,
    patient_class: str = "I",
    message_type: str = "ADT",
    msh7: str = "202603041015-0600",
    evn: str | None = "EVN|{trigger}|202603041012-0600||||202603041005-0600",
    pid: str = (
        "PID|1||MRN-0042^^^MERCY^MR~555-44-3333^^^SSA^SS||Rivera^Ana^M||19840217|F|||"
        "12 Elm St^^Dallas^TX^75201||^PRN^PH^^1^214^5550142"
    ),
    pv1_tail: str = "|||||||||||||||||V-9001",
    extra: tuple[str, ...] = (
        "PV2|||J45.41^Moderate persistent asthma with exacerbation^I10",
        "DG1|1||J45.41^Moderate persistent asthma with exacerbation^I10||20260304|A",
        "DG1|2||195967001^Asthma^SCT||20260304|W",
        "DG1|3||493.92^Asthma^I9||20260304|W",
    ),
) -> bytes:
    """An ADT message (the payload of an MLLP frame), CR between segments."""
    segments = [
        f"MSH|^~\\&|EPIC|{facility}|REFNET|REFNET|{msh7}||{message_type}^{trigger}^ADT_A01|"
        f"{control_id or uuid4().hex[:20]}|P|2.5.1"
    ]
    if evn is not None:
        segments.append(evn.format(trigger=trigger))
    segments.append(pid)
    segments.append(f"PV1|1|{patient_class}{pv1_tail}")
    segments.extend(extra)
    return ("\r".join(segments) + "\r").encode("utf-8")
