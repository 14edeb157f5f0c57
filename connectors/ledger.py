"""The referral ledger in PostgreSQL: one row per referral state change.

Fed from ``sdoh.referrals.events.v1``. Writes are upserts on the event's unique
id, so replaying the topic from the beginning adds nothing twice.

A row never stops the ledger. What PostgreSQL cannot store is made storable
first (a NUL, which neither ``text`` nor ``jsonb`` accepts, and a lone surrogate
become U+FFFD; timestamps are converted to UTC in Python, where an overflow is
caught); a row PostgreSQL still refuses is skipped, logged by event id and
exception type only (values may be patient data) and counted. A database that
is down is waited for: the sink retries the same batch, with backoff, and
commits its Kafka offsets only once the batch is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final, TypeVar
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import CommitFailedError

from connectors.kafka_auth import PLAINTEXT, KafkaAuth
from schemas.events import ReferralStateChanged

log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA_VERSION = 2

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
#: Errors that mean PostgreSQL is unreachable or unwell rather than a row being
#: wrong (connection refused or lost, the server starting or shutting down, too
#: many connections, ...): the batch is retried until it is written.
UNAVAILABLE_ERRORS: Final[tuple[type[BaseException], ...]] = (
    OSError,  # refused, reset, timed out
    asyncpg.PostgresError,  # PostgresConnectionError, CannotConnectNowError, AdminShutdown ...
    asyncpg.InterfaceError,  # the connection was closed under us
)
#: First wait before retrying a batch (seconds); it doubles up to RETRY_MAX_DELAY.
RETRY_FIRST_DELAY: Final = 0.5
RETRY_MAX_DELAY: Final = 30.0
#: What replaces characters PostgreSQL cannot store.
REPLACEMENT: Final = "\ufffd"

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


@dataclass(frozen=True, slots=True)
class Written:
    """What one :meth:`Ledger.write` did: rows new to the ledger, rows skipped."""

    inserted: int
    skipped: int


_INSERT: Final = """
    INSERT INTO referral_events (event_id, referral_id, event_type, occurred_at,
        clinic_id, org_id, status, business_status, payload)
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[],
        $5::text[], $6::text[], $7::text[], $8::text[], $9::jsonb[])
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
"""
_Prepared = tuple[Any, Any, Any, Any, Any, Any, Any, Any, str]


class Ledger:
    """A connection pool to the ledger database."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def connect(cls, url: str, *, min_size: int = 1, max_size: int = 4) -> Ledger:
        pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size)
        ledger = cls(pool)
        try:
            await ledger.migrate()
        except BaseException:
            await pool.close()
            raise
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
        """Upsert ledger rows (dicts with LedgerRow's fields); return how many were new.

        Rows PostgreSQL cannot take are skipped (see :meth:`write`); an unreachable
        database raises one of :data:`UNAVAILABLE_ERRORS`.
        """
        return (await self.write(rows)).inserted

    async def write(self, rows: Sequence[Mapping[str, Any]]) -> Written:
        """Upsert ledger rows, skipping (and logging) only those that cannot be stored.

        The rows go in one statement. When it fails because of a row's values
        (:data:`ROW_ERRORS`), they go again one at a time and only the failing
        ones are skipped. Errors of the database itself (:data:`UNAVAILABLE_ERRORS`)
        are raised with nothing skipped: the caller retries the same rows, which
        the upsert makes harmless.
        """
        prepared: list[tuple[object, _Prepared]] = []
        skipped = 0
        for row in rows:
            try:
                prepared.append((row.get("event_id"), _prepare(row)))
            except ROW_ERRORS as exc:
                _log_skipped(row.get("event_id"), exc)
                skipped += 1
        if not prepared:
            return Written(0, skipped)
        async with self._pool.acquire() as conn:
            try:
                inserted = await _insert(conn, [values for _, values in prepared])
            except ROW_ERRORS:
                inserted = 0
                for event_id, values in prepared:
                    try:
                        inserted += await _insert(conn, [values])
                    except ROW_ERRORS as exc:
                        _log_skipped(event_id, exc)
                        skipped += 1
        return Written(inserted, skipped)

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


async def _insert(conn: Any, rows: Sequence[_Prepared]) -> int:
    columns = list(zip(*rows, strict=True))
    inserted = await conn.fetch(_INSERT, *(list(column) for column in columns))
    return len(inserted)


