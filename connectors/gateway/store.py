"""What the gateway must remember across restarts and share between its replicas, in PostgreSQL.

The gateway's tables (:mod:`connectors.gateway.store_schema`) live in the server the
ledger uses. They hold:

* ``gateway_webhooks``: each organization's registered URLs and their signing secrets;
* ``gateway_subscriptions``: FHIR Subscriptions (rest-hook, id-only) of clinics and
  organizations, with the number of the last event notified to each;
* ``gateway_deliveries``: the outbox of webhook and subscription notifications. A row
  is written (once per target and event: ``UNIQUE (target_id, event_id)``, so N
  replicas reading the same topics queue each event once) before any attempt, and
  leaves the pending state only on a 2xx answer: a delivery that keeps failing stays
  pending across restarts, up to the topics' retention (:data:`OUTBOX_RETENTION`,
  30 days). A replica claims due deliveries with a lease (:meth:`GatewayStore.claim`:
  ``FOR UPDATE SKIP LOCKED``, its owner name and an expiry): one replica at a time
  attempts a delivery, only the lease holder records the attempt's result, and a
  replica killed mid-attempt loses nothing (its lease expires and another replica
  attempts again, with the same ``webhook-id``). Bodies hold patient data (an
  offer's name and phone): a body leaves the outbox on delivery, and an undelivered
  one when it expires (the row stays ``expired``, logged and counted, never
  attempted again). What is kept is what retrying and auditing need: the ids,
  attempts, the last error's category and the times;
* ``gateway_capacity``: the capacity an organization last reported per service (the
  first organization to report a service id owns it here);
* ``gateway_encounters``: the Encounters a facility posted, as it reads them back
  (rendered from the ``encounter.notified`` sent: the MRN, no demographics).

Every row a party made carries its token's generation (``generation(kind, id)``,
the SHA-256 of its current gateway token): :meth:`GatewayStore.purge` removes what
a revoked party, or a party whose token was rotated, had registered.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import asyncpg

from connectors.gateway.store_schema import Delivery, Subscription, Webhook, migrate
from schemas.topics import TopicKind, Topics

#: How long an undelivered body may wait: the retention of the topics it came from.
OUTBOX_RETENTION: Final = (
    int(Topics().spec("outbox", TopicKind.ORG_REFERRALS).config["retention.ms"]) / 1000
)
#: A party's token generation (None: the party holds no token).
Generation = Callable[[str, str], str | None]
#: The rows a party made: (table, its party kind or kind column, its party id column).
_PARTY_TABLES: Final = (
    ("gateway_webhooks", "'org'", "org_id"),
    ("gateway_subscriptions", "party_kind", "party_id"),
    ("gateway_capacity", "'org'", "org_id"),
    ("gateway_encounters", "'facility'", "facility_id"),
)


class GatewayStore:
    """The gateway's tables, through a small asyncpg pool (short transactions only)."""

    def __init__(self, pool: Any, generation: Generation) -> None:
        self.pool = pool
        self.generation = generation

    @classmethod
    async def connect(cls, url: str, generation: Generation, *, size: int = 4) -> GatewayStore:
        """Open a pool on ``url`` and bring its gateway tables to this schema."""
        pool = await asyncpg.create_pool(url, min_size=1, max_size=size)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, generation)

    async def close(self) -> None:
        await self.pool.close()

    def _token(self, kind: str, party_id: str) -> str:
        return self.generation(kind, party_id) or ""

    # ------------------------------------------------------------ webhooks
    async def add_webhook(self, hook: Webhook) -> None:
        await self.pool.execute(
            "INSERT INTO gateway_webhooks VALUES ($1, $2, $3, $4, $5, $6)",
            hook.id,
            hook.org_id,
            hook.url,
            hook.secret,
            hook.created_at,
            self._token("org", hook.org_id),
        )

    async def webhooks(self, org_id: str) -> list[Webhook]:
        rows = await self.pool.fetch(
            "SELECT id, org_id, url, secret, created_at FROM gateway_webhooks "
            "WHERE org_id = $1 AND token = $2 ORDER BY created_at",
            org_id,
            self._token("org", org_id),
        )
        return [Webhook(*row) for row in rows]

    async def webhook(self, hook_id: str) -> Webhook | None:
        row = await self.pool.fetchrow(
            "SELECT id, org_id, url, secret, created_at, token FROM gateway_webhooks WHERE id = $1",
            hook_id,
        )
        if row is None or row["token"] != self._token("org", row["org_id"]):
            return None  # revoked or rotated: it receives nothing more
        return Webhook(*tuple(row)[:5])

    async def delete_webhook(self, org_id: str, hook_id: str) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            done = await conn.execute(
                "DELETE FROM gateway_webhooks WHERE org_id = $1 AND id = $2", org_id, hook_id
            )
            await conn.execute("DELETE FROM gateway_deliveries WHERE target_id = $1", hook_id)
        return bool(done != "DELETE 0")

    # ------------------------------------------------------------ subscriptions
    async def add_subscription(self, sub: Subscription) -> None:
        await self.pool.execute(
            "INSERT INTO gateway_subscriptions VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            sub.id,
            sub.party_kind,
            sub.party_id,
            sub.endpoint,
            json.dumps(sub.headers),
            json.dumps(sub.resource),
            sub.created_at,
            sub.events,
            self._token(sub.party_kind, sub.party_id),
        )

    @staticmethod
    def _subscription(row: Any) -> Subscription:
        sid, kind, pid, endpoint, headers, resource, created, events = tuple(row)[:8]
        return Subscription(
            sid, kind, pid, endpoint, json.loads(headers), json.loads(resource), created, events
        )

    async def subscriptions(self, party_kind: str, party_id: str) -> list[Subscription]:
        rows = await self.pool.fetch(
            "SELECT * FROM gateway_subscriptions WHERE party_kind = $1 AND party_id = $2 "
            "AND token = $3 ORDER BY created_at",
            party_kind,
            party_id,
            self._token(party_kind, party_id),
        )
        return [self._subscription(row) for row in rows]

    async def subscription(self, sub_id: str) -> Subscription | None:
        row = await self.pool.fetchrow("SELECT * FROM gateway_subscriptions WHERE id = $1", sub_id)
        if row is None or row["token"] != self._token(row["party_kind"], row["party_id"]):
            return None  # revoked or rotated: it is gone for its party and receives nothing
        return self._subscription(row)

    async def set_subscription_resource(self, sub_id: str, resource: dict[str, Any]) -> bool:
        """Replace a Subscription's stored resource (its status after the handshake)."""
        done = await self.pool.execute(
            "UPDATE gateway_subscriptions SET resource = $1 WHERE id = $2",
            json.dumps(resource),
            sub_id,
        )
        return bool(done != "UPDATE 0")

    async def delete_subscription(self, party_kind: str, party_id: str, sub_id: str) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            done = await conn.execute(
                "DELETE FROM gateway_subscriptions "
                "WHERE party_kind = $1 AND party_id = $2 AND id = $3",
                party_kind,
                party_id,
                sub_id,
            )
            await conn.execute("DELETE FROM gateway_deliveries WHERE target_id = $1", sub_id)
        return bool(done != "DELETE 0")

    # ------------------------------------------------------------ queueing
    async def enqueue(self, kind: str, target_id: str, event_id: str, body: bytes) -> bool:
        """Add a delivery unless this target already has this event; True if added."""
        now = time.time()
        done = await self.pool.execute(
            "INSERT INTO gateway_deliveries (kind, target_id, event_id, body, next_at, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (target_id, event_id) DO NOTHING",
            kind,
            target_id,
            event_id,
            body,
            now,
        )
        return bool(done == "INSERT 0 1")

    async def enqueue_numbered(
        self, sub_id: str, event_id: str, body: Callable[[int], bytes]
    ) -> bool:
        """Queue ``event_id`` for Subscription ``sub_id`` with the Subscription's next event
        number (``body(number)``), unless already queued; True if added.

        The Subscription's row is locked while its number is checked, taken and its
        delivery inserted: with N replicas queueing the same event, numbers stay unique
        and without gaps."""
        async with self.pool.acquire() as conn, conn.transaction():
            events = await conn.fetchval(
                "SELECT events FROM gateway_subscriptions WHERE id = $1 FOR UPDATE", sub_id
            )
            if events is None:
                return False
            queued = await conn.fetchval(
                "SELECT 1 FROM gateway_deliveries WHERE target_id = $1 AND event_id = $2",
                sub_id,
                event_id,
            )
            if queued:
                return False
            number = int(events) + 1
            await conn.execute(
                "UPDATE gateway_subscriptions SET events = $1 WHERE id = $2", number, sub_id
            )
            now = time.time()
            await conn.execute(
                "INSERT INTO gateway_deliveries "
                "(kind, target_id, event_id, body, next_at, created_at) "
                "VALUES ('subscription', $1, $2, $3, $4, $4)",
                sub_id,
                event_id,
                body(number),
                now,
            )
        return True

    async def has_delivery(self, target_id: str, event_id: str) -> bool:
        found = await self.pool.fetchval(
            "SELECT 1 FROM gateway_deliveries WHERE target_id = $1 AND event_id = $2",
            target_id,
            event_id,
        )
        return found is not None

    # ------------------------------------------------------------ the outbox's leases
    async def due(self, now: float, limit: int = 50) -> list[Delivery]:
        """What is due at ``now`` and not leased (oldest first; nothing claimed)."""
        rows = await self.pool.fetch(
            "SELECT id, kind, target_id, event_id, body, attempts FROM gateway_deliveries "
            "WHERE delivered_at IS NULL AND expired_at IS NULL AND next_at <= $1 "
            "AND (lease_until IS NULL OR lease_until <= $1) ORDER BY id LIMIT $2",
            now,
            limit,
        )
        return [Delivery(*row) for row in rows]

    async def claim(
        self, owner: str, now: float, lease: float, limit: int, per_target: int = 1
    ) -> list[Delivery]:
        """Lease up to ``limit`` due deliveries to ``owner`` until ``now + lease``.

        Fair between receivers: at most ``per_target`` per target in one claim, the
        targets served longest ago first (one receiver's backlog never starves another),
        and none of a target another attempt holds a live lease on (one attempt per
        receiver at a time, across replicas). Rows another replica is claiming are
        skipped, never waited for."""
        rows = await self.pool.fetch(
            """
            WITH busy AS (
                SELECT DISTINCT target_id FROM gateway_deliveries
                WHERE lease_until > $1 AND delivered_at IS NULL AND expired_at IS NULL
            ), ranked AS (
                SELECT id, target_id,
                       row_number() OVER (PARTITION BY target_id ORDER BY id) AS rank
                FROM gateway_deliveries
                WHERE delivered_at IS NULL AND expired_at IS NULL AND next_at <= $1
                  AND (lease_until IS NULL OR lease_until <= $1)
                  AND target_id NOT IN (SELECT target_id FROM busy)
            ), served AS (
                SELECT target_id, max(claimed_at) AS at FROM gateway_deliveries
                WHERE target_id IN (SELECT target_id FROM ranked WHERE rank = 1)
                GROUP BY target_id
            ), picked AS (
                SELECT d.id FROM gateway_deliveries d
                JOIN ranked r ON r.id = d.id
                LEFT JOIN served s ON s.target_id = r.target_id
                WHERE r.rank <= $5 AND d.delivered_at IS NULL AND d.expired_at IS NULL
                  AND (d.lease_until IS NULL OR d.lease_until <= $1)
                ORDER BY s.at NULLS FIRST, r.rank, d.id LIMIT $4
                FOR UPDATE OF d SKIP LOCKED
            )
            UPDATE gateway_deliveries d
            SET lease_owner = $2, lease_until = $1 + $3, claimed_at = $1
            FROM picked WHERE d.id = picked.id AND d.delivered_at IS NULL
              AND (d.lease_until IS NULL OR d.lease_until <= $1)
            RETURNING d.id, d.kind, d.target_id, d.event_id, d.body, d.attempts
            """,
            now,
            owner,
            lease,
            limit,
            per_target,
        )
        return sorted((Delivery(*row) for row in rows), key=lambda d: d.id)

    async def delivered(self, delivery_id: int, at: float, owner: str | None = None) -> bool:
        """Record a 2xx answer (the body leaves); False if ``owner`` no longer holds the lease."""
        done = await self.pool.execute(
            "UPDATE gateway_deliveries SET delivered_at = $1, attempts = attempts + 1, "
            "last_error = NULL, body = ''::bytea, lease_owner = NULL, lease_until = NULL "
            "WHERE id = $2 AND ($3::text IS NULL OR lease_owner = $3)",
            at,
            delivery_id,
            owner,
        )
        return bool(done != "UPDATE 0")

    async def failed(
        self, delivery_id: int, next_at: float, error: str, owner: str | None = None
    ) -> bool:
        """Record a failed attempt; False if ``owner`` no longer holds the lease."""
        done = await self.pool.execute(
            "UPDATE gateway_deliveries SET attempts = attempts + 1, next_at = $1, "
            "last_error = $2, lease_owner = NULL, lease_until = NULL "
            "WHERE id = $3 AND ($4::text IS NULL OR lease_owner = $4)",
            next_at,
            error[:300],
            delivery_id,
            owner,
        )
        return bool(done != "UPDATE 0")

    async def release(self, delivery_ids: list[int], owner: str) -> int:
        """Give back ``owner``'s leases on these deliveries unattempted; how many."""
        done = await self.pool.execute(
            "UPDATE gateway_deliveries SET lease_owner = NULL, lease_until = NULL "
            "WHERE id = ANY($1::bigint[]) AND lease_owner = $2",
            delivery_ids,
            owner,
        )
        return int(done.split()[-1])

    async def expire(self, now: float, retention: float = OUTBOX_RETENTION) -> dict[str, int]:
        """Drop the bodies of deliveries undelivered for ``retention`` s; how many, by kind."""
        rows = await self.pool.fetch(
            "WITH gone AS (UPDATE gateway_deliveries SET body = ''::bytea, expired_at = $1, "
            "last_error = 'expired', lease_owner = NULL, lease_until = NULL "
            "WHERE delivered_at IS NULL AND expired_at IS NULL AND created_at < $2 "
            "RETURNING kind) SELECT kind, count(*) FROM gone GROUP BY kind",
            now,
            now - retention,
        )
        return {kind: int(count) for kind, count in rows}

    async def deliveries(self, target_id: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT event_id, attempts, delivered_at, last_error, expired_at "
            "FROM gateway_deliveries WHERE target_id = $1 ORDER BY id",
            target_id,
        )
        return [
            {
                "event_id": e,
                "attempts": a,
                "delivered": d is not None,
                "expired": x is not None,
                "last_error": err,
            }
            for e, a, d, err, x in rows
        ]

    async def drop_target(self, target_id: str) -> None:
        await self.pool.execute("DELETE FROM gateway_deliveries WHERE target_id = $1", target_id)

    # ------------------------------------------------------------ revocation
    async def purge(self, current: Mapping[tuple[str, str], str]) -> dict[str, int]:
        """Remove every row of a party whose current token generation is not the one it was
        made under (revoked, rotated, re-provisioned), and the deliveries of every target
        that is gone (bodies and all); how many rows, per table."""
        kinds = [kind for kind, _ in current]
        ids = [party for _, party in current]
        tokens = list(current.values())
        removed: dict[str, int] = {}
        async with self.pool.acquire() as conn, conn.transaction():
            for table, kind, party in _PARTY_TABLES:
                done = await conn.execute(
                    f"DELETE FROM {table} t WHERE NOT EXISTS (SELECT 1 FROM "  # noqa: S608 - constants
                    "unnest($1::text[], $2::text[], $3::text[]) AS c(kind, id, token) "
                    f"WHERE c.kind = {kind} AND c.id = t.{party} AND c.token = t.token)",
                    kinds,
                    ids,
                    tokens,
                )
                removed[table] = int(done.split()[-1])
            done = await conn.execute(
                "DELETE FROM gateway_deliveries d WHERE NOT EXISTS "
                "(SELECT 1 FROM gateway_webhooks w WHERE w.id = d.target_id) AND NOT EXISTS "
                "(SELECT 1 FROM gateway_subscriptions s WHERE s.id = d.target_id)"
            )
            removed["gateway_deliveries"] = int(done.split()[-1])
        return removed

    # ------------------------------------------------------------ organization state
    async def set_capacity(self, org_id: str, service_id: str, report: dict[str, Any]) -> bool:
        """Keep the capacity ``org_id`` reported for ``service_id``; False (nothing kept)
        when another organization reported that service first."""
        done = await self.pool.execute(
            "INSERT INTO gateway_capacity VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT (service_id) DO UPDATE SET report = EXCLUDED.report, "
            "updated_at = EXCLUDED.updated_at, token = EXCLUDED.token "
            "WHERE gateway_capacity.org_id = EXCLUDED.org_id",
            service_id,
            org_id,
            json.dumps(report),
            time.time(),
            self._token("org", org_id),
        )
        return str(done).rsplit(" ", 1)[-1] != "0"

    async def capacity_owner(self, service_id: str) -> str | None:
        row = await self.pool.fetchrow(
            "SELECT org_id, token FROM gateway_capacity WHERE service_id = $1", service_id
        )
        if row is None or row["token"] != self._token("org", row["org_id"]):
            return None
        return str(row["org_id"])

    async def capacities(
        self, org_id: str | None = None
    ) -> dict[str, tuple[str, dict[str, Any], float]]:
        """service_id -> (org_id, report, updated_at): one organization's, or (None) all,
        each made under its organization's current token."""
        sql = "SELECT service_id, org_id, report, updated_at, token FROM gateway_capacity"
        rows = await (
            self.pool.fetch(sql + " WHERE org_id = $1", org_id) if org_id else self.pool.fetch(sql)
        )
        return {
            r["service_id"]: (r["org_id"], json.loads(r["report"]), r["updated_at"])
            for r in rows
            if r["token"] == self._token("org", r["org_id"])
        }

    # ------------------------------------------------------------ facility state
    async def set_encounter(
        self, facility_id: str, encounter_id: str, resource: dict[str, Any]
    ) -> None:
        """Keep the Encounter a facility last posted under this id (no demographics)."""
        await self.pool.execute(
            "INSERT INTO gateway_encounters VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT (facility_id, encounter_id) DO UPDATE SET resource = $3, "
            "updated_at = $4, token = $5",
            facility_id,
            encounter_id,
            json.dumps(resource),
            time.time(),
            self._token("facility", facility_id),
        )

    async def encounter(self, facility_id: str, encounter_id: str) -> dict[str, Any] | None:
        found = await self.pool.fetchval(
            "SELECT resource FROM gateway_encounters "
            "WHERE facility_id = $1 AND encounter_id = $2 AND token = $3",
            facility_id,
            encounter_id,
            self._token("facility", facility_id),
        )
        return dict(json.loads(found)) if found is not None else None


__all__ = ["OUTBOX_RETENTION", "Delivery", "GatewayStore", "Generation", "Subscription", "Webhook"]
