"""Parsing frames and building ACKs with python-hl7 (no broker)."""

from __future__ import annotations

import hl7
import pytest

from connectors.hl7 import AckCode, Hl7Refused, ack, control_id_of, header, parse
from connectors.hl7.messages import MAX_TEXT
from tests.connectors.hl7.adt_messages import adt


def reply(raw: bytes) -> hl7.Message:
    return hl7.parse(raw.decode("utf-8"))


def test_an_accept_echoes_the_control_id() -> None:
    message = parse(adt("A01", control_id="CTRL-1"))
    answer = reply(ack(message, AckCode.ACCEPT))
    assert str(answer.segment("MSH")(9)) == "ACK^A01^ACK"
    assert answer["MSA.F1"] == "AA"
    assert answer["MSA.F2"] == "CTRL-1"
    assert answer["MSH.F5"] == "EPIC"  # the receiver is the sender
    assert answer["MSH.F6"] == "mercy-dallas"
    assert answer["MSH.F10"] != "CTRL-1"  # the ACK has a control id of its own


@pytest.mark.parametrize("code", [AckCode.ERROR, AckCode.REJECT])
def test_an_error_carries_its_rule_escaped_and_short(code: AckCode) -> None:
    message = parse(adt(control_id="CTRL-2"))
    text = "PID-5.1 family name | is ^ missing " + "x" * 100
    answer = reply(ack(message, code, text))
    assert answer["MSA.F1"] == str(code)
    assert answer["MSA.F2"] == "CTRL-2"
    assert answer["MSA.F3"] == text[:MAX_TEXT]


def test_an_ack_without_a_readable_message_still_echoes_what_it_can() -> None:
    answer = reply(ack(None, AckCode.REJECT, "not HL7", control_id="C-9"))
    assert (answer["MSA.F1"], answer["MSA.F2"], answer["MSA.F3"]) == ("AR", "C-9", "not HL7")
    assert reply(ack(None, AckCode.REJECT))["MSA.F2"] == ""


def test_a_flat_header_is_answered_from_a_header_of_our_own() -> None:
    message = parse(b"MSH|^~\\&|LAB|mercy-dallas|||20260101||ORU|C-3")
    answer = reply(ack(message, AckCode.REJECT, "unsupported"))
    assert (answer["MSA.F1"], answer["MSA.F2"]) == ("AR", "C-3")


@pytest.mark.parametrize(
    ("frame", "rule"),
    [
        (b"hello world", "not-hl7"),
        (b"", "not-hl7"),
        (b"PID|1||MRN-1\r", "not-hl7"),
        (
            b"MSH|^~\\&|a|mercy-dallas|||2026||ADT^A01|C1|P|2.5\rMSH|^~\\&|a|b|||2026||ADT^A01|C2\r",
            "several-messages",
        ),
        (b"FHS|^~\\&|a|b\rBHS|^~\\&\rMSH|^~\\&|a|b|||2026||ADT^A01|C1\rBTS|1\rFTS|1\r", "not-hl7"),
    ],
)
def test_structural_problems_are_rejected(frame: bytes, rule: str) -> None:
    with pytest.raises(Hl7Refused) as caught:
        parse(frame)
    assert (caught.value.code, caught.value.rule) == (AckCode.REJECT, rule)


@pytest.mark.parametrize(
    ("frame", "rule"),
    [
        (b"MSH|^~\\&|a|mercy-dallas|||2026||ADT^A01||P|2.5\r", "msh-10"),
        (b"MSH|^~\\&|a||||2026||ADT^A01|C1|P|2.5\r", "msh-4"),
        (b"MSH|^~\\&|a|mercy-dallas|||2026|||C1|P|2.5\r", "msh-9"),
    ],
)
def test_a_header_without_what_routing_needs_is_rejected(frame: bytes, rule: str) -> None:
    with pytest.raises(Hl7Refused) as caught:
        header(parse(frame))
    assert (caught.value.code, caught.value.rule) == (AckCode.REJECT, rule)


def test_latin_1_text_is_read() -> None:
    frame = adt(pid="PID|1||MRN-1||Peña^José||19840217").decode().encode("latin-1")
    assert parse(frame)["PID.F5.R1.C1"] == "Peña"


def test_the_control_id_of_an_oversized_frame_is_read_from_its_head() -> None:
    head = b"\x0bMSH|^~\\&|EPIC|mercy-dallas|R|R|2026||ADT^A01|BIG-1|P|2.5\rPID|1||" + b"x" * 100
    assert control_id_of(head) == "BIG-1"
    assert control_id_of(b"\x0bMSH|^~\\&|EPIC|mercy-dallas|R|R|2026||ADT^A01|BIG-1") is None
    assert control_id_of(b"\x0bGARBAGE\r") is None


def test_a_message_too_intricate_to_parse_quickly_is_rejected_before_parsing() -> None:
    # python-hl7 would take tens of seconds on a 1 MiB message of delimiters
    crafted = (
        b"MSH|^~\\&|a|mercy-dallas|R|R|202601011200||ADT^A01|C1|P|2.5\rPID|" + b"~" * 1_000_000
    )
    with pytest.raises(Hl7Refused) as caught:
        parse(crafted)
    assert (caught.value.code, caught.value.rule) == (AckCode.REJECT, "too-complex")
    # a message with many delimiters, under the bound, is parsed
    many_dg1 = "\r".join(f"DG1|{n}||E11.{n % 10}^Diabetes^I10" for n in range(1, 500))
    assert parse(adt(extra=(many_dg1,)))["DG1"]
