"""Dead letters the owner agents write: unreadable commands, failed decisions,
messages for a topic that no longer exists."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.codes import DeadLetterKind
from schemas.events import DeadLetterSource
from schemas.topics import Topics
from streams.decisions.commands import Command
from streams.decisions.outputs import Outgoing, dead_letter_event

#: Longest message key kept in a dead letter's source (keys are party-chosen).
MAX_KEY_IN_SOURCE = 256


def source_of(topic: str, partition: int, offset: int, key: bytes | None) -> DeadLetterSource:
    """Where a message was read, its key as text (cut to :data:`MAX_KEY_IN_SOURCE`)."""
    return DeadLetterSource(
        topic=topic,
        partition=partition,
        offset=offset,
        key=key.decode("utf-8", "backslashreplace")[:MAX_KEY_IN_SOURCE] if key else None,
    )


def letter(
    topics: Topics,
    kind: DeadLetterKind,
    reason: str,
    source: DeadLetterSource,
    value: bytes | None,
    at: datetime,
) -> Outgoing:
    """The dead letter of a message, keyed by its source's key."""
    event = dead_letter_event(kind, reason, source, value, occurred_at=at)
    return Outgoing.event(topics.deadletter, source.key or "", event)


def invalid_command(topics: Topics, message: Any, reason: str, at: datetime) -> Outgoing:
    """A message on an internal topic that is not a command (``validation``)."""
    source = source_of(message.topic, message.partition, message.offset, message.key)
    return letter(topics, DeadLetterKind.VALIDATION, reason, source, message.value, at)


def internal(topics: Topics, command: Command, agent: str, why: str, at: datetime) -> Outgoing:
    """A command the agent failed on (``internal``): the command's own source if it
    has one, else the referral it was for."""
    topic = {"referrals": topics.network_referrals, "linkage": topics.network_linkage}.get(
        agent, topics.network_patients
    )
    source = getattr(command, "source", None) or DeadLetterSource(
        topic=topic,
        partition=-1,
        offset=-1,
        key=getattr(command, "referral_id", None),
    )
    reason = f"{agent} failed on a {getattr(command, 'kind', 'command')} command: {why}"
    return letter(topics, DeadLetterKind.INTERNAL, reason, source, b"", at)


def undeliverable(topics: Topics, out: Outgoing, at: datetime) -> Outgoing:
    """An output for a topic that does not exist (a deprovisioned party's)."""
    source = DeadLetterSource(topic=out.topic, partition=-1, offset=-1, key=out.key)
    reason = f"{out.label} for a topic that does not exist (a deprovisioned party?)"
    return letter(topics, DeadLetterKind.UNDELIVERABLE, reason, source, out.value, at)


__all__ = [
    "MAX_KEY_IN_SOURCE",
    "internal",
    "invalid_command",
    "letter",
    "source_of",
    "undeliverable",
]
