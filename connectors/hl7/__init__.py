"""HL7 v2: ADT messages to ``encounter.notified``, and their ACKs (pure, no I/O).

Parsing is python-hl7's (``hl7.parse``); this package decides what a message
means and what it is answered. The MLLP listener (:mod:`connectors.mllp`) reads
the frames, publishes the events and writes the ACKs.
"""

from connectors.hl7.adt import DEFAULT_TIME_ZONE, Mapped, event_id, to_encounter
from connectors.hl7.errors import AckCode, Hl7Refused
from connectors.hl7.messages import Header, ack, control_id_of, header, parse

__all__ = [
    "DEFAULT_TIME_ZONE",
    "AckCode",
    "Header",
    "Hl7Refused",
    "Mapped",
    "ack",
    "control_id_of",
    "event_id",
    "header",
    "parse",
    "to_encounter",
]
