"""The ledger's tables, as numbered migrations applied once each, in order.

:func:`migrate` runs on every connection pool the ledger opens (a worker's
sink, ``refnet report``, the status page): under a transaction-scoped advisory
lock it creates ``schema_version`` if needed, then applies each migration whose
number is not recorded there, recording it in the same transaction. Two
processes starting together apply each migration once; a migration that fails
leaves nothing half-done. Add a migration by appending to :data:`MIGRATIONS`;
never edit one that has shipped.

Tables
------
``referral_events``
    the append-only history: one row per ``referral.state-changed`` event,
    keyed by ``event_id``; ``seq`` is the order the ledger received them in (the
    event log's order per referral), ``step`` what the event did.
``referrals``
    the current state of each referral as its clinic sees it, folded from the
    history (:mod:`connectors.ledger.state`).
``screenings`` / ``screening_needs``
    each scored screening once (``clinic_id``, ``screening_id``) with its coded
    needs and whether consent covered them: no answers, no free text.
``dead_letters``
    each dead letter's kind, reason and place (topic, partition, offset): never
    its key or excerpt.
``disclosures``
    the accounting of disclosures (45 CFR 164.528): each offer's recipient
    organization, the patient fields disclosed, the consent in force and when.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from connectors.ledger.encounters import SCHEMA as ENCOUNTERS_SCHEMA

log = logging.getLogger(__name__)

#: pg_advisory_xact_lock key of the ledger's migrations ("refnet" on a phone keypad).
LOCK_KEY: Final = 733638


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str = ""
    #: Python work after the SQL (on the same connection, in the same transaction).
    then: Callable[[Any], Awaitable[None]] | None = None


async def _backfill(conn: Any) -> None:
    """Fold history written before the ``referrals`` table existed into it."""
    from connectors.ledger.write import backfill

    await backfill(conn)


MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        1,
        "referral history",
        """
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
    ),
    Migration(
        2,
        "disclosures view",
        """
        CREATE OR REPLACE VIEW disclosures AS
        SELECT occurred_at AS disclosed_at, org_id AS recipient_org_id,
               payload->>'service_id' AS service_id, clinic_id,
               payload->>'patient_id' AS patient_id, payload->>'category' AS category,
               referral_id, event_id
        FROM referral_events
        WHERE business_status = 'offered' AND org_id IS NOT NULL;
        """,
    ),
    Migration(
        3,
        "current state, screenings, dead letters, accounting of disclosures",
        """
        DROP TABLE IF EXISTS refnet_schema;
        ALTER TABLE referral_events ADD COLUMN IF NOT EXISTS seq bigserial;
        ALTER TABLE referral_events ADD COLUMN IF NOT EXISTS step text;
        CREATE INDEX IF NOT EXISTS referral_events_seq ON referral_events (referral_id, seq);
        CREATE INDEX IF NOT EXISTS referral_events_step ON referral_events (step);

        CREATE TABLE referrals (
            referral_id        text PRIMARY KEY,
            status             text NOT NULL,
            opened_at          timestamptz NOT NULL,
            updated_at         timestamptz NOT NULL,
            last_event_id      uuid NOT NULL,
            clinic_id          text,
            clinic_referral_id text,
            patient_id         text,
            category           text,
            screening_id       text,
            preferred_language text,
            postal_code        text,
            business_status    text,
            reason             text,
            outcome            text,
            org_id             text,
            service_id         text,
            attempt            bigint NOT NULL DEFAULT 0,
            first_offered_at   timestamptz,
            accepted_at        timestamptz,
            closed_at          timestamptz,
            closed_by          text,
            loop_closed        boolean NOT NULL DEFAULT false,
            offers             integer NOT NULL DEFAULT 0,
            rejections         integer NOT NULL DEFAULT 0,
            timeouts           integer NOT NULL DEFAULT 0,
            events             integer NOT NULL DEFAULT 0,
            duplicate          boolean NOT NULL DEFAULT false
        );
        CREATE INDEX referrals_opened ON referrals (opened_at);
        CREATE INDEX referrals_patient ON referrals (clinic_id, patient_id, category);
        CREATE INDEX referrals_screening ON referrals (clinic_id, screening_id);
        CREATE INDEX referrals_open ON referrals (category) WHERE closed_at IS NULL;

        CREATE TABLE screenings (
            clinic_id    text NOT NULL,
            screening_id text NOT NULL,
            event_id     uuid NOT NULL UNIQUE,
            patient_id   text NOT NULL,
            instrument   text NOT NULL,
            screened_at  timestamptz NOT NULL,
            recorded_at  timestamptz NOT NULL DEFAULT now(),
            problems     integer NOT NULL DEFAULT 0,
            PRIMARY KEY (clinic_id, screening_id)
        );
        CREATE INDEX screenings_time ON screenings (screened_at);
        CREATE TABLE screening_needs (
            clinic_id    text NOT NULL,
            screening_id text NOT NULL,
            category     text NOT NULL,
            rule         text NOT NULL,
            consented    boolean NOT NULL,
            PRIMARY KEY (clinic_id, screening_id, category),
            FOREIGN KEY (clinic_id, screening_id) REFERENCES screenings ON DELETE CASCADE
        );

        CREATE TABLE dead_letters (
            event_id         uuid PRIMARY KEY,
            occurred_at      timestamptz NOT NULL,
            recorded_at      timestamptz NOT NULL DEFAULT now(),
            kind             text NOT NULL,
            message          text NOT NULL,
            source_topic     text NOT NULL,
            source_partition integer,
            source_offset    bigint,
            payload_bytes    bigint,
            payload_sha256   text
        );
        CREATE INDEX dead_letters_time ON dead_letters (occurred_at);

        DROP VIEW IF EXISTS disclosures;
        CREATE TABLE disclosures (
            event_id         uuid PRIMARY KEY,
            disclosed_at     timestamptz NOT NULL,
            recipient_org_id text NOT NULL,
            service_id       text,
            clinic_id        text,
            patient_id       text,
            referral_id      text NOT NULL,
            category         text,
            fields_disclosed text[] NOT NULL,
            consent          jsonb
        );
        CREATE INDEX disclosures_patient ON disclosures (clinic_id, patient_id, disclosed_at);
        CREATE INDEX disclosures_referral ON disclosures (referral_id, disclosed_at);
        """,
        then=_backfill,
    ),
    Migration(4, "encounter routes", ENCOUNTERS_SCHEMA),
)

