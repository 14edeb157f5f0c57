"""Encounter alerts in the ledger: the ``encounter_routes`` table and its figures.

Every ``encounter.routed`` on the event log becomes one row (no patient data: the
facility, the encounter's kind, class and time, the outcome and who was alerted).
``refnet report`` reads :func:`encounter_report`: the alerts sent by recipient kind
and by encounter event, the time from the encounter to the alert (p50/p95), and
what was dropped for lack of consent or of a match.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from connectors.ledger.rows import storable_text, utc
from schemas.events import EncounterRouted

#: The table (migration 4 of :mod:`connectors.ledger.schema`).
SCHEMA: Final = """
    CREATE TABLE encounter_routes (
        event_id           uuid PRIMARY KEY,
        encounter_event_id uuid NOT NULL,
        facility_id        text NOT NULL,
        event              text NOT NULL,
        encounter_class    text NOT NULL,
        encounter_at       timestamptz NOT NULL,
        occurred_at        timestamptz NOT NULL,
        recorded_at        timestamptz NOT NULL DEFAULT now(),
        outcome            text NOT NULL,
        recipient_kind     text,
        recipient_id       text,
        referral_id        text
    );
    CREATE INDEX encounter_routes_time ON encounter_routes (occurred_at);
    CREATE INDEX encounter_routes_encounter ON encounter_routes (encounter_event_id);
"""

INSERT: Final = """
    INSERT INTO encounter_routes (event_id, encounter_event_id, facility_id, event,
        encounter_class, encounter_at, occurred_at, outcome, recipient_kind, recipient_id,
        referral_id)
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
        $6::timestamptz[], $7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::text[])
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
"""


def encounter_row(event: EncounterRouted) -> dict[str, Any]:
    """A ledger row of an ``encounter.routed``."""
    return {
        "event_id": event.event_id,
        "encounter_event_id": event.encounter_event_id,
        "facility_id": event.facility_id,
        "event": event.event.value,
        "encounter_class": event.encounter_class.value,
        "encounter_at": event.encounter_at,
        "occurred_at": event.occurred_at,
        "outcome": event.outcome,
        "recipient_kind": event.recipient_kind,
        "recipient_id": event.recipient_id,
        "referral_id": event.referral_id,
    }


def encounter_values(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """The ``encounter_routes`` columns of a row (may raise one of ROW_ERRORS)."""

    def text(value: str | None) -> str | None:
        return storable_text(value) if value is not None else None

    return (
        row["event_id"],
        row["encounter_event_id"],
        storable_text(row["facility_id"]),
        storable_text(row["event"]),
        storable_text(row["encounter_class"]),
        utc(row["encounter_at"]),
        utc(row["occurred_at"]),
        storable_text(row["outcome"]),
        text(row["recipient_kind"]),
        text(row["recipient_id"]),
        text(row["referral_id"]),
    )


_ALERTS: Final = """
    SELECT recipient_kind AS kind, event, count(*) AS n
    FROM encounter_routes
    WHERE outcome = 'alerted' AND occurred_at >= $1 AND occurred_at < $2
    GROUP BY 1, 2 ORDER BY 1, 2
"""
_LATENCY: Final = """
    SELECT recipient_kind AS kind,
           percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY
               greatest(0, extract(epoch FROM occurred_at - encounter_at))::float8) AS p
    FROM encounter_routes
    WHERE outcome = 'alerted' AND occurred_at >= $1 AND occurred_at < $2
    GROUP BY ROLLUP (recipient_kind)
"""
_DROPPED: Final = """
    SELECT count(*) FILTER (WHERE outcome = 'no-consent') AS no_consent,
           count(DISTINCT encounter_event_id) FILTER (WHERE outcome = 'no-match') AS no_match,
           count(DISTINCT encounter_event_id) AS encounters
    FROM encounter_routes
    WHERE occurred_at >= $1 AND occurred_at < $2
"""


async def encounter_report(conn: Any, since: datetime, until: datetime) -> dict[str, Any]:
    """The encounter figures of the routes recorded in ``[since, until)``.

    ``alerts``: alerts sent, by recipient kind (``clinic``, ``organization``) and
    by encounter event; ``time_to_alert_seconds``: the encounter's time to the
    alert's, p50 and p95, for all alerts and by kind; ``no_consent``: organization
    alerts the patient's consent kept back; ``no_match``: encounters of a patient
    the network does not follow; ``encounters``: encounters routed.
    """
    alerts: dict[str, Any] = {"clinic": 0, "organization": 0, "by_event": {}}
    for row in await conn.fetch(_ALERTS, since, until):
        kind = row["kind"] or "(none)"
        alerts[kind] = alerts.get(kind, 0) + int(row["n"])
        alerts["by_event"].setdefault(row["event"], {})[kind] = int(row["n"])
    latency: dict[str, Any] = {}
    for row in await conn.fetch(_LATENCY, since, until):
        p50, p95 = row["p"] or (None, None)
        latency[row["kind"] or "all"] = {"p50": p50, "p95": p95}
    latency.setdefault("all", {"p50": None, "p95": None})
    dropped = await conn.fetchrow(_DROPPED, since, until)
    return {
        "encounters": int(dropped["encounters"]),
        "alerts": alerts,
        "time_to_alert_seconds": latency,
        "no_consent": int(dropped["no_consent"]),
        "no_match": int(dropped["no_match"]),
    }


__all__ = ["INSERT", "SCHEMA", "encounter_report", "encounter_row", "encounter_values"]
