"""Parsing an HL7 v2 frame (python-hl7) and answering it with an ACK.

A frame's bytes become an :class:`hl7.Message` here, or an AR saying which
structural rule failed. The ACK is python-hl7's ``create_ack``: MSA-1 the code,
MSA-2 the message's control id (MSH-10), MSA-3 the rule's text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import hl7

from connectors.hl7.errors import AckCode, rejected

#: How the network names itself in an ACK's MSH-3 and MSH-4.
RECEIVER: Final = "REFNET"
#: MSA-3 is at most 80 characters in HL7 v2.5 (ST).
MAX_TEXT: Final = 80
#: At most this many delimiters (segment, field, component, repetition, subcomponent)
#: in one message: python-hl7's parse time grows faster than the message (10,000 take
#: about 0.1 s; a crafted 1 MiB message would take tens of seconds). A real ADT has a
#: few hundred.
MAX_DELIMITERS: Final = 10_000
#: The header of an ACK to a frame whose own header could not be read.
_FALLBACK_HEADER: Final = "MSH|^~\\&|||REFNET|REFNET|||ACK^^ACK|-|P|2.5"


@dataclass(frozen=True, slots=True)
class Header:
    """What an ACK and the routing need from MSH (no patient data)."""

    message_type: str
    trigger: str
    control_id: str
    sending_facility: str


def decode(frame: bytes) -> str:
    """The frame's text: UTF-8 (ASCII included), else ISO 8859-1, which every byte is."""
    try:
        return frame.decode("utf-8")
    except UnicodeDecodeError:
        return frame.decode("latin-1")


def parse(frame: bytes) -> hl7.Message:
    """One HL7 v2 message from an MLLP frame's payload, or an AR.

    Refused: a payload that is not an HL7 message beginning with MSH, one with more
    than MAX_DELIMITERS delimiters, a batch or file (FHS/BHS), more than one message
    in one frame.
    """
    text = decode(frame).strip()
    if not text.startswith("MSH") or len(text) < 8:
        raise rejected("not-hl7", "not an HL7 v2 message: the frame must begin with MSH")
    delimiters = {"\r", *text[3:8]}  # MSH-1 and MSH-2 name them
    if sum(text.count(d) for d in delimiters) > MAX_DELIMITERS:
        raise rejected("too-complex", f"more than {MAX_DELIMITERS} delimiters in one message")
    try:
        message = hl7.parse(text)
    except (ValueError, IndexError, KeyError) as exc:
        raise rejected("unparsable", "the message cannot be parsed as HL7 v2") from exc
    if not isinstance(message, hl7.Message):
        raise rejected("batch", "batches and files (FHS, BHS) are not taken: one message a frame")
    if len(message.segments("MSH")) != 1:
        raise rejected("several-messages", "one message a frame: a second MSH was found")
    return message


def field(message: hl7.Message, segment: str, number: int, component: int = 1, sub: int = 1) -> str:
    """The value at ``segment``-``number``.``component``.``sub`` (first repetition) or ``""``.

    python-hl7 follows the first child when the tree is deeper than asked, and
    answers ``""`` when it is shallower; an address it cannot follow is ``""`` too.
    """
    try:
        value = message.extract_field(segment, 1, number, 1, component, sub)
    except (KeyError, IndexError):
        return ""
    return str(value).strip()


def header(message: hl7.Message) -> Header:
    """MSH-9 (type^trigger), MSH-10 and MSH-4's first component, or an AR."""
    control_id = field(message, "MSH", 10)
    if not control_id:
        raise rejected("msh-10", "MSH-10 message control id is missing")
    facility = field(message, "MSH", 4)
    if not facility:
        raise rejected("msh-4", "MSH-4 sending facility is missing")
    message_type = field(message, "MSH", 9, 1)
    trigger = field(message, "MSH", 9, 2)
    if not message_type:
        raise rejected("msh-9", "MSH-9 message type is missing")
    return Header(message_type, trigger, control_id, facility)


def ack(
    message: hl7.Message | None, code: AckCode, text: str = "", control_id: str | None = None
) -> bytes:
    """The ACK's bytes (without MLLP framing) answering ``message``.

    ``message`` is None when the frame could not be parsed: the ACK then has a
    header of its own and echoes ``control_id`` (when one could be read) in MSA-2.
    """
    reply = None
    if message is not None:
        try:
            reply = message.create_ack(ack_code=str(code), application=RECEIVER, facility=RECEIVER)
        except (TypeError, IndexError, KeyError, AttributeError):
            # a header too short or too flat for python-hl7 to copy (MSH-9 without
            # a trigger, no MSH-12): answer from a header of our own
            control_id = field(message, "MSH", 10)
    if reply is None:
        source = hl7.parse(_FALLBACK_HEADER)
        source.assign_field(control_id or "", "MSH", 1, 10)
        reply = source.create_ack(ack_code=str(code), application=RECEIVER, facility=RECEIVER)
    if text:
        reply.assign_field(reply.escape(text[:MAX_TEXT]), "MSA", 1, 3)
    return str(reply).encode("utf-8")


def control_id_of(head: bytes) -> str | None:
    """MSH-10 read from the first segment of a frame's beginning (an oversized
    frame's ACK echoes it), or None when that segment is not a whole MSH."""
    first, sep, _ = decode(head).lstrip("\x0b").partition("\r")
    if not sep or not first.startswith("MSH"):
        return None
    try:
        value = field(hl7.parse(first + "\r"), "MSH", 10)
    except (ValueError, IndexError, KeyError):
        return None
    return value or None


__all__ = [
    "MAX_DELIMITERS",
    "MAX_TEXT",
    "RECEIVER",
    "Header",
    "ack",
    "control_id_of",
    "decode",
    "field",
    "header",
    "parse",
]
