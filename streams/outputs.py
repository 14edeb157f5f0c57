"""What a decision sends: messages to topics, built from typed events."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

from schemas.codes import DeadLetterKind
from schemas.events import DeadLetter, DeadLetterError, DeadLetterSource, Event, to_bytes
from streams.commands import Command, derived_id, encode


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to produce. ``label`` names it in metrics and logs (no PHI)."""

    topic: str
    key: str
    value: bytes
    label: str

    @classmethod
    def event(cls, topic: str, key: str, event: Event) -> Outgoing:
        return cls(topic, key, to_bytes(event), event.event_type)

    @classmethod
    def command(cls, topic: str, key: str, command: Command) -> Outgoing:
        kind = getattr(command, "kind", "command")
        return cls(topic, key, encode(command), f"command.{kind}")


def dead_letter_event(
    kind: DeadLetterKind,
    message: str,
    source: DeadLetterSource,
    payload: bytes | None,
    *,
    occurred_at: datetime,
) -> DeadLetter:
    """A dead letter whose id derives from its source, so a replay repeats the same id."""
    return DeadLetter(
        event_id=derived_id("deadletter", source.topic, source.partition, source.offset, kind),
        occurred_at=occurred_at,
        source=source,
        error=DeadLetterError(kind=kind, message=message[:1000]),
        payload_base64=base64.b64encode(payload or b"").decode("ascii"),
    )
