"""The referral ledger in PostgreSQL: one row per referral state change.

Fed from ``sdoh.referrals.events.v1``. Writes are upserts on the event's unique
id, so replaying the topic from the beginning adds nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError

from schemas.events import ReferralStateChanged

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2

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
    # Accounting of disclosures (45 CFR 164.528): every offer is a disclosure of
    # the minimum-necessary patient fields to an organization, under the consent
    # the referral was opened with.
    """
    CREATE OR REPLACE VIEW disclosures AS
    SELECT occurred_at AS disclosed_at,
           org_id AS recipient_org_id,
           payload->>'service_id' AS service_id,
           clinic_id,
           payload->>'patient_id' AS patient_id,
           payload->>'category' AS category,
           referral_id,
           event_id
    FROM referral_events
    WHERE business_status = 'offered' AND org_id IS NOT NULL;
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

    async def disclosures(self, referral_id: str) -> list[dict[str, Any]]:
        """Who received this referral's patient data, when (accounting of disclosures)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT disclosed_at, recipient_org_id, service_id, clinic_id, patient_id, "
                "category FROM disclosures WHERE referral_id = $1 ORDER BY disclosed_at",
                referral_id,
            )
        return [dict(r) for r in rows]

    async def count(self) -> int:
        async with self._pool.acquire() as conn:
            return int(await conn.fetchval("SELECT count(*) FROM referral_events"))


def row_of(event: ReferralStateChanged) -> dict[str, Any]:
    """The ledger row of one referral.state-changed event."""
    return {
        "event_id": event.event_id,
        "referral_id": event.referral_id,
        "event_type": event.event_type,
        "occurred_at": event.occurred_at,
        "clinic_id": event.clinic_id,
        "org_id": event.org_id,
        "status": event.to_status.value,
        "business_status": event.business_status.value if event.business_status else None,
        "payload": event.model_dump(mode="json"),
    }


class LedgerSink:
    """Copies ``sdoh.referrals.events.v1`` into the ledger (its own consumer group).

    Offsets are committed after the rows are in PostgreSQL; rows are upserts on
    the event id, so a batch written twice (crash before commit) adds nothing.
    """

    def __init__(self, bootstrap: str, topic: str, url: str, *, group_id: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.url = url
        self.group_id = group_id
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._ledger: Ledger | None = None

    async def start(self) -> None:
        self._ledger = await Ledger.connect(self.url)
        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        await consumer.start()
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(consumer, self._ledger), name="ledger")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()
        if self._ledger is not None:
            await self._ledger.close()

    async def _run(self, consumer: AIOKafkaConsumer, ledger: Ledger) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            rows = []
            for records in batches.values():
                for record in records:
                    try:
                        event = ReferralStateChanged.model_validate_json(record.value or b"")
                    except ValueError:
                        log.warning(
                            "ledger: skipping an unreadable event at %s[%d]@%d",
                            record.topic,
                            record.partition,
                            record.offset,
                        )
                        continue
                    rows.append(row_of(event))
            if rows:
                await ledger.record(rows)
            if batches:
                try:
                    await consumer.commit()
                except CommitFailedError:
                    log.warning("ledger commit failed after a rebalance; batch will be re-read")
