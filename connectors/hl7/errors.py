"""Why an HL7 v2 message was not taken: the ACK code and the rule it broke.

The text names the rule (and the HL7 field), never a value of the message:
values may be patient data, and the text travels in MSA-3, logs and metrics.
"""

from __future__ import annotations

from enum import StrEnum

from schemas.errors import RefnetError


class AckCode(StrEnum):
    """HL7 table 0008, original mode."""

    #: accepted: the network stored the message
    ACCEPT = "AA"
    #: application error: the message was understood but not stored; fix a field or retry
    ERROR = "AE"
    #: application reject: the message is not one the network takes; do not resend it
    REJECT = "AR"


class Hl7Refused(RefnetError, ValueError):
    """A message the network does not take, with the ACK it gets.

    ``rule`` is a short stable key (a metric label, a log field); ``text`` the
    sentence sent in MSA-3. Neither carries a value of the message.
    """

    def __init__(self, code: AckCode, rule: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.rule = rule
        self.text = text


def rejected(rule: str, text: str) -> Hl7Refused:
    """An AR: the message is not one the network takes (resending it will not help)."""
    return Hl7Refused(AckCode.REJECT, rule, text)


def error(rule: str, text: str) -> Hl7Refused:
    """An AE: a field fails a rule, or the network cannot store the message now."""
    return Hl7Refused(AckCode.ERROR, rule, text)


__all__ = ["AckCode", "Hl7Refused", "error", "rejected"]
