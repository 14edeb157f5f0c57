"""What a worker is told: its settings as plain values, handed in by the caller.

``streams/`` never reads the environment or imports ``deploy/``: the CLI (or a
test) builds a :class:`NetworkConfig` and passes it to :func:`streams.runtime.app.build`.
Each default is defined once, here (or beside the value it bounds:
:mod:`schemas.topics`, :mod:`streams.decisions.limits`); ``deploy.settings``
documents the variables that set them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Final

from connectors.kafka.auth import PLAINTEXT, KafkaAuth
from schemas.topics import DEFAULT_PARTITIONS, DEFAULT_PREFIX
from streams.decisions.limits import Limits
from streams.decisions.linkage import MIN_SECRET_BYTES

DEFAULT_APP_ID: Final = "refnet"
#: seconds between two rounds of the deadline timer
DEFAULT_TIMER_INTERVAL: Final = 0.5
#: seconds between two looks for newly provisioned parties
DEFAULT_PATTERN_REFRESH: Final = 5.0
#: seconds between snapshots of the network view
DEFAULT_VIEW_SNAPSHOT_INTERVAL: Final = 60.0
#: seconds before a silent worker's partitions move to the others
DEFAULT_SESSION_TIMEOUT: Final = 30.0


@dataclass(frozen=True)
class NetworkConfig:
    """Everything :func:`streams.runtime.app.build` needs besides the bootstrap servers."""

    app_id: str = DEFAULT_APP_ID
    topic_prefix: str = DEFAULT_PREFIX
    partitions: int = DEFAULT_PARTITIONS
    replication_factor: int = 1
    data_dir: Path = Path(".refnet")
    database_url: str | None = None
    timer_interval: float = DEFAULT_TIMER_INTERVAL
    pattern_refresh: float = DEFAULT_PATTERN_REFRESH
    #: seconds between snapshots of the network view (written by partition 0's owner)
    view_snapshot_interval: float = DEFAULT_VIEW_SNAPSHOT_INTERVAL
    session_timeout: float = DEFAULT_SESSION_TIMEOUT
    #: standby copies of each table partition on other workers (Faust table_standby_replicas)
    standby_replicas: int = 0
    limits: Limits = field(default_factory=Limits)
    #: per-party quota at the ingress (streams.runtime.quota): messages a second, and
    #: the burst; None leaves parties unbounded
    party_rate: float | None = None
    party_burst: float = 1000.0
    #: how every Kafka client of the worker authenticates
    kafka_auth: KafkaAuth = PLAINTEXT
    #: the live status page (connectors.status): its address, port (None: off), window, refresh
    http_host: str = "127.0.0.1"
    status_port: int | None = None
    status_window: timedelta = timedelta(days=30)
    status_refresh: float = 5.0
    #: the network's linkage secret (streams.decisions.linkage): keys patients by an
    #: HMAC of their demographics; never shown (repr) nor logged. None: no linkage
    #: (encounters are refused as ``internal``)
    linkage_secret: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.linkage_secret is not None and len(self.linkage_secret) < MIN_SECRET_BYTES:
            raise ValueError(
                f"the linkage secret must be at least {MIN_SECRET_BYTES} bytes "
                "(REFNET_LINKAGE_SECRET)"
            )


__all__ = [
    "DEFAULT_APP_ID",
    "DEFAULT_PATTERN_REFRESH",
    "DEFAULT_SESSION_TIMEOUT",
    "DEFAULT_TIMER_INTERVAL",
    "DEFAULT_VIEW_SNAPSHOT_INTERVAL",
    "NetworkConfig",
]
