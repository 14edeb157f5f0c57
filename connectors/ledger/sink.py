"""The referral ledger in PostgreSQL, fed from the network's topics.

The sink (:class:`LedgerSink`) reads ``sdoh.referrals.events.v1`` (every
referral state change, and every encounter's routing: ``encounter_routes``),
``sdoh.screenings.v1`` (scored screenings) and ``sdoh.deadletter.v1`` in its
own consumer group, so each event reaches one worker. Each batch is written in
one transaction: the history rows (upserts on the event id, so replaying a
topic adds nothing twice), the current state of the referrals they touch
(:mod:`connectors.ledger.state`), the accounting of disclosures, the
screenings with their coded needs, the dead letters and the encounter routes.
Kafka offsets are committed only once the transaction has committed; the
metrics count only rows new to the ledger, so every step is counted once
across workers and replays. The tables are in :mod:`connectors.ledger.schema`.

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
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeVar
from uuid import UUID

import asyncpg
from aiokafka import ConsumerRecord
from aiokafka.errors import CommitFailedError

from connectors.kafka import clients
from connectors.kafka.auth import PLAINTEXT, KafkaAuth
from connectors.ledger.encounters import encounter_row
from connectors.ledger.rows import ROW_ERRORS, dead_letter_row, row_of, screening_row
from connectors.ledger.schema import LATEST, migrate
from connectors.ledger.write import Batch, Written, write_batch
from connectors.observability import metrics
from connectors.retry import Backoff
from schemas.events import DeadLetter, EncounterRouted, ReferralStateChanged, ScreeningScored

log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA_VERSION = LATEST

#: Errors that mean PostgreSQL is unreachable or unwell rather than a row being
#: wrong (connection refused or lost, the server starting or shutting down, too
#: many connections, ...): the batch is retried until it is written.
UNAVAILABLE_ERRORS: Final[tuple[type[BaseException], ...]] = (
    OSError,  # refused, reset, timed out
    asyncpg.PostgresError,  # PostgresConnectionError, CannotConnectNowError, AdminShutdown ...
    asyncpg.InterfaceError,  # the connection was closed under us
)
#: The waits before retrying while PostgreSQL is unavailable: 0.5 s doubling to 30 s.
RETRY: Final = Backoff(first=0.5, cap=30.0)
#: Every encounter.routed document holds this (its event_type).
_ROUTED: Final = b'"encounter.routed"'
#: Seconds between refreshes of the open-referrals gauge.
OPEN_GAUGE_EVERY: Final = 10.0


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
        try:
            await ledger.migrate()
        except BaseException:
            await pool.close()
            raise
        return ledger

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    async def close(self) -> None:
        await self._pool.close()

    async def migrate(self) -> list[int]:
        async with self._pool.acquire() as conn:
            return await migrate(conn)

    async def record(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Upsert ledger rows (dicts with LedgerRow's fields); return how many were new.

        Rows PostgreSQL cannot take are skipped (see :meth:`write`); an unreachable
        database raises one of :data:`UNAVAILABLE_ERRORS`.
        """
        return (await self.write(rows)).inserted

    async def write(self, rows: Sequence[Mapping[str, Any]]) -> Written:
        """Write history rows (LedgerRow's fields), and what they change, in one transaction."""
        return await self.write_batch(Batch(events=list(rows)))

    async def write_batch(self, batch: Batch) -> Written:
        """Write a batch in one transaction (see :func:`connectors.ledger.write.write_batch`)."""
        async with self._pool.acquire() as conn:
            return await write_batch(conn, batch)

    async def history(self, referral_id: str) -> list[LedgerRow]:
        async with self._pool.acquire() as conn:
            records = await conn.fetch(
                """
                SELECT event_id, referral_id, event_type, occurred_at, clinic_id, org_id,
                       status, business_status, payload
                FROM referral_events WHERE referral_id = $1 ORDER BY seq
                """,
                referral_id,
            )
        return [LedgerRow(**{**dict(r), "payload": json.loads(r["payload"])}) for r in records]

    async def referral(self, referral_id: str) -> dict[str, Any] | None:
        """The current row of one referral (``referrals``), or None."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM referrals WHERE referral_id = $1", referral_id)
        return dict(row) if row is not None else None

    async def disclosures(self, referral_id: str) -> list[dict[str, Any]]:
        """Who received this referral's patient data, when, which fields, under which consent."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT disclosed_at, recipient_org_id, service_id, clinic_id, patient_id, "
                "category, fields_disclosed, consent FROM disclosures WHERE referral_id = $1 "
                "ORDER BY disclosed_at",
                referral_id,
            )
        return [
            {**dict(r), "consent": json.loads(r["consent"]) if r["consent"] else None} for r in rows
        ]

    async def count(self) -> int:
        async with self._pool.acquire() as conn:
            return int(await conn.fetchval("SELECT count(*) FROM referral_events"))

    async def open_by_category(self) -> dict[str, int]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT coalesce(category, 'unknown') AS category, count(*) AS n "
                "FROM referrals WHERE closed_at IS NULL AND NOT duplicate GROUP BY 1"
            )
        return {r["category"]: int(r["n"]) for r in rows}


