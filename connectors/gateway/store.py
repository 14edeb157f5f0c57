"""What the gateway must remember across restarts, in one SQLite file.

``{REFNET_DATA_DIR}/gateway/gateway.sqlite3`` holds:

* ``webhooks``: each organization's registered URLs and their signing secrets;
* ``subscriptions``: FHIR Subscriptions (rest-hook, id-only) of clinics and organizations;
* ``deliveries``: the outbox of webhook and subscription notifications. A row is
  written (once per target and event: ``UNIQUE(target_id, event_id)``) before any
  attempt, and leaves the pending state only on a 2xx answer: a delivery that
  keeps failing stays pending across restarts, up to the topics' retention
  (:data:`OUTBOX_RETENTION`, 30 days). Bodies hold patient data (an offer's name
  and phone): a body leaves the outbox on delivery, and an undelivered one when
  it expires (the row stays ``expired``, logged and counted, never attempted
  again). What is kept is what retrying and auditing need: the ids, attempts,
  the last error's category and the times. ``secure_delete`` overwrites what
  leaves with zeros in the file;
* ``org_status``: the status an organization last reported through the gateway
  (its updates topic is write-only for it, so the gateway keeps its own copy);
* ``service_capacity``: the capacity an organization last reported per service (the
  first organization to report a service id owns it here);
* ``encounters``: the Encounters a facility posted, as it reads them back
  (rendered from the ``encounter.notified`` sent: the MRN, no demographics).

The gateway's views of the topics are rebuilt from Kafka at start; only what
Kafka cannot give back lives here. SQLite (a real, durable database in the
gateway's own data directory) keeps the gateway a single process with no
dependency on the ledger's PostgreSQL.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from schemas.topics import TopicKind, Topics

#: How long an undelivered body may wait: the retention of the topics it came from.
OUTBOX_RETENTION: Final = (
    int(Topics().spec("outbox", TopicKind.ORG_REFERRALS).config["retention.ms"]) / 1000
)
#: Columns added to ``deliveries`` since the first release (added to older files at open).
_ADDED_COLUMNS: Final = {"created_at": "REAL", "expired_at": "REAL"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS subscriptions (
    id TEXT PRIMARY KEY,
    party_kind TEXT NOT NULL,
    party_id TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    headers TEXT NOT NULL,
    resource TEXT NOT NULL,
    created_at REAL NOT NULL,
    events INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    target_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    body BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    delivered_at REAL,
    last_error TEXT,
    created_at REAL,
    expired_at REAL,
    UNIQUE (target_id, event_id)
);
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (next_at) WHERE delivered_at IS NULL;
CREATE TABLE IF NOT EXISTS org_status (
    org_id TEXT NOT NULL,
    referral_id TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    outcome TEXT,
    note TEXT,
    updated_at REAL NOT NULL,
    PRIMARY KEY (org_id, referral_id)
);
CREATE TABLE IF NOT EXISTS service_capacity (
    service_id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    report TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS encounters (
    facility_id TEXT NOT NULL,
    encounter_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (facility_id, encounter_id)
);
"""


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


