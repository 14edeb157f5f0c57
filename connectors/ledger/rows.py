"""Rows of the ledger's tables, made storable: what PostgreSQL refuses never stops it.

A NUL, which neither ``text`` nor ``jsonb`` accepts, and a lone surrogate
become U+FFFD; timestamps are converted to UTC in Python, where an overflow is
caught. Rows carry ids, codes and times: a dead letter's key and excerpt and a
screening's answers are never stored.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final
from uuid import UUID

import asyncpg

from connectors.ledger.state import step_of
from schemas.events import DeadLetter, ReferralStateChanged, ScreeningScored

log = logging.getLogger("connectors.ledger.sink")

#: Errors that belong to one row's values: the row is skipped, the others are written.
ROW_ERRORS: Final[tuple[type[BaseException], ...]] = (
    asyncpg.DataError,  # invalid input, untranslatable character, out of range ...
    asyncpg.IntegrityConstraintViolationError,  # a NOT NULL column left empty
    asyncpg.ProgramLimitExceededError,  # a value too large to index
    ValueError,
    TypeError,
    KeyError,
    OverflowError,
    RecursionError,
)
#: What replaces characters PostgreSQL cannot store.
REPLACEMENT: Final = "\ufffd"


def utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.utcoffset() is not None:
        # asyncpg converts to UTC itself, and overflows on 9999-12-31T23:59-01:00
        return value.astimezone(UTC)
    return value


def clean_event(row: Mapping[str, Any]) -> dict[str, Any]:
    """A history row made storable (may raise one of ROW_ERRORS)."""
    payload = _storable_json(row["payload"])
    if not isinstance(payload, dict):
        raise TypeError("the payload is no JSON object")
    return {
        "event_id": row["event_id"],
        "referral_id": _storable(row["referral_id"]),
        "event_type": _storable(row["event_type"]),
        "occurred_at": utc(row["occurred_at"]),
        "clinic_id": _storable(row.get("clinic_id")),
        "org_id": _storable(row.get("org_id")),
        "status": _storable(row.get("status")),
        "business_status": _storable(row.get("business_status")),
        "payload": payload,
    }


def event_values(clean: Mapping[str, Any]) -> tuple[Any, ...]:
    payload = clean["payload"]
    step = step_of(
        clean["status"], clean["business_status"], payload.get("actor"), payload.get("reason")
    )
    return (
        clean["event_id"],
        clean["referral_id"],
        clean["event_type"],
        clean["occurred_at"],
        clean["clinic_id"],
        clean["org_id"],
        clean["status"],
        clean["business_status"],
        json.dumps(payload, allow_nan=False),
        step,
    )


def screening_values(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """The ``screenings`` columns of a screening row (may raise one of ROW_ERRORS)."""
    return (
        storable_text(row["clinic_id"]),
        storable_text(row["screening_id"]),
        row["event_id"],
        storable_text(row["patient_id"]),
        storable_text(row["instrument"]),
        utc(row["screened_at"]),
        int(row["problems"]),
    )


def dead_letter_values(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """The ``dead_letters`` columns of a dead-letter row (may raise one of ROW_ERRORS)."""
    return (
        row["event_id"],
        utc(row["occurred_at"]),
        storable_text(row["kind"]),
        storable_text(row["message"]),
        storable_text(row["source_topic"]),
        row["source_partition"],
        row["source_offset"],
        row.get("payload_bytes"),
        row.get("payload_sha256"),
    )


def disclosure_values(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """The ``disclosures`` columns of a disclosure (see ``state.disclosure_of``)."""
    return (
        row["event_id"],
        row["disclosed_at"],
        row["recipient_org_id"],
        row["service_id"],
        row["clinic_id"],
        row["patient_id"],
        row["referral_id"],
        row["category"],
        json.dumps(row["fields_disclosed"]),
        json.dumps(row["consent"]) if row["consent"] is not None else None,
    )


def storable_text(text: str) -> str:
    """``text`` without what PostgreSQL refuses: NUL and lone surrogates become U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = "".join(REPLACEMENT if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    return text


def _storable(value: object) -> object:
    return storable_text(value) if isinstance(value, str) else value


def _storable_json(value: object) -> object:
    """A JSON value with every string (keys included) made storable; NaN stays an error."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, Mapping):
        return {
            storable_text(k) if isinstance(k, str) else k: _storable_json(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_storable_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("a non-finite number is not JSON")
    return value


def log_skipped(what: str, key: object, exc: BaseException) -> None:
    # The event id only if it is one: a malformed id could be any value at all.
    shown = str(key) if isinstance(key, UUID) else "an event with an invalid id"
    log.error("ledger: skipped the %s of %s (%s)", what, shown, type(exc).__name__)


def _code(value: object) -> object:
    return value.value if isinstance(value, Enum) else value


def row_of(event: ReferralStateChanged) -> dict[str, Any]:
    """The ledger row of one referral.state-changed event."""
    return {
        "event_id": event.event_id,
        "referral_id": event.referral_id,
        "event_type": event.event_type,
        "occurred_at": event.occurred_at,
        "clinic_id": event.clinic_id,
        "org_id": event.org_id,
        "status": _code(event.to_status),
        "business_status": _code(event.business_status),
        "payload": event.model_dump(mode="json"),
    }


def screening_row(event: ScreeningScored) -> dict[str, Any]:
    """The ledger row of a screening.scored event: coded needs, never answers or text."""
    return {
        "event_id": event.event_id,
        "clinic_id": event.clinic_id,
        "screening_id": event.screening_id,
        "patient_id": event.patient_id,
        "instrument": _code(event.instrument),
        "screened_at": event.occurred_at,
        "problems": len(event.problems),
        "needs": [{"category": _code(n.category), "rule": n.rule} for n in event.needs],
        "consented": {_code(c) for c in event.consented_categories},
    }


def dead_letter_row(event: DeadLetter) -> dict[str, Any]:
    """The ledger row of a dead letter: its kind, reason and place, never key or excerpt."""
    return {
        "event_id": event.event_id,
        "occurred_at": event.occurred_at,
        "kind": _code(event.error.kind),
        "message": event.error.message,
        "source_topic": event.source.topic,
        "source_partition": event.source.partition,
        "source_offset": event.source.offset,
        "payload_bytes": event.payload_bytes,
        "payload_sha256": event.payload_sha256,
    }
