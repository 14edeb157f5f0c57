"""Dead letters: a message the network could not use, where it was, and why."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from schemas.codes import DeadLetterKind
from schemas.events.base import Event, WireModel
from schemas.events.fields import BASE64_PATTERN, Integer, Note


class DeadLetterSource(WireModel):
    topic: Annotated[str, StringConstraints(min_length=1, max_length=249)]
    partition: Integer = Field(ge=-1)
    offset: Integer = Field(ge=-1)
    key: str | None = None


class DeadLetterError(WireModel):
    kind: DeadLetterKind
    message: Note


class DeadLetter(Event):
    """A message the network could not use, with the reason (deadletter topic)."""

    event_type: Literal["deadletter"] = "deadletter"
    source: DeadLetterSource
    error: DeadLetterError
    payload_base64: Annotated[str, StringConstraints(pattern=BASE64_PATTERN)] = Field(
        description=(
            "a bounded excerpt of the message, never the whole payload and never patient "
            "fields: the message's own bytes stay at source.topic/partition/offset"
        )
    )
    payload_bytes: Integer | None = Field(default=None, ge=0, description="the message's size")
    payload_sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = Field(
        default=None, description="SHA-256 of the message's bytes, hex"
    )


__all__ = ["DeadLetter", "DeadLetterError", "DeadLetterSource"]