# ---------------------------------------------------------------- the sink
class LedgerSink:
    """Copies the network's topics into the ledger (its own consumer group).

    Offsets are committed after the batch's transaction has committed; rows are
    upserts on event ids, so a batch written twice (crash before commit) adds
    nothing, and the metrics count only what was new.

    Counters (no values, also exported as metrics): ``skipped`` counts records
    that did not reach the ledger (``unreadable`` ones that are not the event
    their topic carries, and rows PostgreSQL refused); ``retries`` counts waits
    for an unavailable database.
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
        screenings: str | None = None,
        dead_letters: str | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.auth = auth
        self.topic = topic
        self.screenings_topic = screenings
        self.dead_letters_topic = dead_letters
        self.url = url
        self.group_id = group_id
        self.skipped = 0
        self.unreadable = 0
        self.retries = 0
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None
        self._gauge_at = 0.0
        self._gauged: set[str] = set()

    @property
    def topics(self) -> list[str]:
        return [t for t in (self.topic, self.screenings_topic, self.dead_letters_topic) if t]

    async def run(self) -> None:
        """Copy the topics into the ledger until cancelled (the supervisor's entry point).

        An unreachable database is waited for, at start as later on, so that an
        outage of PostgreSQL never ends it; Kafka errors (and bugs) do, for the
        supervisor to restart it from the last committed offsets.
        """
        ledger = await self._until_available("connecting", lambda: Ledger.connect(self.url))
        try:
            consumer = clients.consumer(
                self.bootstrap,
                *self.topics,
                auth=self.auth,
                group_id=self.group_id,
                auto_offset_reset="earliest",
                isolation_level="read_committed",
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
        if batches:
            batch = self._batch(record for records in batches.values() for record in records)
            if len(batch):
                written = await self._until_available(
                    f"writing {len(batch)} rows", lambda: ledger.write_batch(batch)
                )
                self.skipped += written.skipped
                metrics.LEDGER_SKIPPED.inc(written.skipped)
                _count(written)
            try:
                await consumer.commit()
            except CommitFailedError:
                log.warning("ledger commit failed after a rebalance; batch will be re-read")
        await self._refresh_open(ledger)

    def _batch(self, records: Iterable[ConsumerRecord[Any, Any]]) -> Batch:
        batch = Batch()
        for record in records:
            try:
                value = record.value or b""
                if record.topic == self.screenings_topic:
                    batch.screenings.append(
                        screening_row(ScreeningScored.model_validate_json(value))
                    )
                elif record.topic == self.dead_letters_topic:
                    batch.dead_letters.append(
                        dead_letter_row(DeadLetter.model_validate_json(value))
                    )
                else:
                    _event_log_row(batch, value)
            except ROW_ERRORS:  # a pydantic ValidationError is a ValueError
                log.warning(
                    "ledger: skipping an unreadable event at %s[%d]@%d",
                    record.topic,
                    record.partition,
                    record.offset,
                )
                self.unreadable += 1
                self.skipped += 1
                metrics.LEDGER_SKIPPED.inc()
        return batch

    async def _refresh_open(self, ledger: Ledger) -> None:
        """Set the open-referrals gauge from the ledger, at most every OPEN_GAUGE_EVERY s."""
        now = time.monotonic()
        if now - self._gauge_at < OPEN_GAUGE_EVERY:
            return
        self._gauge_at = now
        try:
            counts = await ledger.open_by_category()
        except UNAVAILABLE_ERRORS as exc:
            log.warning("ledger: open referrals not counted (%s)", type(exc).__name__)
            return
        for category in self._gauged - counts.keys():
            metrics.OPEN_REFERRALS.labels(category).set(0)
        for category, n in counts.items():
            metrics.OPEN_REFERRALS.labels(category).set(n)
        self._gauged |= counts.keys()

    async def _until_available(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """``attempt()``, retried while PostgreSQL is unavailable (waits of :data:`RETRY`)."""
        failures = 0
        while True:
            try:
                return await attempt()
            except UNAVAILABLE_ERRORS as exc:
                failures += 1
                delay = RETRY.delay(failures)
                self.retries += 1
                metrics.LEDGER_RETRIES.inc()
                log.warning(
                    "ledger: PostgreSQL unavailable while %s (%s); retrying in %.1f s",
                    what,
                    type(exc).__name__,
                    delay,
                )
            await self._sleep(delay)


def _event_log_row(batch: Batch, value: bytes) -> None:
    """An event log record into ``batch``: an encounter's routing or a state change
    (may raise one of ROW_ERRORS)."""
    if _ROUTED in value:
        try:
            batch.encounters.append(encounter_row(EncounterRouted.model_validate_json(value)))
            return
        except ValueError:
            pass  # a state change that happens to hold the text: read below
    batch.events.append(row_of(ReferralStateChanged.model_validate_json(value)))


def _count(written: Written) -> None:
    """Count what a committed write added: each step, duration and dead letter once."""
    for seen in written.observations:
        if seen.metric == "step" and seen.step in metrics.COUNTED_STEPS:
            metrics.REFERRALS.labels(seen.step, seen.category).inc()
        elif seen.metric == "time_to_accept" and seen.seconds is not None:
            metrics.TIME_TO_ACCEPT.labels(seen.category).observe(seen.seconds)
        elif seen.metric == "time_to_close" and seen.seconds is not None:
            metrics.TIME_TO_CLOSE.labels(seen.category).observe(seen.seconds)
    for kind in written.dead_letter_kinds:
        metrics.DEAD_LETTERS_LOGGED.labels(kind).inc()
    metrics.LEDGER_ROWS.labels("referral_events").inc(written.inserted)
    metrics.LEDGER_ROWS.labels("screenings").inc(written.screenings)
    metrics.LEDGER_ROWS.labels("dead_letters").inc(len(written.dead_letter_kinds))
    metrics.LEDGER_ROWS.labels("encounter_routes").inc(written.encounters)


__all__ = ["RETRY", "UNAVAILABLE_ERRORS", "Ledger", "LedgerRow", "LedgerSink"]
