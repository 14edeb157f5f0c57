"""What a data dir's cluster is: its nodes as recorded, its layout, and whether it answers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from connectors.kafka.auth import PLAINTEXT, KafkaAuth
from connectors.kafka.clients import librdkafka

STATE_FILE = "broker.json"
LAYOUT_FILE = "layout.json"


@dataclass(frozen=True)
class NodeState:
    """One running node of the cluster."""

    node_id: int
    pid: int
    port: int
    controller_port: int
    internal_port: int | None = None


@dataclass(frozen=True)
class BrokerState:
    """The cluster recorded in ``broker.json``; ``pid``/``port`` are its first node's."""

    pid: int
    host: str
    port: int
    controller_port: int
    started_at: float
    #: when it first answered (None while starting): one that answered once and no
    #: longer does is hung, not slow to start
    ready_at: float | None = None
    secure: bool = False
    #: every node (a record without nodes holds a single node: the fields above)
    nodes: tuple[NodeState, ...] = field(default=())

    @property
    def all_nodes(self) -> tuple[NodeState, ...]:
        return self.nodes or (NodeState(1, self.pid, self.port, self.controller_port),)

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{self.host}:{node.port}" for node in self.all_nodes)

    @classmethod
    def from_json(cls, text: str) -> BrokerState:
        data = json.loads(text)
        data["nodes"] = tuple(NodeState(**node) for node in data.get("nodes", ()))
        return cls(**data)


@dataclass(frozen=True)
class Layout:
    """What a data dir's cluster was formatted as."""

    brokers: int = 1
    secure: bool = False

    def describe(self) -> str:
        nodes = "a single node" if self.brokers == 1 else f"{self.brokers} nodes"
        return f"{nodes}, {'secure (SASL_SSL)' if self.secure else 'plain'}"


def _metadata(bootstrap: str, timeout: float, auth: KafkaAuth) -> Any:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(librdkafka(bootstrap, auth, log_level=0))
    try:
        meta = admin.list_topics(timeout=timeout)
    except Exception:  # noqa: BLE001 - any failure means "does not answer"
        return None
    return meta if meta.brokers else None


def cluster_id(bootstrap: str, timeout: float = 1.5, auth: KafkaAuth = PLAINTEXT) -> str | None:
    """The cluster id of the Kafka that answers a metadata request at ``bootstrap``, or None."""
    meta = _metadata(bootstrap, timeout, auth)
    return None if meta is None else str(meta.cluster_id or "")


def metadata_ready(
    bootstrap: str, timeout: float = 1.0, auth: KafkaAuth = PLAINTEXT, brokers: int = 1
) -> bool:
    """True when the cluster answers a metadata request and lists ``brokers`` brokers."""
    meta = _metadata(bootstrap, timeout, auth)
    return meta is not None and len(meta.brokers) >= brokers
