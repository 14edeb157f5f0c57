"""The privacy-preserving linkage key: who an encounter's patient is, without
keeping who they are.

A hospital's MRN is not a clinic's patient id. The network links the two by
keys computed at the edge from normalised demographics, each an HMAC-SHA256
keyed by a network secret that parties never see. A clinic's patient and a
facility's patient match when any of their keys is equal. Only keys are kept;
raw demographics never reach a table, a topic of the network's own, or a log.

(First version: the normalisation and the measured match rates are refined in
``benchmarks/linkage.py`` and the README's "Encounter alerts".)
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from datetime import date
from typing import Final

#: Bytes of network secret a key needs at least.
MIN_SECRET_BYTES: Final = 16

_NOT_LETTER = re.compile(r"[^a-z]")
_NOT_DIGIT = re.compile(r"\D")


def _name(text: str | None) -> str:
    if not text:
        return ""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _NOT_LETTER.sub("", folded.lower())


def _postal(code: str | None) -> str:
    return _NOT_DIGIT.sub("", code or "")[:5]


def _phone(phone: str | None) -> str:
    digits = _NOT_DIGIT.sub("", phone or "")
    return digits[-10:] if len(digits) >= 10 else ""


def _key(secret: bytes, *parts: str) -> str:
    message = "\x1f".join(parts).encode("ascii")
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]


def linkage_keys(
    *,
    secret: bytes,
    given_name: str | None,
    family_name: str | None,
    birth_date: date | None,
    postal_code: str | None = None,
    phone: str | None = None,
) -> tuple[str, ...]:
    """The patient's linkage keys (empty when too little is known to link safely).

    Every key needs the family name, the given name and the birth date; one adds
    the postal code, one the phone, so that a patient who moved or changed
    numbers still matches on the other.
    """
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the linkage secret must be at least {MIN_SECRET_BYTES} bytes")
    given, family = _name(given_name), _name(family_name)
    if not given or not family or birth_date is None:
        return ()
    born = birth_date.isoformat()
    keys: list[str] = []
    if postal := _postal(postal_code):
        keys.append(_key(secret, "v1-zip", family, given, born, postal))
    if tel := _phone(phone):
        keys.append(_key(secret, "v1-tel", family, given, born, tel))
    return tuple(keys)


__all__ = ["MIN_SECRET_BYTES", "linkage_keys"]