def _prepare(row: Mapping[str, Any]) -> _Prepared:
    """The nine column values of a row, made storable (may raise one of ROW_ERRORS)."""
    occurred_at = row["occurred_at"]
    if isinstance(occurred_at, datetime) and occurred_at.utcoffset() is not None:
        # asyncpg converts to UTC itself, and overflows on 9999-12-31T23:59-01:00
        occurred_at = occurred_at.astimezone(UTC)
    return (
        row["event_id"],
        _storable(row["referral_id"]),
        _storable(row["event_type"]),
        occurred_at,
        _storable(row.get("clinic_id")),
        _storable(row.get("org_id")),
        _storable(row.get("status")),
        _storable(row.get("business_status")),
        json.dumps(_storable_json(row["payload"]), allow_nan=False),
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


def _log_skipped(event_id: object, exc: BaseException) -> None:
    # The event id only if it is one: a malformed id could be any value at all.
    shown = str(event_id) if isinstance(event_id, UUID) else "an event with an invalid id"
    log.error("ledger: skipped the row of %s (%s)", shown, type(exc).__name__)


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


class LedgerSink:
    """Copies ``sdoh.referrals.events.v1`` into the ledger (its own consumer group).

    Offsets are committed after the rows are in PostgreSQL; rows are upserts on
    the event id, so a batch written twice (crash before commit) adds nothing.

    Counters (no values, for metrics): ``skipped`` counts records that did not
    reach the ledger (``unreadable`` ones that are no referral.state-changed
    event, and rows PostgreSQL refused); ``retries`` counts waits for an
    unavailable database.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        url: str,
        *,
        group_id: str,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        auth: KafkaAuth = PLAINTEXT,
    ) -> None:
        self.bootstrap = bootstrap
        self.auth = auth
        self.topic = topic
        self.url = url
        self.group_id = group_id
        self.skipped = 0
        self.unreadable = 0
        self.retries = 0
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Copy the topic into the ledger until cancelled (the supervisor's entry point).

        An unreachable database is waited for, at start as later on, so that an
        outage of PostgreSQL never ends it; Kafka errors (and bugs) do, for the
        supervisor to restart it from the last committed offsets.
        """
        ledger = await self._until_available("connecting", lambda: Ledger.connect(self.url))
        try:
            consumer = AIOKafkaConsumer(
                self.topic,
                bootstrap_servers=self.bootstrap,
                group_id=self.group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed",
                **self.auth.aiokafka(),
            )
            await consumer.start()
            try:
                while True:
                    await self.step(consumer, ledger)
            finally:
                await consumer.stop()
        finally:
            with contextlib.suppress(Exception):  # stopping anyway; the pool may be broken
                await ledger.close()

    async def start(self) -> None:
        """Run :meth:`run` in a task of its own (without a supervisor)."""
        self._task = asyncio.create_task(self.run(), name="ledger")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def step(self, consumer: Any, ledger: Ledger) -> None:
        """One poll: read a batch, write it (waiting for the database), commit it."""
        batches: Mapping[Any, Sequence[ConsumerRecord[Any, Any]]] = await consumer.getmany(
            timeout_ms=500, max_records=500
        )
        if not batches:
            return
        rows = self._rows(record for records in batches.values() for record in records)
        if rows:
            written = await self._until_available(
                f"writing {len(rows)} rows", lambda: ledger.write(rows)
            )
            self.skipped += written.skipped
        try:
            await consumer.commit()
        except CommitFailedError:
            log.warning("ledger commit failed after a rebalance; batch will be re-read")

    def _rows(self, records: Iterable[ConsumerRecord[Any, Any]]) -> list[dict[str, Any]]:
        rows = []
        for record in records:
            try:
                event = ReferralStateChanged.model_validate_json(record.value or b"")
                rows.append(row_of(event))
            except ROW_ERRORS:
                log.warning(
                    "ledger: skipping an unreadable event at %s[%d]@%d",
                    record.topic,
                    record.partition,
                    record.offset,
                )
                self.unreadable += 1
                self.skipped += 1
        return rows

    async def _until_available(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """``attempt()``, retried while PostgreSQL is unavailable (0.5 s doubling to 30 s)."""
        delay = RETRY_FIRST_DELAY
        while True:
            try:
                return await attempt()
            except UNAVAILABLE_ERRORS as exc:
                self.retries += 1
                log.warning(
                    "ledger: PostgreSQL unavailable while %s (%s); retrying in %.1f s",
                    what,
                    type(exc).__name__,
                    delay,
                )
            await self._sleep(delay)
            delay = min(delay * 2, RETRY_MAX_DELAY)
