"""The base of every wire model and every event: the fields all events share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Self
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict

from schemas.events.fields import EventId, Timestamp


class WireModel(BaseModel):
    """Base of every model on the wire: immutable, unknown fields ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def require_event_type(schema: dict[str, Any]) -> None:
    # event_type has a default for convenience in Python; on the wire it is required.
    required = schema.setdefault("required", [])
    if "event_type" in schema.get("properties", {}) and "event_type" not in required:
        required.insert(0, "event_type")


def new_event_id() -> UUID:
    """A fresh random event id."""
    return uuid4()


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


class Event(WireModel):
    """Fields every event has. ``event_id`` is the idempotency key."""

    model_config = ConfigDict(json_schema_extra=require_event_type)

    event_id: EventId
    event_type: str
    occurred_at: Timestamp

    @classmethod
    def new(cls, **fields: Any) -> Self:
        """Build an event with a fresh ``event_id`` and ``occurred_at`` now (unless given)."""
        fields.setdefault("event_id", new_event_id())
        fields.setdefault("occurred_at", utcnow())
        return cls(**fields)


__all__ = ["Event", "WireModel", "new_event_id", "require_event_type", "utcnow"]