LATEST: Final = MIGRATIONS[-1].version


async def migrate(conn: Any) -> list[int]:
    """Apply the migrations ``conn``'s database lacks; return their numbers."""
    return await apply_migrations(
        conn, MIGRATIONS, table="schema_version", lock_key=LOCK_KEY, what="ledger"
    )


async def apply_migrations(
    conn: Any, migrations: Sequence[Migration], *, table: str, lock_key: int, what: str
) -> list[int]:
    """Apply the ``migrations`` not yet recorded in ``table``, once each, under the
    advisory transaction lock ``lock_key`` (so processes starting together apply each
    once); return their numbers. The ledger's and the gateway's share this."""
    if not table.replace("_", "").isalpha():  # one of the code's own names, never input
        raise ValueError(f"not a table name: {table!r}")
    applied: list[int] = []
    latest = migrations[-1].version
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key)
        await conn.execute(
            f"""
            CREATE TABLE IF NOT EXISTS {table} (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        have = {r["version"] for r in await conn.fetch(f"SELECT version FROM {table}")}  # noqa: S608
        for migration in migrations:
            if migration.version in have:
                continue
            if migration.sql:
                await conn.execute(migration.sql)
            if migration.then is not None:
                await migration.then(conn)
            await conn.execute(
                f"INSERT INTO {table} (version, name) VALUES ($1, $2)",  # noqa: S608
                migration.version,
                migration.name,
            )
            applied.append(migration.version)
        newer = [v for v in have if v > latest]
    if applied:
        log.info("%s: applied migrations %s", what, applied)
    if newer:
        log.warning(
            "%s: the database has migrations %s that this refnet does not know",
            what,
            sorted(newer),
        )
    return applied
