"""What a worker is told: its settings as plain values, handed in by the caller.

``streams/`` never reads the environment or imports ``deploy/``: the CLI (or a
test) builds a :class:`NetworkConfig` and passes it to :func:`streams.runtime.app.build`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from connectors.kafka.auth import PLAINTEXT, KafkaAuth
from streams.decisions.limits import Limits


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
    #: the live status page (observability.status): its address, port (None: off), window, refresh
    http_host: str = "127.0.0.1"
    status_port: int | None = None
    status_window: timedelta = timedelta(days=30)
    status_refresh: float = 5.0


__all__ = ["Limits", "NetworkConfig"]
