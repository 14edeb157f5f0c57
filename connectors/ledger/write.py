"""One batch into the ledger: every table in one transaction, bad rows skipped alone.

See :mod:`connectors.ledger.sink` for what is read and :mod:`connectors.ledger.schema`
for the tables. Each table's rows go in one statement (``unnest`` of arrays)
inside a savepoint; when a row's values fail it (:data:`ROW_ERRORS`), the rows
go again one at a time, each in its own savepoint, and only the failing ones
are skipped, logged by event id and exception type (values may be patient data).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from connectors.ledger.encounters import INSERT as _ENCOUNTERS
from connectors.ledger.encounters import encounter_values
from connectors.ledger.rows import (
    ROW_ERRORS,
    clean_event,
    dead_letter_values,
    disclosure_values,
    event_values,
    log_skipped,
    screening_values,
    storable_text,
)
from connectors.ledger.state import (
    REFERRAL_COLUMNS,
    Observation,
    ReferralNow,
    disclosure_of,
    fold,
    step_of,
)

log = logging.getLogger("connectors.ledger.sink")

#: A row, and the values of its table's columns (in the order of its ``INSERT``)
Prepared = tuple[Mapping[str, Any], tuple[Any, ...]]


@dataclass(frozen=True)
class Written:
    """What one write did: history rows new to the ledger, rows skipped (any table).

    ``observations`` and ``dead_letter_kinds`` are what the metrics count, once
    the transaction has committed; ``screenings`` counts screenings new to it.
    """

    inserted: int
    skipped: int
    observations: tuple[Observation, ...] = field(default=(), compare=False)
    dead_letter_kinds: tuple[str, ...] = field(default=(), compare=False)
    screenings: int = field(default=0, compare=False)
    #: encounter routes new to the ledger
    encounters: int = field(default=0, compare=False)


@dataclass
class Batch:
    """Rows for each table, in the order they were read."""

    events: list[Mapping[str, Any]] = field(default_factory=list)
    screenings: list[Mapping[str, Any]] = field(default_factory=list)
    dead_letters: list[Mapping[str, Any]] = field(default_factory=list)
    encounters: list[Mapping[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return (
            len(self.events) + len(self.screenings) + len(self.dead_letters) + len(self.encounters)
        )


_EVENTS: Final = """
    INSERT INTO referral_events (event_id, referral_id, event_type, occurred_at,
        clinic_id, org_id, status, business_status, payload, step)
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[],
        $5::text[], $6::text[], $7::text[], $8::text[], $9::jsonb[], $10::text[])
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
"""
_REFERRAL_TYPES: Final = {
    "attempt": "bigint",
    "offers": "integer",
    "rejections": "integer",
    "timeouts": "integer",
    "events": "integer",
    "loop_closed": "boolean",
    "duplicate": "boolean",
    "last_event_id": "uuid",
}
_REFERRALS: Final = (  # built from the dataclass's own field names, never from input
    f"INSERT INTO referrals ({', '.join(REFERRAL_COLUMNS)}) SELECT * FROM unnest("  # noqa: S608
    + ", ".join(
        f"${n}::{_REFERRAL_TYPES.get(c, 'timestamptz' if c.endswith('_at') else 'text')}[]"
        for n, c in enumerate(REFERRAL_COLUMNS, 1)
    )
    + ") ON CONFLICT (referral_id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in REFERRAL_COLUMNS if c != "referral_id")
    + " RETURNING referral_id"
)
_DISCLOSURES: Final = """
    INSERT INTO disclosures (event_id, disclosed_at, recipient_org_id, service_id, clinic_id,
        patient_id, referral_id, category, fields_disclosed, consent)
    SELECT e, d, o, s, c, p, r, k, ARRAY(SELECT jsonb_array_elements_text(f)), n
    FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[],
        $7::text[], $8::text[], $9::jsonb[], $10::jsonb[]) AS t(e, d, o, s, c, p, r, k, f, n)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
"""
_SCREENINGS: Final = """
    INSERT INTO screenings (clinic_id, screening_id, event_id, patient_id, instrument,
        screened_at, problems)
    SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::text[],
        $6::timestamptz[], $7::integer[])
    ON CONFLICT DO NOTHING
    RETURNING event_id
"""
_NEEDS: Final = """
    INSERT INTO screening_needs (clinic_id, screening_id, category, rule, consented)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::boolean[])
    ON CONFLICT DO NOTHING
    RETURNING category
