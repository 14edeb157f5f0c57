"""What a worker is told: its settings as plain values, handed in by the caller.

``streams/`` never reads the environment or imports ``deploy/``: the CLI (or a
test) builds a :class:`NetworkConfig` and passes it to :func:`streams.runtime.app.build`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from connectors.kafka.auth import PLAINTEXT, KafkaAuth
from schemas.decode import MAX_MESSAGE_BYTES

#: Defaults, shared with ``deploy.settings`` (which documents them per variable).
DEFAULT_MAX_MESSAGE_BYTES = MAX_MESSAGE_BYTES
DEFAULT_MAX_CLOCK_SKEW = timedelta(minutes=5)
#: NCQA HEDIS SNS-E counts an intervention within 30 days of a positive screen.
DEFAULT_IDLE_EXPIRY = timedelta(days=30)
DEFAULT_RETENTION = timedelta(days=7)
DEFAULT_MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class Limits:
    """The bounds the network keeps on what parties send and on its own state."""

    #: A party message larger than this is dead-lettered (kind ``limit``).
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    #: An ``occurred_at`` further ahead of the network's clock is refused.
    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW
    #: An accepted, in-progress or on-hold referral with no update for this long expires.
    idle_expiry: timedelta = DEFAULT_IDLE_EXPIRY
    #: Closed referrals (and then their patients) leave the tables after this long.
    retention: timedelta = DEFAULT_RETENTION
    #: Offers per referral; the next re-route ends it ``failed`` / ``unmatched``.
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    #: respond_by of a service without its own ``response_sla``.
    default_response_sla: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class NetworkConfig:
    """Everything :func:`streams.runtime.app.build` needs besides the bootstrap servers."""

    app_id: str = "refnet"
    topic_prefix: str = "sdoh"
    partitions: int = 6
    replication_factor: int = 1
    data_dir: Path = Path(".refnet")
    database_url: str | None = None
    timer_interval: float = 0.5
    pattern_refresh: float = 5.0
    #: seconds between snapshots of the network view (written by partition 0's owner)
    view_snapshot_interval: float = 60.0
    session_timeout: float = 30.0
    #: standby copies of each table partition on other workers (Faust table_standby_replicas)
    standby_replicas: int = 0
    limits: Limits = field(default_factory=Limits)
    #: how every Kafka client of the worker authenticates
    kafka_auth: KafkaAuth = PLAINTEXT
    #: Testing only: ``"crash-after-state"`` ends the process right after a
    #: referral command's state (and outbox) is durable, before its outputs.
    failpoint: str | None = None
    #: the live status page (observability.status): its address, port (None: off), window, refresh
    http_host: str = "127.0.0.1"
    status_port: int | None = None
    status_window: timedelta = timedelta(days=30)
    status_refresh: float = 5.0


__all__ = ["Limits", "NetworkConfig"]