class GatewayStore:
    """Thread-safe access to the gateway's SQLite file (short statements only)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.executescript(_SCHEMA)
        self._upgrade()

    def _upgrade(self) -> None:
        """Bring an older file's outbox to this schema, and drop its delivered bodies."""
        with self._lock:
            have = {row[1] for row in self._db.execute("PRAGMA table_info(deliveries)")}
            for column, kind in _ADDED_COLUMNS.items():
                if column not in have:
                    self._db.execute(f"ALTER TABLE deliveries ADD COLUMN {column} {kind}")
            self._db.execute("UPDATE deliveries SET created_at = next_at WHERE created_at IS NULL")
            self._db.execute(
                "UPDATE deliveries SET body = x'' "
                "WHERE (delivered_at IS NOT NULL OR expired_at IS NOT NULL) AND length(body) > 0"
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _all(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db.execute(sql, args).fetchall())

    def _run(self, sql: str, *args: Any) -> int:
        with self._lock:
            return self._db.execute(sql, args).rowcount

    # ------------------------------------------------------------ webhooks
    def add_webhook(self, hook: Webhook) -> None:
        self._run(
            "INSERT INTO webhooks VALUES (?, ?, ?, ?, ?)",
            hook.id,
            hook.org_id,
            hook.url,
            hook.secret,
            hook.created_at,
        )

    def webhooks(self, org_id: str) -> list[Webhook]:
        rows = self._all("SELECT * FROM webhooks WHERE org_id = ? ORDER BY created_at", org_id)
        return [Webhook(*row) for row in rows]

    def webhook(self, hook_id: str) -> Webhook | None:
        rows = self._all("SELECT * FROM webhooks WHERE id = ?", hook_id)
        return Webhook(*rows[0]) if rows else None

    def delete_webhook(self, org_id: str, hook_id: str) -> bool:
        return self._run("DELETE FROM webhooks WHERE org_id = ? AND id = ?", org_id, hook_id) > 0

    # ------------------------------------------------------------ subscriptions
    def add_subscription(self, sub: Subscription) -> None:
        self._run(
            "INSERT INTO subscriptions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            sub.id,
            sub.party_kind,
            sub.party_id,
            sub.endpoint,
            json.dumps(sub.headers),
            json.dumps(sub.resource),
            sub.created_at,
            sub.events,
        )

    @staticmethod
    def _subscription(row: tuple[Any, ...]) -> Subscription:
        sid, kind, pid, endpoint, headers, resource, created, events = row
        return Subscription(
            sid, kind, pid, endpoint, json.loads(headers), json.loads(resource), created, events
        )

    def subscriptions(self, party_kind: str, party_id: str) -> list[Subscription]:
        rows = self._all(
            "SELECT * FROM subscriptions WHERE party_kind = ? AND party_id = ? ORDER BY created_at",
            party_kind,
            party_id,
        )
        return [self._subscription(row) for row in rows]

    def subscription(self, sub_id: str) -> Subscription | None:
        rows = self._all("SELECT * FROM subscriptions WHERE id = ?", sub_id)
        return self._subscription(rows[0]) if rows else None

    def set_subscription_resource(self, sub_id: str, resource: dict[str, Any]) -> bool:
        """Replace a Subscription's stored resource (its status after the handshake)."""
        return (
            self._run(
                "UPDATE subscriptions SET resource = ? WHERE id = ?", json.dumps(resource), sub_id
            )
            > 0
        )

    def next_event_number(self, sub_id: str) -> int:
        with self._lock:
            self._db.execute("UPDATE subscriptions SET events = events + 1 WHERE id = ?", (sub_id,))
            row = self._db.execute(
                "SELECT events FROM subscriptions WHERE id = ?", (sub_id,)
            ).fetchone()
        return int(row[0]) if row else 0

    def delete_subscription(self, party_kind: str, party_id: str, sub_id: str) -> bool:
        return (
            self._run(
                "DELETE FROM subscriptions WHERE party_kind = ? AND party_id = ? AND id = ?",
                party_kind,
                party_id,
                sub_id,
            )
            > 0
        )

    # ------------------------------------------------------------ deliveries
    def enqueue(self, kind: str, target_id: str, event_id: str, body: bytes) -> bool:
        """Add a delivery unless this target already has this event; True if added."""
        now = time.time()
        return (
            self._run(
                "INSERT OR IGNORE INTO deliveries "
                "(kind, target_id, event_id, body, next_at, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                kind,
                target_id,
                event_id,
                body,
                now,
                now,
            )
            > 0
        )

    def has_delivery(self, target_id: str, event_id: str) -> bool:
        rows = self._all(
            "SELECT 1 FROM deliveries WHERE target_id = ? AND event_id = ?", target_id, event_id
        )
        return bool(rows)

    def due(self, now: float, limit: int = 50) -> list[Delivery]:
        rows = self._all(
            "SELECT id, kind, target_id, event_id, body, attempts FROM deliveries "
            "WHERE delivered_at IS NULL AND expired_at IS NULL AND next_at <= ? "
            "ORDER BY id LIMIT ?",
            now,
            limit,
        )
        return [Delivery(*row) for row in rows]

    def delivered(self, delivery_id: int, at: float) -> None:
        self._run(
            "UPDATE deliveries SET delivered_at = ?, attempts = attempts + 1, last_error = NULL, "
            "body = x'' WHERE id = ?",
            at,
            delivery_id,
        )

    def failed(self, delivery_id: int, next_at: float, error: str) -> None:
        self._run(
            "UPDATE deliveries SET attempts = attempts + 1, next_at = ?, last_error = ? "
            "WHERE id = ?",
            next_at,
            error[:300],
            delivery_id,
        )

    def expire(self, now: float, retention: float = OUTBOX_RETENTION) -> int:
        """Drop the bodies of deliveries undelivered for ``retention`` seconds; how many."""
        return self._run(
            "UPDATE deliveries SET body = x'', expired_at = ?, last_error = 'expired' "
            "WHERE delivered_at IS NULL AND expired_at IS NULL AND created_at < ?",
            now,
            now - retention,
        )

    def deliveries(self, target_id: str) -> list[dict[str, Any]]:
        rows = self._all(
            "SELECT event_id, attempts, delivered_at, last_error, expired_at FROM deliveries "
            "WHERE target_id = ? ORDER BY id",
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

    def drop_target(self, target_id: str) -> None:
        self._run("DELETE FROM deliveries WHERE target_id = ?", target_id)

    # ------------------------------------------------------------ organization state
    def set_status(
        self,
        org_id: str,
        referral_id: str,
        status: str,
        reason: str | None,
        outcome: str | None,
        note: str | None,
    ) -> None:
        self._run(
            "INSERT OR REPLACE INTO org_status VALUES (?, ?, ?, ?, ?, ?, ?)",
            org_id,
            referral_id,
            status,
            reason,
            outcome,
            note,
            time.time(),
        )

    def statuses(self, org_id: str) -> dict[str, dict[str, Any]]:
        rows = self._all(
            "SELECT referral_id, status, reason, outcome, note, updated_at FROM org_status "
            "WHERE org_id = ?",
            org_id,
        )
        return {
            r: {"status": s, "reason": why, "outcome": o, "note": n, "updated_at": at}
            for r, s, why, o, n, at in rows
        }

    def set_capacity(self, org_id: str, service_id: str, report: dict[str, Any]) -> bool:
        """Keep the capacity ``org_id`` reported for ``service_id``; False (nothing kept)
        when another organization reported that service first."""
        return (
            self._run(
                "INSERT INTO service_capacity VALUES (?, ?, ?, ?) "
                "ON CONFLICT (service_id) DO UPDATE SET report = excluded.report, "
                "updated_at = excluded.updated_at "
                "WHERE service_capacity.org_id = excluded.org_id",
                service_id,
                org_id,
                json.dumps(report),
                time.time(),
            )
            > 0
        )

    def capacity_owner(self, service_id: str) -> str | None:
        rows = self._all("SELECT org_id FROM service_capacity WHERE service_id = ?", service_id)
        return str(rows[0][0]) if rows else None

    def capacities(self, org_id: str | None = None) -> dict[str, tuple[str, dict[str, Any], float]]:
        """service_id -> (org_id, report, updated_at): one organization's, or (None) all."""
        sql = "SELECT service_id, org_id, report, updated_at FROM service_capacity"
        rows = self._all(sql + " WHERE org_id = ?", org_id) if org_id else self._all(sql)
        return {s: (o, json.loads(r), at) for s, o, r, at in rows}

    # ------------------------------------------------------------ facility state
    def set_encounter(self, facility_id: str, encounter_id: str, resource: dict[str, Any]) -> None:
        """Keep the Encounter a facility last posted under this id (no demographics)."""
        self._run(
            "INSERT OR REPLACE INTO encounters VALUES (?, ?, ?, ?)",
            facility_id,
            encounter_id,
            json.dumps(resource),
            time.time(),
        )

    def encounter(self, facility_id: str, encounter_id: str) -> dict[str, Any] | None:
        rows = self._all(
            "SELECT resource FROM encounters WHERE facility_id = ? AND encounter_id = ?",
            facility_id,
            encounter_id,
        )
        return dict(json.loads(rows[0][0])) if rows else None


__all__ = ["OUTBOX_RETENTION", "Delivery", "GatewayStore", "Subscription", "Webhook"]
