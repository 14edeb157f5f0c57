"""The referral ledger in PostgreSQL: one row per referral state change.

Fed from ``sdoh.referrals.events.v1``. Writes are upserts on the event's unique
id, so replaying the topic from the beginning adds nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

SCHEMA_VERSION = 1

MIGRATIONS: Sequence[str] = (
    """
    CREATE TABLE IF NOT EXISTS refnet_schema (version integer NOT NULL);
    CREATE TABLE IF NOT EXISTS referral_events (
        event_id      uuid PRIMARY KEY,
        referral_id   text NOT NULL,
        event_type    text NOT NULL,
        occurred_at   timestamptz NOT NULL,
        recorded_at   timestamptz NOT NULL DEFAULT now(),
        clinic_id     text,
        org_id        text,
        status        text,
        business_status text,
        payload       jsonb NOT NULL
    );
    CREATE INDEX IF NOT EXISTS referral_events_referral
        ON referral_events (referral_id, occurred_at);
    """,
)


@dataclass(frozen=True)
class LedgerRow:
    event_id: UUID
    referral_id: str
    event_type: str
    occurred_at: datetime
    clinic_id: str | None
    org_id: str | None
    status: str | None
    business_status: str | None
    payload: dict[str, Any]


class Ledger:
    """A connection pool to the ledger database."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def connect(cls, url: str, *, min_size: int = 1, max_size: int = 4) -> Ledger:
        pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size)
        ledger = cls(pool)
        await ledger.migrate()
        return ledger

    async def close(self) -> None:
        await self._pool.close()

    async def migrate(self) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(726610)")
            for sql in MIGRATIONS:
                await conn.execute(sql)
            have = await conn.fetchval("SELECT max(version) FROM refnet_schema")
            if have is None or have < SCHEMA_VERSION:
                await conn.execute(
                    "INSERT INTO refnet_schema (version) VALUES ($1)", SCHEMA_VERSION
                )

    async def record(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Upsert ledger rows (dicts with LedgerRow's fields); return how many were new."""
        if not rows:
            return 0
        async with self._pool.acquire() as conn:
            inserted = await conn.fetch(
                """
                INSERT INTO referral_events (event_id, referral_id, event_type, occurred_at,
                    clinic_id, org_id, status, business_status, payload)
                SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[],
                    $5::text[], $6::text[], $7::text[], $8::text[], $9::jsonb[])
                ON CONFLICT (event_id) DO NOTHING
                RETURNING event_id
                """,
                [r["event_id"] for r in rows],
                [r["referral_id"] for r in rows],
                [r["event_type"] for r in rows],
                [r["occurred_at"] for r in rows],
                [r.get("clinic_id") for r in rows],
                [r.get("org_id") for r in rows],
                [r.get("status") for r in rows],
                [r.get("business_status") for r in rows],
                [json.dumps(r["payload"]) for r in rows],
            )
        return len(inserted)

    async def history(self, referral_id: str) -> list[LedgerRow]:
        async with self._pool.acquire() as conn:
            records = await conn.fetch(
                """
                SELECT event_id, referral_id, event_type, occurred_at, clinic_id, org_id,
                       status, business_status, payload
                FROM referral_events WHERE referral_id = $1
                ORDER BY occurred_at, recorded_at
                """,
                referral_id,
            )
        return [LedgerRow(**{**dict(r), "payload": json.loads(r["payload"])}) for r in records]

    async def count(self) -> int:
        async with self._pool.acquire() as conn:
            return int(await conn.fetchval("SELECT count(*) FROM referral_events"))