"""
_DEAD_LETTERS: Final = """
    INSERT INTO dead_letters (event_id, occurred_at, kind, message, source_topic,
        source_partition, source_offset, payload_bytes, payload_sha256)
    SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[],
        $6::integer[], $7::bigint[], $8::bigint[], $9::text[])
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
"""


async def write_batch(conn: Any, batch: Batch) -> Written:
    """Write a batch in one transaction, skipping (and logging) only what cannot be stored.

    Each table's rows go in one statement. When it fails because of a row's
    values (:data:`ROW_ERRORS`), they go again one at a time and only the
    failing ones are skipped. Errors of the database itself
    (:data:`UNAVAILABLE_ERRORS`) are raised with nothing written: the caller
    retries the same batch, which the upserts make harmless.
    """
    prepared, skipped = _prepare(batch.events, _event, "row")
    events: list[Prepared] = []
    seen: set[object] = set()
    for clean, values in prepared:
        if clean["event_id"] not in seen:  # the same event twice in one batch
            seen.add(clean["event_id"])
            events.append((clean, values))
    async with conn.transaction():
        new_ids, failed = await _insert(conn, _EVENTS, events, "row")
        skipped += failed
        new = [clean for clean, _ in events if clean["event_id"] in new_ids]
        observations, failed = await _apply(conn, new)
        skipped += failed
        screenings, failed = await _screenings(conn, batch.screenings)
        skipped += failed
        kinds, failed = await _dead_letters(conn, batch.dead_letters)
        skipped += failed
        routes, failed = await _encounters(conn, batch.encounters)
        skipped += failed
    return Written(len(new), skipped, tuple(observations), tuple(kinds), screenings, routes)


def _event(row: Mapping[str, Any]) -> Prepared:
    clean = clean_event(row)
    return clean, event_values(clean)


def _prepare(
    rows: Iterable[Mapping[str, Any]],
    prepare: Callable[[Mapping[str, Any]], Prepared],
    what: str,
) -> tuple[list[Prepared], int]:
    """Each row prepared for its table; return them and how many could not be (skipped)."""
    prepared: list[Prepared] = []
    skipped = 0
    for row in rows:
        try:
            prepared.append(prepare(row))
        except ROW_ERRORS as exc:
            log_skipped(what, row.get("event_id"), exc)
            skipped += 1
    return prepared, skipped


async def _insert(conn: Any, sql: str, rows: Sequence[Prepared], what: str) -> tuple[set[Any], int]:
    """Insert ``rows`` (each: its row, its column values) with ``sql``; return what it
    returned (the first column) and how many rows were skipped.

    All rows go in one statement in a savepoint; if a row's values fail it, each
    goes again in a savepoint of its own and only the failing ones are skipped.
    """
    if not rows:
        return set(), 0
    try:
        async with conn.transaction():
            return {r[0] for r in await conn.fetch(sql, *_columns(rows))}, 0
    except ROW_ERRORS:
        pass
    returned: set[Any] = set()
    skipped = 0
    for row, values in rows:
        try:
            async with conn.transaction():
                returned |= {r[0] for r in await conn.fetch(sql, *_columns([(row, values)]))}
        except ROW_ERRORS as exc:
            log_skipped(what, row.get("event_id") or row.get("referral_id"), exc)
            skipped += 1
    return returned, skipped


def _columns(rows: Sequence[Prepared]) -> list[list[Any]]:
    return [list(column) for column in zip(*(values for _, values in rows), strict=True)]


async def _apply(conn: Any, new: Sequence[Mapping[str, Any]]) -> tuple[list[Observation], int]:
    """Fold the new history rows into ``referrals`` and ``disclosures``."""
    if not new:
        return [], 0
    ids = sorted({row["referral_id"] for row in new})
    records = await conn.fetch(
        "SELECT * FROM referrals WHERE referral_id = ANY($1::text[]) FOR UPDATE", ids
    )
    states: dict[str, ReferralNow] = {r["referral_id"]: ReferralNow(**dict(r)) for r in records}
    observations: list[Observation] = []
    for row in new:
        state, seen = fold(states.get(row["referral_id"]), row)
        states[row["referral_id"]] = state
        observations += seen
    touched = [({"event_id": s.last_event_id}, s.values()) for s in states.values()]
    _, skipped = await _insert(conn, _REFERRALS, touched, "referral state")
    disclosed = [d for d in map(disclosure_of, new) if d is not None]
    _, failed = await _insert(
        conn, _DISCLOSURES, [(d, disclosure_values(d)) for d in disclosed], "disclosure"
    )
    return observations, skipped + failed


async def _screenings(conn: Any, rows: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    prepared, skipped = _prepare(rows, lambda row: (row, screening_values(row)), "screening")
    new_ids, failed = await _insert(conn, _SCREENINGS, prepared, "screening")
    needs = [
        (
            row,
            (
                values[0],
                values[1],
                storable_text(need["category"]),
                storable_text(need["rule"]),
                need["category"] in row["consented"],
            ),
        )
        for row, values in prepared
        if row["event_id"] in new_ids
        for need in row["needs"]
    ]
    _, failed_needs = await _insert(conn, _NEEDS, needs, "screening need")
    return len(new_ids), skipped + failed + failed_needs


async def _dead_letters(conn: Any, rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], int]:
    prepared, skipped = _prepare(rows, lambda row: (row, dead_letter_values(row)), "dead letter")
    new_ids, failed = await _insert(conn, _DEAD_LETTERS, prepared, "dead letter")
    kinds = [str(row["kind"]) for row, _ in prepared if row["event_id"] in new_ids]
    return kinds, skipped + failed


async def _encounters(conn: Any, rows: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    prepared, skipped = _prepare(rows, lambda row: (row, encounter_values(row)), "encounter")
    new_ids, failed = await _insert(conn, _ENCOUNTERS, prepared, "encounter")
    return len(new_ids), skipped + failed


async def backfill(conn: Any) -> None:
    """Fold history rows without a step (written before migration 3) into the new tables."""
    records = await conn.fetch(
        "SELECT event_id, referral_id, event_type, occurred_at, clinic_id, org_id, status, "
        "business_status, payload FROM referral_events WHERE step IS NULL "
        "ORDER BY referral_id, seq"
    )
    rows = [{**dict(r), "payload": json.loads(r["payload"])} for r in records]
    for row in rows:
        payload = row["payload"]
        await conn.execute(
            "UPDATE referral_events SET step = $2 WHERE event_id = $1",
            row["event_id"],
            step_of(
                row["status"], row["business_status"], payload.get("actor"), payload.get("reason")
            ),
        )
    await _apply(conn, rows)
    if rows:
        log.info("ledger: folded %d earlier history rows into the referrals table", len(rows))
