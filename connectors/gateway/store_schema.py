"""The gateway's tables in PostgreSQL (numbered migrations, applied once each) and rows.

The gateway keeps its state in the server the ledger uses (``REFNET_DATABASE_URL``,
or the embedded one), beside the ledger's tables but apart from them: every table
is named ``gateway_*`` and the applied migrations are recorded in
``gateway_schema_version`` under their own advisory lock, so the ledger's and the
gateway's migrations never wait on or number each other. :func:`migrate` runs at
every gateway start: replicas starting together apply each migration once. Add a
migration by appending to :data:`MIGRATIONS`; never edit one that has shipped.

Rows a party made carry ``token``: the SHA-256 of the party's gateway token when
they were made (its generation). A row whose party's current token differs, or
that has none, is purged (:meth:`connectors.gateway.store.GatewayStore.purge`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final

from connectors.ledger.schema import Migration, apply_migrations

log = logging.getLogger("refnet.gateway.store")

#: pg_advisory_xact_lock key of the gateway's migrations (not the ledger's 733638).
LOCK_KEY: Final = 733639

MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        1,
        "gateway state",
        """
        CREATE TABLE gateway_webhooks (
            id          text PRIMARY KEY,
            org_id      text NOT NULL,
            url         text NOT NULL,
            secret      text NOT NULL,
            created_at  double precision NOT NULL,
            token       text NOT NULL
        );
        CREATE INDEX gateway_webhooks_org ON gateway_webhooks (org_id);
        CREATE TABLE gateway_subscriptions (
            id          text PRIMARY KEY,
            party_kind  text NOT NULL,
            party_id    text NOT NULL,
            endpoint    text NOT NULL,
            headers     text NOT NULL,
            resource    text NOT NULL,
            created_at  double precision NOT NULL,
            events      bigint NOT NULL DEFAULT 0,
            token       text NOT NULL
        );
        CREATE INDEX gateway_subscriptions_party ON gateway_subscriptions (party_kind, party_id);
        CREATE TABLE gateway_deliveries (
            id            bigserial PRIMARY KEY,
            kind          text NOT NULL,
            target_id     text NOT NULL,
            event_id      text NOT NULL,
            body          bytea NOT NULL,
            attempts      integer NOT NULL DEFAULT 0,
            next_at       double precision NOT NULL,
            delivered_at  double precision,
            last_error    text,
            created_at    double precision NOT NULL,
            expired_at    double precision,
            lease_owner   text,
            lease_until   double precision,
            claimed_at    double precision,
            UNIQUE (target_id, event_id)
        );
        CREATE INDEX gateway_deliveries_served ON gateway_deliveries (target_id, claimed_at);
        CREATE INDEX gateway_deliveries_pending ON gateway_deliveries (next_at)
            WHERE delivered_at IS NULL AND expired_at IS NULL;
        CREATE TABLE gateway_capacity (
            service_id  text PRIMARY KEY,
            org_id      text NOT NULL,
            report      text NOT NULL,
            updated_at  double precision NOT NULL,
            token       text NOT NULL
        );
        CREATE INDEX gateway_capacity_org ON gateway_capacity (org_id);
        CREATE TABLE gateway_encounters (
            facility_id   text NOT NULL,
            encounter_id  text NOT NULL,
            resource      text NOT NULL,
            updated_at    double precision NOT NULL,
            token         text NOT NULL,
            PRIMARY KEY (facility_id, encounter_id)
        );
        """,
    ),
)
LATEST: Final = MIGRATIONS[-1].version


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    org_id: str
    url: str
    secret: str
    created_at: float


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    party_kind: str
    party_id: str
    endpoint: str
    headers: list[str]
    resource: dict[str, Any]
    created_at: float
    events: int


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    kind: str
    target_id: str
    event_id: str
    body: bytes
    attempts: int


async def migrate(conn: Any) -> list[int]:
    """Apply the gateway migrations ``conn``'s database lacks; return their numbers."""
    return await apply_migrations(
        conn, MIGRATIONS, table="gateway_schema_version", lock_key=LOCK_KEY, what="gateway"
    )


__all__ = ["LATEST", "LOCK_KEY", "MIGRATIONS", "Delivery", "Subscription", "Webhook", "migrate"]
