"""Prometheus metrics of the MLLP listener. Labels carry no patient data: the
message type (from a fixed list, else ``other``), the ACK code, the rule's key."""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

from connectors.hl7.adt import TRIGGERS

#: Message types named in labels; any other is ``other`` (the sender chooses it).
KNOWN_TYPES: Final = frozenset(f"ADT^{t}" for t in TRIGGERS)

MESSAGES = Counter(
    "refnet_mllp_messages_total", "HL7 messages answered, by type and ACK code", ["type", "ack"]
)
REFUSALS = Counter(
    "refnet_mllp_refusals_total", "HL7 messages answered AE or AR, by the rule broken", ["rule"]
)
DROPPED_REASONS = Counter(
    "refnet_mllp_dropped_reasons_total",
    "Reason codes left out of an encounter (unknown coding system, or too many)",
)
CONNECTIONS = Counter(
    "refnet_mllp_connections_total", "Connections opened, or refused at a bound", ["outcome"]
)
CLOSED = Counter("refnet_mllp_closed_total", "Connections closed, by why", ["reason"])
OPEN = Gauge("refnet_mllp_open_connections", "Connections open now")
ACK_SECONDS = Histogram(
    "refnet_mllp_ack_seconds",
    "From a whole frame read to its ACK written",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def type_label(message_type: str, trigger: str) -> str:
    name = f"{message_type.upper()}^{trigger.upper()}"
    return name if name in KNOWN_TYPES else "other"


__all__ = [
    "ACK_SECONDS",
    "CLOSED",
    "CONNECTIONS",
    "DROPPED_REASONS",
    "KNOWN_TYPES",
    "MESSAGES",
    "OPEN",
    "REFUSALS",
    "type_label",
]
